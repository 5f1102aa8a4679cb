"""Zip members as every loader reads them: zipfile's central directory and miniz's.

numpy, joblib and Keras read zips with Python's zipfile; ``torch.load`` with miniz. When the
two pick different central directories (see zipdirs), the walk yields the members of both,
so a payload listed only where torch looks is scanned, and reports the disagreement. A zip
neither reader accepts is a ParseError.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from hexscan.discover import members as checks
from hexscan.discover.artifact import Artifact
from hexscan.discover.events import Event, Skipped, Walk, bomb, encrypted, oversized, too_many
from hexscan.discover.zipdirs import miniz_infos
from hexscan.discover.zipraw import RawZipMember
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.identify import identify
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import archive as rules

_Key = tuple[str, int, int]


def zip_names(container: Artifact) -> list[str]:
    """Member names from the central directories (used to tell zip layouts apart)."""
    with container.open() as stream:
        zf, infos, error = _zipfile_view(stream)
        other = _miniz_view(stream)
        if zf is not None:
            zf.close()
    if zf is None and other is None:
        raise error or ParseError("unreadable zip")
    return [info.filename for info in _merged(infos, other or [])[0]]


def _open_zip(stream: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ParseError(f"unreadable zip: {exc}") from exc


def _zipfile_view(stream: BinaryIO
                  ) -> tuple[zipfile.ZipFile | None, list[zipfile.ZipInfo], ParseError | None]:
    try:
        zf = _open_zip(stream)
    except ParseError as exc:
        return None, [], exc
    return zf, zf.infolist(), None


def _miniz_view(stream: BinaryIO) -> list[zipfile.ZipInfo] | None:
    """miniz's members; None when miniz would reject the zip (or it cannot be sized)."""
    try:
        return miniz_infos(stream)
    except (OSError, ValueError, EOFError) as exc:
        del exc
        return None


def _key(info: zipfile.ZipInfo) -> _Key:
    return info.filename, info.header_offset, info.compress_size


def _merged(infos: list[zipfile.ZipInfo], other: list[zipfile.ZipInfo]
            ) -> tuple[list[zipfile.ZipInfo], int]:
    """zipfile's entries, then miniz's that zipfile does not list (stored/deflated only,
    the methods miniz reads); also how many were added."""
    seen = {_key(info) for info in infos}
    extra = [info for info in other if _key(info) not in seen and _raw_readable(info)]
    return infos + extra, len(extra)


def iter_zip(container: Artifact, fmt: Format, walk: Walk) -> Iterator[Event]:
    stream = container.open()
    try:
        zf, infos, error = _zipfile_view(stream)
        other = _miniz_view(stream)
        if zf is None and not other:
            raise error or ParseError("unreadable zip")
        merged, added = _merged(infos, other or [])
        if added:
            yield _disagreement(container, zf is None, added)
        yield from _zip_events(container, fmt, zf, merged, walk, len(merged) - added)
    finally:
        stream.close()


def _disagreement(container: Artifact, zipfile_failed: bool, added: int) -> Finding:
    """LOW: the members themselves are judged; this only says why some were found twice."""
    how = ("Python's zipfile cannot open it" if zipfile_failed else
           "it holds a second central directory")
    return Finding(rules.POLYGLOT, f"{container.basename}: zip readers disagree: {how}; "
                   f"{added} member(s) that torch.load's reader (miniz) lists were scanned "
                   "too", key="central-directory", severity=Severity.LOW,
                   evidence={"first_format": "zip (zipfile)", "zip_start": 0,
                             "zip_entries": added, "reader": "miniz"})


def _zip_events(container: Artifact, fmt: Format, zf: zipfile.ZipFile | None,
                infos: list[zipfile.ZipInfo], walk: Walk, second_view: int) -> Iterator[Event]:
    """Events for zipfile's entries, then (from ``second_view`` on) miniz's extra ones; a
    name repeated across the two views is not a duplicate within either reader."""
    yield from too_many(container, len(infos), walk)
    views = (checks.Duplicates(), checks.Duplicates())
    for index, info in enumerate(infos[:walk.limits.max_members]):
        yield from checks.name_findings(info.filename)
        if info.is_dir():
            continue
        yield from views[index >= second_view].check(info.filename)
        mode = info.external_attr >> 16
        opener = walk.bounded(_zip_opener(container, zf, info))
        if stat.S_ISLNK(mode):
            target = checks.read_link_target(opener)
            yield from checks.link_findings(info.filename, target, hard=False)
            yield Skipped(info.filename, "symbolic link member", info.file_size)
            continue
        if info.flag_bits & 0x1:
            yield from _encrypted_zip_member(container, fmt, info, opener)
            continue
        too_big = bomb(info.filename, info.file_size, info.compress_size, walk)
        if too_big:
            yield from oversized(too_big, info.filename, info.file_size)
            continue
        yield container.child(info.filename, info.file_size, opener, fmt, _raw_readable(info))


def _raw_readable(info: zipfile.ZipInfo) -> bool:
    return info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _zip_opener(container: Artifact, zf: zipfile.ZipFile | None, info: zipfile.ZipInfo
                ) -> Callable[[], BinaryIO]:
    """Open a member the way PyTorch's miniz reader does (see zipraw).

    Stored and deflated members are read from the central directory's offsets, ignoring
    the local header name, flag bits and CRC, on a stream of their own; other methods
    (bzip2, lzma) go through zipfile with the CRC check off.
    """
    def open_member() -> BinaryIO:
        if _raw_readable(info) or zf is None:
            return RawZipMember(container.open(), info)  # type: ignore[return-value]
        member = zf.open(info)
        member._expected_crc = None  # type: ignore[attr-defined]
        return member  # type: ignore[return-value]
    return open_member


def _encrypted_zip_member(container: Artifact, fmt: Format, info: zipfile.ZipInfo,
                          opener: Callable[[], BinaryIO]) -> Iterator[Event]:
    """An encrypted-flagged member: reported, and scanned if its bytes are plain anyway.

    Setting the flag on a plaintext member made zipfile-based scanners skip it while
    lenient loaders read it (CVE-2025-1945); real ciphertext identifies as nothing.
    """
    child = container.child(info.filename, info.file_size, opener, fmt, _raw_readable(info))
    try:
        plain = identify(child.name, child.head(), info.file_size).by_content is not None
    except (OSError, ValueError, EOFError, zlib.error, LimitExceeded, ParseError):
        plain = False
    if not plain:
        yield from encrypted(info.filename, info.file_size)
        return
    yield Finding(rules.ENCRYPTED_MEMBER, f"member {info.filename} is flagged as encrypted "
                  "but holds plain data: scanned as a lenient loader would read it",
                  key=info.filename, severity=Severity.MEDIUM,
                  evidence={"member": info.filename, "plaintext": True})
    yield child
