"""Protobuf fields read from a ByteSource: skip big fields without reading them.

protowire walks bytes held in memory; Core ML and Caffe models hold hundreds of MB of
weights inside the message, so these readers walk the structure over a paged source and
only read the small fields they look at. Field counts and nesting are bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

from hexscan.errors import LimitExceeded, ParseError
from hexscan.parsers.flatbuf import ByteSource
from hexscan.parsers.protowire import FIXED32, FIXED64, LEN, VARINT, Field, WireError, read_varint

#: The most fields one model walk may visit.
MAX_FIELDS = 2_000_000
#: The deepest message nesting followed.
MAX_DEPTH = 32


class Walker:
    """A field iterator over a source, sharing one field budget across a whole model."""

    def __init__(self, source: ByteSource, max_fields: int = MAX_FIELDS) -> None:
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
