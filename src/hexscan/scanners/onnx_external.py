"""Where ONNX external data comes from: the location's file and the byte range read from it.

onnx.load (onnx/external_data_helper.py and the checker's resolve_external_data_location)
and onnxruntime (tensorprotoutils.cc) both join ``location`` to the model's directory and
read ``length`` bytes from ``offset``. onnx 1.23 refuses absolute paths, '..', symbolic
links, hard links, non-regular files and ranges past the end; onnxruntime 1.31 refuses the
paths and ranges but follows a hard link: a name in the model directory that is a second
link to any file of the same file system makes its bytes an initializer. hex applies all
of those checks to the file on disk with ``os.stat`` only: nothing is opened or read.
"""

from __future__ import annotations

import hashlib
import ntpath
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field

#: onnxruntime's in-memory location: ``offset`` is a raw address in the loading process.
ORT_MEMORY_LOCATION = "*/_ORT_MEM_ADDR_/*"
_INT64_MAX = (1 << 63) - 1
_PLAIN_NUMBER = re.compile(r"[0-9]+")
#: Byte ranges remembered per external file, to find overlaps (bounded per model).
_MAX_RANGES = 100_000
#: Bytes of external data read per model to verify 'checksum' entries (SHA-1 of the range,
#: as the ONNX external-data spec defines it; the loaders themselves never verify it).
MAX_CHECKSUM_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class RangeProblem:
    """Why a tensor's external range is unsafe; ``high`` separates reads past a file (HIGH)
    from overlapping or self-referencing ranges (MEDIUM)."""

    reason: str
    detail: str
    high: bool


@dataclass
class RangeBook:
    """The ranges read so far, per resolved file: later tensors are checked for overlap."""

    ranges: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    count: int = 0
    checksum_budget: int = MAX_CHECKSUM_BYTES

    def overlap(self, path: str, start: int, end: int, tensor: str) -> str | None:
        """The tensor whose range [start, end) shares bytes with this one, if any."""
        seen = self.ranges.setdefault(path, [])
        for other_start, other_end, other in seen:
            if start < other_end and other_start < end and end > start:
                return other
        if self.count < _MAX_RANGES:
            seen.append((start, end, tensor))
            self.count += 1
        return None


def location_escape(location: str, model_dir: str | None) -> str | None:
    """Why an external-data location leaves the model directory, or None when it stays."""
    if not location or "\x00" in location:
        return "is empty or holds a NUL byte" if "\x00" in location else None
    if location == ORT_MEMORY_LOCATION:
        return "is onnxruntime's in-memory marker: its offset is a raw process address"
    if location.startswith(("/", "\\")) or ntpath.splitdrive(location)[0] or \
            posixpath.isabs(location):
        return "is an absolute path"
    if "://" in location or location.lower().startswith("file:"):
        return "is a URL"
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        return "climbs out with '..'"
    if parts[0].startswith("~"):
        return "starts at a home directory"
    if model_dir is None:
        return None
    base = os.path.realpath(model_dir)
    target = os.path.realpath(os.path.join(base, *parts))
    try:
        inside = os.path.commonpath([base, target]) == base
    except ValueError:
        inside = False
    if not inside and not _hub_cache_blob(base, target):
        return f"resolves (through a symbolic link) to {target}"
    return _file_kind(target)


def _hub_cache_blob(base: str, target: str) -> bool:
    """The Hugging Face hub cache layout: ``<cache>/models--org--name/snapshots/<rev>/``
    holds symbolic links to ``<cache>/models--org--name/blobs/<hash>``, made by the hub
    client for every downloaded file. A link into the same repository's blobs is that
    layout, not an escape."""
    parts = base.split(os.sep)
    if "snapshots" not in parts:
        return False
    at = len(parts) - 1 - parts[::-1].index("snapshots")
    repo = os.sep.join(parts[:at])
    return os.path.basename(repo).startswith(("models--", "datasets--", "spaces--")) and \
        os.path.dirname(target) == os.path.join(repo, "blobs")


def _file_kind(target: str) -> str | None:
    """A hard-linked or non-regular target: what onnx 1.23 rejects and onnxruntime reads."""
    try:
        info = os.stat(target)
    except OSError:
        return None  # absent: the loader fails; scanning the model file alone is common
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a device, FIFO or directory)"
    if info.st_nlink > 1:
        return (f"is a file with {info.st_nlink} hard links: its bytes may be any file of "
                "the file system (onnxruntime follows hard links)")
    return None


def external_target(location: str, model_dir: str) -> str:
    """The resolved path a location names (called once location_escape found nothing)."""
    return os.path.realpath(os.path.join(model_dir, *location.replace("\\", "/").split("/")))


def _number(text: str | None, what: str) -> tuple[int | None, RangeProblem | None]:
    """Parse as onnx does (Python int), flagging what the runtimes would read differently."""
    if text is None:
        return None, None
    stripped = text.strip()
    try:
        value = int(stripped)
    except ValueError:
        return None, None  # not a number: reported by the tensor sanity check
    if value < 0:
        return None, RangeProblem(f"negative-{what}", f"external_data {what} {text} is "
                                  "negative: a loader without checks seeks before the data",
                                  True)
    if value > _INT64_MAX:
        return None, RangeProblem(f"overflow-{what}", f"external_data {what} {text} does not "
                                  "fit in 64 bits: runtimes wrap it to another position", True)
    if not _PLAIN_NUMBER.fullmatch(stripped):
        return None, RangeProblem(f"spelling-{what}", f"external_data {what} {text!r} is not "
                                  "plain digits: onnx and onnxruntime parse it differently",
                                  False)
    return value, None


def range_problems(entries: dict[str, str], target: str | None, model_path: str | None,
                   tensor: str, book: RangeBook) -> list[RangeProblem]:
    """Problems of the [offset, offset + length) range against the file's size on disk."""
    offset, bad_offset = _number(entries.get("offset"), "offset")
    length, bad_length = _number(entries.get("length"), "length")
    found = [p for p in (bad_offset, bad_length) if p is not None]
    if found or target is None:
        return found
    try:
        info = os.stat(target)
    except OSError:
        return found
    if not stat.S_ISREG(info.st_mode):
        return found
    size = info.st_size
    start = offset or 0
    end = size if length is None else start + length
    if start > size:
        found.append(RangeProblem("past-end", f"external_data offset {start} is past the end "
                                  f"of its {size}-byte file", True))
    elif end > size:
        found.append(RangeProblem("past-end", f"external_data range {start}..{end} runs "
                                  f"{end - size} bytes past the end of its {size}-byte file",
                                  True))
    if model_path is not None and os.path.realpath(model_path) == target:
        found.append(RangeProblem("model-file", "external_data reads the model file itself "
                                  "(its protobuf bytes become tensor values)", False))
    elif end > start:
        other = book.overlap(target, start, min(end, size), tensor)
        if other is not None:
            found.append(RangeProblem("overlap", f"external_data range {start}..{end} "
                                      f"overlaps the range of tensor {other!r}", False))
    checksum = entries.get("checksum")
    if checksum and end <= size and end - start <= book.checksum_budget:
        book.checksum_budget -= end - start
        digest = _sha1(target, start, end)
        if digest is not None and digest != checksum.strip().lower():
            found.append(RangeProblem("checksum", f"external_data checksum {checksum[:64]!r} "
                                      f"does not match the SHA-1 {digest} of the data: the "
                                      "data file was changed after export", False))
    return found


def _sha1(path: str, start: int, end: int) -> str | None:
    """SHA-1 of [start, end) of a regular file, read in chunks; None when unreadable."""
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                chunk = handle.read(min(left, 1 << 20))
                if not chunk:
                    return None
                digest.update(chunk)
                left -= len(chunk)
    except OSError:
        return None
    return digest.hexdigest()
