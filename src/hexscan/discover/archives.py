"""Containers as virtual directories: list and open members without extracting to disk.

Each ``iter_*`` function yields, per member, a child Artifact to scan, a Finding (a bound
was exceeded, a member is encrypted), a Skipped entry, or an Unread entry when content that
should have been inspected was not (which makes the scan incomplete, exit code 3). Reads go
through BoundedStream so a member cannot decompress past the limits whatever its headers
claim.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from hexscan.discover import members as checks
from hexscan.discover.artifact import Artifact
from hexscan.discover.events import (
    Event,
    Skipped,
    Unread,
    Walk,
    bomb,
    encrypted,
    oversized,
    too_many,
)
from hexscan.discover.streams import BoundedStream, ZlibReader, skip_zfile_header
from hexscan.discover.zipwalk import iter_zip, zip_names
from hexscan.engine.limits import ResourceLimits
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.kinds import COMPRESSED_STREAMS, ZIP_BASED, Format
from hexscan.model.finding import Finding
from hexscan.rules import archive as rules


def iter_members(container: Artifact, fmt: Format, walk: Walk) -> Iterator[Event]:
    """Dispatch on the container format."""
    if fmt in ZIP_BASED:
        yield from iter_zip(container, fmt, walk)
    elif fmt is Format.TAR:
        yield from _iter_tar(container, walk)
    elif fmt in COMPRESSED_STREAMS:
        yield from _iter_stream(container, fmt, walk)
    elif fmt is Format.SEVEN_ZIP:
        yield from _iter_7z(container, walk)


def _iter_tar(container: Artifact, walk: Walk) -> Iterator[Event]:
    stream = container.open()
    try:
        try:
            tf = tarfile.open(fileobj=stream, mode="r:")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ParseError(f"unreadable tar: {exc}") from exc
        yield from _tar_events(container, tf, walk)
    finally:
        stream.close()


def _tar_events(container: Artifact, tf: tarfile.TarFile, walk: Walk) -> Iterator[Event]:
    count = 0
    dups = checks.Duplicates()
    while True:
        try:
            info = tf.next()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ParseError(f"unreadable tar member header: {exc}") from exc
        if info is None:
            return
        count += 1
        if count > walk.limits.max_members:
            yield from too_many(container, count, walk)
            return
        yield from checks.name_findings(info.name)
        if info.isdir():
            continue
        yield from dups.check(info.name)
        if not info.isreg():
            yield from checks.tar_special(info)
            yield Skipped(info.name, f"{checks.tar_kind(info)} member", info.size)
            continue
        too_big = bomb(info.name, info.size, info.size, walk)
        if too_big:
            yield from oversized(too_big, info.name, info.size)
            continue
        yield container.child(info.name, info.size, walk.bounded(_tar_opener(tf, info)),
                              Format.TAR, True)


def _tar_opener(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], BinaryIO]:
    def open_member() -> BinaryIO:
        member = tf.extractfile(info)
        if member is None:
            raise ParseError(f"tar member {info.name} has no data")
        return member
    return open_member


_DECOMPRESSORS: dict[Format, Callable[[BinaryIO], BinaryIO]] = {
    Format.GZIP: lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),  # type: ignore[dict-item]
    Format.BZIP2: lambda raw: bz2.BZ2File(raw, mode="rb"),  # type: ignore[dict-item]
    Format.XZ: lambda raw: lzma.LZMAFile(raw, mode="rb"),  # type: ignore[dict-item]
    Format.ZLIB: lambda raw: ZlibReader(skip_zfile_header(raw)),  # type: ignore[dict-item]
}

_SUFFIXES = {".gz": "", ".tgz": ".tar", ".bz2": "", ".xz": "", ".lzma": "", ".z": "",
             ".lz4": "", ".zlib": ""}


def _stream_name(container: Artifact) -> str:
    stem, ext = posixpath.splitext(container.basename)
    if ext.lower() in _SUFFIXES:
        return stem + _SUFFIXES[ext.lower()]
    return container.basename


def _iter_stream(container: Artifact, fmt: Format, walk: Walk) -> Iterator[Event]:
    decompress = _DECOMPRESSORS.get(fmt) or _lz4_decompressor()
    if decompress is None:
        yield Skipped(_stream_name(container), "lz4 support needs the 'lz4' package")
        return
    limit, what = _stream_limit(container.size, walk.limits)

    def open_stream() -> BinaryIO:
        raw = BoundedStream(decompress(container.open()), limit, walk.budget, what)
        return io.BufferedReader(raw, 1024 * 1024)  # type: ignore[return-value]

    yield container.child(_stream_name(container), None, open_stream, fmt, False)


def _stream_limit(packed: int | None, limits: ResourceLimits) -> tuple[int, str]:
    """The most a compressed stream may expand to, and the limit that names the bound.

    A stream has no declared size, so the ratio bound is applied while reading, with the
    same meaning as for zip members (events.bomb): past ``ratio_min_size`` bytes, no more than
    ``max_ratio`` times the packed size. bzip2 and xz reach ratios of 10^5 and more, so
    this matters for small packed streams too.
    """
    if packed is None:
        return limits.max_member_size, "max_member_size"
    by_ratio = max(limits.ratio_min_size, int(packed * limits.max_ratio))
    if by_ratio < limits.max_member_size:
        return by_ratio, "max_ratio"
    return limits.max_member_size, "max_member_size"


def _lz4_decompressor() -> Callable[[BinaryIO], BinaryIO] | None:
    try:
        import lz4.frame  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda raw: lz4.frame.LZ4FrameFile(raw, mode="rb")  # type: ignore[no-any-return]


def _iter_7z(container: Artifact, walk: Walk) -> Iterator[Event]:
    try:
        import py7zr
        import py7zr.io
    except ImportError:
        yield Skipped(container.basename, "7z support needs hex[archives] (py7zr)")
        return
    with container.open() as stream:
        try:
            archive = py7zr.SevenZipFile(stream, mode="r")
            infos = archive.list()
        except py7zr.exceptions.PasswordRequired:
            # Encrypted headers: not even the member names can be read.
            yield Finding(rules.ENCRYPTED_MEMBER,
                          f"{container.basename} has encrypted headers; no member can be "
                          "listed or read", key="headers", evidence={"encrypted": "headers"})
            yield Unread(None, "unreadable", "encrypted 7z headers: content not inspected")
            return
        except (py7zr.exceptions.ArchiveError, OSError, ValueError, EOFError) as exc:
            raise ParseError(f"unreadable 7z: {exc}") from exc
        yield from too_many(container, len(infos), walk)
        yield from _7z_events(container, archive, infos[:walk.limits.max_members], walk)


def _7z_events(container: Artifact, archive: object, infos: list, walk: Walk
               ) -> Iterator[Event]:
    import py7zr.io

    dups = checks.Duplicates()
    for info in infos:
        yield from checks.name_findings(info.filename)
        if info.is_directory:
            continue
        yield from dups.check(info.filename)
        size = int(info.uncompressed or 0)
        packed = int(info.compressed or size or 1)
        too_big = bomb(info.filename, size, packed, walk)
        if too_big or size > walk.limits.buffer_size:
            yield from oversized(too_big or _limit_finding(info.filename, walk), info.filename,
                                  size)
            continue
        if getattr(info, "is_symlink", False):
            yield Skipped(info.filename, "symbolic link member", size)
            continue
        factory = py7zr.io.BytesIOFactory(walk.limits.buffer_size)
        try:
            archive.reset()  # type: ignore[attr-defined]
            archive.extract(targets=[info.filename], factory=factory)  # type: ignore[attr-defined]
            data = factory.get(info.filename).read()
        except Exception as exc:  # noqa: BLE001 - py7zr raises many types on hostile input
            if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
                yield from encrypted(info.filename, size)
                continue
            raise ParseError(f"unreadable 7z member {info.filename}: {exc}") from exc
        walk.budget.spend(len(data))
        yield container.child(info.filename, len(data), _bytes_opener(data), Format.SEVEN_ZIP,
                              True)


def _bytes_opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _limit_finding(name: str, walk: Walk) -> Finding:
    from hexscan.rules import format as fmt_rules

    return Finding(fmt_rules.LIMIT_EXCEEDED,
                   f"7z member {name} is larger than the in-memory bound "
                   f"({walk.limits.buffer_size} bytes) and was not read", key=name,
                   evidence={"member": name, "limit": "buffer_size"})


__all__ = ["Event", "Skipped", "Unread", "Walk", "iter_members", "zip_names", "LimitExceeded"]
