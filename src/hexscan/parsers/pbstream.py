"""Bounded protobuf readers for models too large to hold: one module, two access patterns.

:class:`ProtoStream` reads forwards (ONNX, TensorFlow, Keras); :class:`Walker` reads a
random-access :class:`~hexscan.parsers.flatbuf.ByteSource` (Core ML, Caffe).

``protowire`` walks a message held in memory. ONNX models and TF SavedModels/GraphDefs can
be gigabytes, almost all of it tensor payloads, and may come from a compressed container
member that can only be read forwards. This reader walks a *stream*: it reads field
headers, hands small fields to the caller, and skips large ones (seeking when the stream
allows it, reading and discarding otherwise). Nesting is explicit (the caller decides
which length-delimited fields are messages to enter), so memory is bounded by what the
caller keeps, not by the file.

Core ML and Caffe models hold hundreds of MB of weights inside the message, but are read
through a paged random-access source; :class:`Walker` walks any span of it and only reads
the small fields it is asked for. Its errors are ParseError and its field budget is
``max_fields`` (not ``max_proto_fields``): the two readers report differently on purpose.

Wire knowledge only: which field means what belongs to the format parsers above it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hexscan.errors import LimitExceeded, ParseError
from hexscan.parsers.flatbuf import ByteSource
from hexscan.parsers.protowire import (
    EGROUP,
    FIXED32,
    FIXED64,
    LEN,
    SGROUP,
    VARINT,
    Field,
    WireError,
    read_varint,
)

__all__ = ["FIXED32", "FIXED64", "LEN", "SOURCE_MAX_DEPTH", "SOURCE_MAX_FIELDS", "VARINT",
           "ProtoStream", "StreamField", "Walker", "WireError", "malformed_as_parse_error",
           "packed_varints", "signed64", "text"]

_BUFFER = 64 * 1024
#: Fields read from one file before the walk stops (a hostile file of tiny fields).
DEFAULT_MAX_FIELDS = 20_000_000
#: Nesting depth of messages the caller may enter.
DEFAULT_MAX_DEPTH = 64
#: The most fields one :class:`Walker` model walk may visit.
SOURCE_MAX_FIELDS = 2_000_000
#: The deepest message nesting a :class:`Walker` caller follows (the caller checks it).
SOURCE_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class StreamField:
    """One field header: number, wire type, and the value (varint/fixed) or payload length.

    For LEN fields ``start`` is the payload's offset in the stream and ``length`` its size;
    the caller reads it (:meth:`ProtoStream.read_capped`), enters it (:meth:`ProtoStream.fields`
    with ``end=field.end``) or leaves it, in which case the walk skips it.
    """

    number: int
    wire_type: int
    value: int = 0
    start: int = 0
    length: int = 0

    @property
    def end(self) -> int:
        return self.start + self.length


class ProtoStream:
    """Walks protobuf fields from a binary stream with a bounded read buffer."""

    def __init__(self, stream: BinaryIO, size: int | None, *,
                 max_fields: int = DEFAULT_MAX_FIELDS,
                 max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._f = stream
        self.size = size
        self._buf = b""
        self._bpos = 0
        self._base = 0  # stream offset of _buf[0]
        self._seekable = _seekable(stream)
        self.max_fields = max_fields
        self.max_depth = max_depth
        self.fields_read = 0
        self._depth = 0

    @property
    def pos(self) -> int:
        """The current offset in the stream."""
        return self._base + self._bpos

    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available in the buffer; False at the end of the stream."""
        have = len(self._buf) - self._bpos
        if have >= n:
            return True
        want = max(n - have, _BUFFER)
        parts = [self._buf[self._bpos:]]
        got = have
        while got < n:
            chunk = self._f.read(want)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        self._base += self._bpos
        self._buf = b"".join(parts)
        self._bpos = 0
        return len(self._buf) >= n

    def skip_to(self, target: int) -> None:
        """Move forward to ``target`` without keeping the bytes in between."""
        if target < self.pos:
            raise WireError("a field ends before the reader's position")
        if target <= self._base + len(self._buf):
            self._bpos = target - self._base
            return
        if self.size is not None and target > self.size:
            raise WireError("a field runs past the end of the file")
        if self._seekable:
            self._f.seek(target)
        else:
            remaining = target - (self._base + len(self._buf))
            while remaining > 0:
                chunk = self._f.read(min(remaining, 1 << 20))
                if not chunk:
                    raise WireError("the stream ends inside a field")
                remaining -= len(chunk)
        self._base, self._buf, self._bpos = target, b"", 0

    def read(self, length: int) -> bytes:
        """Read ``length`` bytes at the current position (the caller bounds ``length``)."""
        if not self._fill(length):
            raise WireError("the stream ends inside a field")
        data = self._buf[self._bpos:self._bpos + length]
        self._bpos += length
        return data

    def read_capped(self, field: StreamField, cap: int) -> tuple[bytes, bool]:
        """A LEN field's payload, at most ``cap`` bytes; True when it was cut short."""
        data = self.read(min(field.length, cap))
        return data, field.length > cap

    def _varint(self) -> int:
        result = shift = 0
        while True:
            if self._bpos >= len(self._buf) and not self._fill(1):
                raise WireError("truncated varint")
            byte = self._buf[self._bpos]
            self._bpos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise WireError("varint too long")

    def at_end(self) -> bool:
        return not self._fill(1)

    def fields(self, end: int | None = None) -> Iterator[StreamField]:
        """Yield the fields of the message that ends at ``end`` (None: end of stream).

        After each LEN field the walk continues at the field's end whatever the caller
        read of it; a caller that read past it has a bug, reported as a wire error.
        """
        if self._depth >= self.max_depth:
            raise LimitExceeded("max_proto_depth",
                                f"protobuf messages nested deeper than {self.max_depth}")
        if end is not None and self.size is not None and end > self.size:
            raise WireError("a message runs past the end of the file")
        self._depth += 1
        try:
            while (self.pos < end) if end is not None else not self.at_end():
                field = self._header(end)
                yield field
                if field.wire_type == LEN:
                    if self.pos > field.end:
                        raise WireError("a nested message overruns its field")
                    self.skip_to(field.end)
            if end is not None and self.pos != end:
                raise WireError("a field overruns the end of its message")
        finally:
            self._depth -= 1

    def _header(self, end: int | None) -> StreamField:
        self.fields_read += 1
        if self.fields_read > self.max_fields:
            raise LimitExceeded("max_proto_fields",
                                f"more than {self.max_fields} protobuf fields in one file")
        key = self._varint()
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            return StreamField(number, wire_type, value=self._varint())
        if wire_type in (FIXED64, FIXED32):
            n = 8 if wire_type == FIXED64 else 4
            return StreamField(number, wire_type, value=int.from_bytes(self.read(n), "little"))
        if wire_type == LEN:
            length = self._varint()
            start = self.pos
            limit = end if end is not None else self.size
            if limit is not None and start + length > limit:
                raise WireError("length-delimited field runs past the end of its message")
            return StreamField(number, wire_type, start=start, length=length)
        if wire_type in (SGROUP, EGROUP):
            raise WireError("group fields are not used by these formats")
        raise WireError(f"unsupported wire type {wire_type}")


class Walker:
    """A field iterator over a source, sharing one field budget across a whole model."""

    def __init__(self, source: ByteSource, max_fields: int = SOURCE_MAX_FIELDS) -> None:
        self.src = source
        self.size = source.size
        self._left = max_fields

    def _varint(self, pos: int, end: int) -> tuple[int, int]:
        window = self.src.read(pos, min(10, end - pos))
        try:
            value, used = read_varint(window, 0)
        except WireError as exc:
            raise ParseError(f"protobuf: {exc} at {pos}") from exc
        return value, pos + used

    def fields(self, start: int = 0, end: int | None = None) -> Iterator[Field]:
        """The fields of the message in [start, end)."""
        end = self.size if end is None else end
        if end > self.size:
            raise ParseError(f"protobuf message ends at {end}, past the file end {self.size}")
        pos = start
        while pos < end:
            self._left -= 1
            if self._left < 0:
                raise LimitExceeded("max_fields", "too many protobuf fields in one model")
            key, pos = self._varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ParseError(f"protobuf field number 0 at {pos}")
            if wire == VARINT:
                value, pos = self._varint(pos, end)
                yield Field(number, wire, value=value)
            elif wire in (FIXED64, FIXED32):
                pos += 8 if wire == FIXED64 else 4
                if pos > end:
                    raise ParseError("protobuf fixed field runs past the message")
                yield Field(number, wire)
            elif wire == LEN:
                length, pos = self._varint(pos, end)
                if pos + length > end:
                    raise ParseError(f"protobuf field {number} runs past its message at {pos}")
                yield Field(number, wire, start=pos, length=length)
                pos += length
            else:
                raise ParseError(f"protobuf wire type {wire} at {pos}")

    def sub(self, f: Field) -> Iterator[Field]:
        """The fields of a length-delimited field read as a message."""
        if f.wire_type != LEN:
            raise ParseError(f"protobuf field {f.number} is not a message")
        return self.fields(f.start, f.start + f.length)

    def text(self, f: Field, limit: int = 4096) -> str:
        """A string field (at most ``limit`` bytes), decoded leniently."""
        if f.wire_type != LEN:
            raise ParseError(f"protobuf field {f.number} is not a string")
        return self.src.read(f.start, min(f.length, limit)).decode("utf-8", "replace")

    def first_text(self, start: int, end: int, number: int) -> str | None:
        """The first string field ``number`` of the message in [start, end)."""
        for f in self.fields(start, end):
            if f.number == number and f.wire_type == LEN:
                return self.text(f)
        return None


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def malformed_as_parse_error(what: str) -> Iterator[None]:
    """Report a :class:`WireError` raised inside the block as ``ParseError("<what> is malformed")``.

    The readers raise WireError (a ValueError, so wire code stays free of hex's errors);
    the pipeline turns ParseError into a parse-error entry, and any other exception into
    a crash. Callers name the file kind so the entry says what was malformed.
    """
    try:
        yield
    except WireError as exc:
        raise ParseError(f"{what} is malformed: {exc}") from exc


def packed_varints(data: bytes) -> list[int]:
    """Decode a packed repeated varint field (already read and bounded by the caller)."""
    out: list[int] = []
    pos = 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        out.append(value)
    return out


def signed64(value: int) -> int:
    """A varint read as int64 (two's complement in 64 bits)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def text(data: bytes) -> str:
    """Protobuf ``string`` bytes as text; invalid UTF-8 stays visible instead of failing."""
    return data.decode("utf-8", "backslashreplace")
