"""The NumPy ``.npy`` header: where an object array's pickle starts.

numpy.load with allow_pickle enabled unpickles the data of an array whose dtype holds
Python objects; the pickle begins right after the header. The header is a Python literal
dict, which we read with ast.literal_eval (no code can run) under a size bound.
"""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass

from hexscan.errors import ParseError

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20


@dataclass(frozen=True, slots=True)
class NpyHeader:
    """The parsed header and the offset of the array data."""

    version: tuple[int, int]
    descr: str
    shape: tuple[int, ...]
    data_offset: int

    @property
    def holds_objects(self) -> bool:
        """Object dtypes ('O', or a structured dtype with an 'O' field) are pickled."""
        return "O" in self.descr


def parse_npy_header(head: bytes) -> NpyHeader:
    """Parse the header from the first bytes of a ``.npy`` stream."""
    if not head.startswith(MAGIC) or len(head) < 10:
        raise ParseError("not a .npy file")
    major, minor = head[6], head[7]
    if major == 1:
        (length,), start = struct.unpack_from("<H", head, 8), 10
    elif major in (2, 3):
        if len(head) < 12:
            raise ParseError("truncated .npy header")
        (length,), start = struct.unpack_from("<I", head, 8), 12
    else:
        raise ParseError(f"unknown .npy version {major}.{minor}")
    if length > MAX_HEADER or start + length > len(head):
        raise ParseError(f".npy header of {length} bytes is truncated or too large")
    try:
        header = ast.literal_eval(head[start:start + length].decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ParseError(f"unreadable .npy header: {exc}") from exc
    if not isinstance(header, dict) or "descr" not in header:
        raise ParseError(".npy header is not a dict with 'descr'")
    shape = header.get("shape", ())
    return NpyHeader((major, minor), str(header["descr"]),
                     tuple(shape) if isinstance(shape, tuple) else (), start + length)


def object_data_offset(head: bytes, header: NpyHeader) -> int:
    """Where the pickle of an object array starts.

    A header whose declared length leaves its own space padding outside (a known bypass
    PoC) would make a strict reader start on blanks; we skip them so the pickle after the
    padding is still judged, reading more than a loader would, never less.
    """
    offset = header.data_offset
    while offset < len(head) and offset - header.data_offset < 4096 and \
            head[offset] in b" \t\r\n\x00":
        offset += 1
    return offset
