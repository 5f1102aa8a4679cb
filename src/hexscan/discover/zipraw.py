"""Read a zip member the way PyTorch's reader (miniz) does, not the way zipfile does.

Python's zipfile refuses members whose local header name differs from the central
directory, whose flag bits claim encryption or patch data, or whose CRC is wrong. Loaders
built on miniz locate data from the central directory and skip those checks, and scanner
bypasses were built on exactly that difference (CVE-2025-1944, CVE-2025-1945). When
zipfile refuses a member, hex reads its bytes from the offsets the central directory gives.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import BinaryIO

from hexscan.discover.streams import OwningReader, skip_forward
from hexscan.errors import ParseError

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_CHUNK = 1024 * 1024


class RawZipMember(OwningReader):
    """A forward stream of one member's data, inflated when it is deflated."""

    def __init__(self, fp: BinaryIO, info: zipfile.ZipInfo) -> None:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ParseError(f"member {info.filename}: compression method "
                             f"{info.compress_type} cannot be read raw")
        # Only once the member is readable: from here on, closing it closes ``fp``.
        super().__init__(fp)
        self._info = info
        self._start = self._data_start()
        self._rewind()

    def _data_start(self) -> int:
        self._raw.seek(self._info.header_offset)
        header = self._raw.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise ParseError(f"member {self._info.filename}: no local header at "
                             f"offset {self._info.header_offset}")
        fields = _LOCAL_HEADER.unpack(header)
        name_len: int = fields[-2]
        extra_len: int = fields[-1]
        return self._info.header_offset + _LOCAL_HEADER.size + name_len + extra_len

    def _rewind(self) -> None:
        self._raw.seek(self._start)
        self._left = self._info.compress_size
        self._inflater = zlib.decompressobj(-15) \
            if self._info.compress_type == zipfile.ZIP_DEFLATED else None
        self._pending = b""
        self._pos = 0

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = _CHUNK if self._inflater is not None else max(len(buffer), 8192)
        while not self._pending and self._left > 0:
            chunk = self._raw.read(min(want, self._left))
            if not chunk:
                break
            self._left -= len(chunk)
            self._pending = self._inflater.decompress(chunk) if self._inflater else chunk
        if not self._pending and self._inflater is not None and self._left <= 0:
            self._pending, self._inflater = self._inflater.flush(), None
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            offset, whence = self._info.file_size + offset, io.SEEK_SET
        target = self._pos + offset if whence == io.SEEK_CUR else offset
        if self._inflater is None and self._info.compress_type == zipfile.ZIP_STORED:
            return self._seek_stored(max(0, min(target, self._info.compress_size)))
        if target < self._pos:
            self._rewind()
        return skip_forward(self, target)

    def _seek_stored(self, target: int) -> int:
        """Stored data is addressable: jump, instead of reading up to the target."""
        self._raw.seek(self._start + target)
        self._left = self._info.compress_size - target
        self._pending = b""
        self._pos = target
        return target

