"""A minimal, bounded protobuf wire-format walker.

ONNX, TF SavedModel/GraphDef, Core ML, Caffe and SentencePiece are protobuf messages.
hex reads them without generated classes so that memory stays bounded on multi-GB models
and no framework is imported. This module knows only the wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

VARINT, FIXED64, LEN, SGROUP, EGROUP, FIXED32 = 0, 1, 2, 3, 4, 5


class WireError(ValueError):
    """The bytes are not a valid protobuf encoding."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its number, wire type, and either an integer value or a byte span."""

    number: int
    wire_type: int
    value: int = 0
    start: int = 0
    length: int = 0


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; return (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def iter_fields(buf: bytes, start: int = 0, end: int | None = None,
                allow_truncated: bool = False) -> Iterator[Field]:
    """Yield the fields of one message in ``buf[start:end]``.

    With ``allow_truncated`` a length-delimited field that runs past the end of ``buf``
    (we only hold the head of a large file) ends the walk instead of raising.
    """
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos)
            yield Field(number, wire_type, value=value)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if pos + size > end:
                if allow_truncated:
                    return
                raise WireError("truncated fixed field")
            yield Field(number, wire_type, value=int.from_bytes(buf[pos:pos + size], "little"))
            pos += size
        elif wire_type == LEN:
            length, pos = read_varint(buf, pos)
            if pos + length > end:
                if allow_truncated:
                    yield Field(number, wire_type, start=pos, length=length)
                    return
                raise WireError("length-delimited field runs past the end")
            yield Field(number, wire_type, start=pos, length=length)
            pos += length
        else:
            raise WireError(f"unsupported wire type {wire_type}")
