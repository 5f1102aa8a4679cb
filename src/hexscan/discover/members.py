"""Checks on what a container's members *are*: names, links, special files, duplicates,
and a zip hidden inside a file of another format (polyglot).

archives.py yields the Findings built here next to the member events, so the walk reports
them with the member's location. Nothing here extracts or follows anything.
"""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.paths import escape_kind, link_escapes
from hexscan.rules import archive as rules

#: A symlink target stored as a zip member is a short path.
_LINK_TARGET_MAX = 4096
_EOCD = b"PK\x05\x06"
_EOCD_STRUCT = struct.Struct("<4s4H2LH")
#: The EOCD record lies within the last 22 + 65535 bytes (its comment is at most 64 KiB).
EOCD_SEARCH = _EOCD_STRUCT.size + 0xFFFF


def name_findings(name: str) -> Iterator[Finding]:
    """A finding when extracting ``name`` would write outside the target directory."""
    kind = escape_kind(name)
    if kind:
        yield Finding(rules.PATH_TRAVERSAL, f"member {name!r} would be extracted outside the "
                      f"target directory ({kind})", key=name,
                      evidence={"member": name, "escape": kind})


class Duplicates:
    """Reports the second (and only the second) entry of each repeated member name."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def check(self, name: str) -> Iterator[Finding]:
        count = self._seen.get(name, 0) + 1
        self._seen[name] = count
        if count == 2:
            yield Finding(rules.DUPLICATE_MEMBER, f"member name {name!r} appears more than "
                          "once: loaders disagree on which copy they read (every copy is "
                          "scanned)", key=name, evidence={"member": name})


def link_findings(name: str, target: str, hard: bool) -> Iterator[Finding]:
    """A finding when a link member points outside the archive root."""
    kind = escape_kind(target) if hard else link_escapes(name, target)
    if hard and kind is None and target.replace("\\", "/").startswith("../"):
        kind = "traversal"
    if kind:
        what = "hard link" if hard else "symbolic link"
        yield Finding(rules.LINK_ESCAPE, f"{what} {name!r} points to {target!r}, outside the "
                      f"archive ({kind})", key=name,
                      evidence={"member": name, "target": target[:1024], "link": what,
                                "escape": kind})


def tar_kind(info: tarfile.TarInfo) -> str:
    if info.issym() or info.islnk():
        return "link"
    return ("character device" if info.ischr() else "block device" if info.isblk() else
            "FIFO" if info.isfifo() else "special file")


def tar_special(info: tarfile.TarInfo) -> Iterator[Finding]:
    """Links that leave the archive, and device/FIFO members."""
    kind = tar_kind(info)
    if kind == "link":
        yield from link_findings(info.name, info.linkname, hard=info.islnk())
    elif kind != "special file":
        yield special_finding(info.name, kind)


def special_finding(name: str, kind: str) -> Finding:
    return Finding(rules.SPECIAL_MEMBER, f"member {name!r} is a {kind}", key=name,
                   evidence={"member": name, "kind": kind})


def read_link_target(opener: Callable[[], BinaryIO]) -> str:
    """The target path a zip symlink member stores as its content (bounded)."""
    try:
        with opener() as stream:
            data = stream.read(_LINK_TARGET_MAX)
    except Exception:  # noqa: BLE001 - an unreadable link target is just not judged
        return ""
    return data.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class EndRecord:
    """Where a zip's end-of-central-directory record is and where the zip really starts."""

    eocd: int          # absolute offset of the EOCD record
    end: int           # absolute offset just past the record and its comment
    zip_start: int     # bytes before the zip's first byte (prepended data)
    entries: int


def find_end_record(tail: bytes, tail_start: int) -> EndRecord | None:
    """The last consistent EOCD record in ``tail`` (the file's last bytes from tail_start)."""
    pos = len(tail)
    while True:
        pos = tail.rfind(_EOCD, 0, pos)
        if pos < 0:
            return None
        if pos + _EOCD_STRUCT.size > len(tail):
            continue
        _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment = \
            _EOCD_STRUCT.unpack_from(tail, pos)
        absolute = tail_start + pos
        cd_start = absolute - cd_size
        if disk == cd_disk == 0 and n_disk == n_total and cd_start >= cd_offset >= 0 and \
                _central_header_at(tail, cd_start - tail_start, n_total):
            return EndRecord(absolute, absolute + _EOCD_STRUCT.size + comment,
                             cd_start - cd_offset, n_total)


def _central_header_at(tail: bytes, rel: int, entries: int) -> bool:
    if entries == 0:
        return rel >= 0
    if rel < 0:
        return True  # the central directory starts before the bytes we hold: trust the EOCD
    return tail[rel:rel + 4] == b"PK\x01\x02"


def read_tail(art: Artifact, n: int) -> tuple[bytes, int] | None:
    """The last ``n`` bytes of an artifact and where they start, when that is affordable."""
    if art.size is None:
        return None
    start = max(0, art.size - n)
    if art.size <= len(art.head()):
        return art.head()[start:], start
    if not art.tail_cheap:
        return None
    with art.open() as stream:
        stream.seek(start)
        return stream.read(n), start


def embedded_zip(art: Artifact, fmt: Format, max_size: int) -> Finding | None:
    """A polyglot finding when a non-zip artifact also parses as a zip from its end."""
    if art.size is None or art.size < _EOCD_STRUCT.size or \
            (art.member is not None and art.size > max_size):
        return None
    got = read_tail(art, EOCD_SEARCH)
    if got is None or _EOCD not in got[0]:
        return None
    record = find_end_record(*got)
    if record is None or record.entries == 0:
        return None
    where = ("data is prepended to a zip archive" if fmt is Format.UNKNOWN else
             f"a zip archive is appended to {fmt.value} content")
    return Finding(rules.POLYGLOT, f"{art.basename}: {where} (zip starts at byte "
                   f"{record.zip_start}); scanned both ways", key="zip",
                   severity=Severity.HIGH if fmt in _CODE_HEADS else None,
                   offset=record.zip_start,
                   evidence={"first_format": fmt.value, "zip_start": record.zip_start,
                             "zip_entries": record.entries})


#: A polyglot whose first reading runs code (pickle head, zip tail) is HIGH.
_CODE_HEADS = frozenset({Format.PICKLE, Format.JOBLIB, Format.PYTORCH_LEGACY,
                         Format.EXECUTABLE, Format.SHELL_SCRIPT, Format.PYTHON_SOURCE})
