"""Read-only stream wrappers that keep every read bounded."""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from hexscan.errors import LimitExceeded

_CHUNK = 1024 * 1024


def read_up_to(stream: BinaryIO, n: int) -> bytes:
    """At most ``n`` bytes, fewer only at the end of the data.

    ``read`` may return short on pipes and decompressors; a header parser that took one
    short read for the end of the file would report a truncation that is not there. Reads
    go in chunks of at most 1 MiB so a hostile length never sizes one allocation.
    """
    chunks: list[bytes] = []
    while n > 0:
        chunk = stream.read(min(n, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def skip_forward(stream: io.RawIOBase, target: int) -> int:
    """Read and discard until ``stream.tell()`` reaches ``target`` or the data ends.

    Decompressing readers cannot jump: seeking forward means producing every byte up to
    the target. Returns the position reached.
    """
    while stream.tell() < target:
        if not stream.read(min(_CHUNK, target - stream.tell())):
            break
    return stream.tell()


class Budget:
    """A byte budget shared by every stream of one top-level file (total decompressed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise LimitExceeded("max_total_size",
                                f"more than {self.limit} bytes decompressed from one file")


class OwningReader(io.RawIOBase):
    """A read-only stream over an inner stream it owns.

    It keeps its own position (the inner one may be compressed, or shared) and closes the
    inner stream when it is closed, so a member opened for a scan never leaks its handle.
    """

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._raw = inner
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class BoundedStream(OwningReader):
    """A readable stream that raises LimitExceeded past ``limit`` bytes.

    Only forward reads count; seeking back and re-reading a region is not charged twice
    (the high-water mark is what is charged) so header-then-body readers stay cheap.
    """

    def __init__(self, raw: BinaryIO, limit: int, budget: Budget | None = None,
                 what: str = "max_member_size") -> None:
        super().__init__(raw)
        self._limit = limit
        self._budget = budget
        self._what = what
        self._high = 0

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        if self._pos > self._high:
            grown = self._pos - self._high
            self._high = self._pos
            if self._high > self._limit:
                raise LimitExceeded(self._what, f"stream is larger than {self._limit} bytes")
            if self._budget is not None:
                self._budget.spend(grown)
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._raw.seek(offset, whence)
        return self._pos


def skip_zfile_header(raw: BinaryIO) -> BinaryIO:
    """Position ``raw`` on the zlib data of joblib's pre-0.10 zfile, if it is one.

    ``numpy_pickle_compat.read_zfile`` reads ``ZF`` and a 19-character hex length, skips one
    more byte when it is a space (Python 2 wrote one more), and inflates the rest.
    """
    start = raw.tell()
    header = read_up_to(raw, _ZFILE_HEADER + 1)
    if header[:2] != b"ZF":
        raw.seek(start)
    else:
        raw.seek(start + _ZFILE_HEADER + (header[_ZFILE_HEADER:] == b" "))
    return raw


#: ``ZF`` and the padded hex length (``len(hex(2**64))``) of a joblib zfile.
_ZFILE_HEADER = 2 + 19


class ZlibReader(io.RawIOBase):
    """A forward reader of a raw zlib stream (joblib's zlib compressor writes one).

    Seeking backwards restarts decompression, as gzip.GzipFile does.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._start = raw.tell()
        self._reset()

    def _reset(self) -> None:
        self._raw.seek(self._start)
        self._inflater = zlib.decompressobj()
        self._pending = b""
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                # Like gzip/bz2/lzma: a stream cut short is an error, not a shorter file.
                raise EOFError("compressed stream ended before the end-of-stream marker")
            self._pending = self._inflater.decompress(chunk, len(buffer))
            if self._inflater.unconsumed_tail:
                self._raw.seek(-len(self._inflater.unconsumed_tail), io.SEEK_CUR)
            if self._inflater.eof:
                self._eof = True
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            raise io.UnsupportedOperation("cannot seek from the end of a zlib stream")
        target = self._pos + offset if whence == io.SEEK_CUR else offset
        if target < self._pos:
            self._reset()
        return skip_forward(self, target)

    def tell(self) -> int:
        return self._pos
