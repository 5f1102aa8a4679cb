"""A small, bounded FlatBuffers table reader (no generated code, no framework).

Reads go through a ByteSource: an in-memory buffer, or a seekable stream read in cached
pages, so a multi-GB TFLite model costs a few MiB of memory. Every offset is checked
against the source's size and every vector length against a cap; a violation raises
ParseError (or LimitExceeded for a cap), never IndexError or a huge allocation.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import BinaryIO, Protocol

from hexscan.errors import LimitExceeded, ParseError

_U8, _U16, _I32, _U32, _U64 = (struct.Struct(f) for f in ("<B", "<H", "<i", "<I", "<Q"))
_PAGE = 64 * 1024
_PAGES = 64
#: The most vector elements any caller may iterate.
MAX_VECTOR = 1_000_000
#: The most bytes a reader may pull from a source (cache misses), a guard against loops.
MAX_READ = 256 * 1024 * 1024
#: The most primitive field reads per buffer: bounds the time a hostile table graph costs.
MAX_READS = 2_000_000


class ByteSource(Protocol):
    size: int

    def read(self, pos: int, n: int) -> bytes: ...


class BytesSource:
    """Bytes held in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, pos: int, n: int) -> bytes:
        return self.data[pos:pos + n]


class StreamSource:
    """A seekable stream read in cached 64 KiB pages, with a cap on bytes pulled."""

    def __init__(self, stream: BinaryIO, size: int, max_read: int = MAX_READ) -> None:
        self.stream = stream
        self.size = size
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self._pulled = 0
        self._max = max_read

    def _page(self, index: int) -> bytes:
        page = self._pages.get(index)
        if page is not None:
            self._pages.move_to_end(index)
            return page
        self._pulled += _PAGE
        if self._pulled > self._max:
            raise LimitExceeded("max_read", f"more than {self._max} bytes read from one model")
        self.stream.seek(index * _PAGE)
        page = self.stream.read(_PAGE)
        self._pages[index] = page
        if len(self._pages) > _PAGES:
            self._pages.popitem(last=False)
        return page

    def read(self, pos: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            index, start = divmod(pos, _PAGE)
            chunk = self._page(index)[start:start + n]
            if not chunk:
                break
            out += chunk
            pos += len(chunk)
            n -= len(chunk)
        return bytes(out)


class FlatBuffer:
    """Bounds-checked primitive reads over a ByteSource."""

    def __init__(self, source: ByteSource, max_reads: int = MAX_READS) -> None:
        self.src = source
        self.size = source.size
        self._reads = 0
        self._max_reads = max_reads

    def _get(self, fmt: struct.Struct, pos: int) -> int:
        self._reads += 1
        if self._reads > self._max_reads:
            raise LimitExceeded("max_reads", f"more than {self._max_reads} flatbuffer reads")
        if pos < 0 or pos + fmt.size > self.size:
            raise ParseError(f"flatbuffer read at {pos} past the end ({self.size} bytes)")
        raw = self.src.read(pos, fmt.size)
        if len(raw) != fmt.size:
            raise ParseError(f"flatbuffer truncated at {pos}")
        return int(fmt.unpack(raw)[0])

    def u8(self, pos: int) -> int:
        return self._get(_U8, pos)

    def u16(self, pos: int) -> int:
        return self._get(_U16, pos)

    def i32(self, pos: int) -> int:
        return self._get(_I32, pos)

    def u32(self, pos: int) -> int:
        return self._get(_U32, pos)

    def u64(self, pos: int) -> int:
        return self._get(_U64, pos)

    def deref(self, pos: int) -> int:
        """Follow the uoffset stored at ``pos``."""
        target = pos + self.u32(pos)
        if target >= self.size:
            raise ParseError(f"offset at {pos} points past the end of the buffer")
        return target

    def root(self) -> Table:
        return Table(self, self.deref(0))

    def identifier(self) -> bytes:
        return self.src.read(4, 4)


class Table:
    """One table: fields are looked up through its vtable."""

    def __init__(self, fb: FlatBuffer, pos: int) -> None:
        self.fb = fb
        self.pos = pos
        self.vtable = pos - fb.i32(pos)
        vt_size = fb.u16(self.vtable)
        if vt_size < 4 or vt_size % 2:
            raise ParseError(f"bad vtable size {vt_size} at {self.vtable}")
        self.vt_size = vt_size

    def _field(self, index: int) -> int:
        """Absolute position of field ``index``, or 0 when absent."""
        slot = 4 + 2 * index
        if slot >= self.vt_size:
            return 0
        off = self.fb.u16(self.vtable + slot)
        return self.pos + off if off else 0

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def scalar(self, index: int, kind: str, default: int = 0) -> int:
        """A scalar field read with FlatBuffer method ``kind`` (u8, u16, i32, u32, u64)."""
        pos = self._field(index)
        if not pos:
            return default
        value: int = getattr(self.fb, kind)(pos)
        return value

    def i8(self, index: int, default: int = 0) -> int:
        pos = self._field(index)
        if not pos:
            return default
        value = self.fb.u8(pos)
        return value - 256 if value > 127 else value

    def table(self, index: int) -> Table | None:
        pos = self._field(index)
        return Table(self.fb, self.fb.deref(pos)) if pos else None

    def string(self, index: int, limit: int = 4096) -> bytes | None:
        pos = self._field(index)
        if not pos:
            return None
        start = self.fb.deref(pos)
        length = self.fb.u32(start)
        if start + 4 + length > self.fb.size:
            raise ParseError(f"string at {start} runs past the end")
        return self.fb.src.read(start + 4, min(length, limit))

    def vector(self, index: int) -> tuple[int, int] | None:
        """(position of the first element, length) of a vector field."""
        pos = self._field(index)
        if not pos:
            return None
        start = self.fb.deref(pos)
        length = self.fb.u32(start)
        if length > MAX_VECTOR:
            raise LimitExceeded("max_vector", f"vector of {length} elements at {start}")
        return start + 4, length

    def vector_span(self, index: int, elem_size: int) -> tuple[int, int] | None:
        """(byte position, byte length) of a scalar vector, checked against the size."""
        pos = self._field(index)
        if not pos:
            return None
        start = self.fb.deref(pos)
        length = self.fb.u32(start)
        if start + 4 + length * elem_size > self.fb.size:
            raise ParseError(f"vector at {start} ({length} elements) runs past the end")
        return start + 4, length * elem_size

    def tables(self, index: int) -> list[Table]:
        vec = self.vector(index)
        if vec is None:
            return []
        first, length = vec
        return [Table(self.fb, self.fb.deref(first + 4 * i)) for i in range(length)]

    def ints(self, index: int, limit: int = MAX_VECTOR) -> list[int]:
        vec = self.vector(index)
        if vec is None:
            return []
        first, length = vec
        return [self.fb.i32(first + 4 * i) for i in range(min(length, limit))]
