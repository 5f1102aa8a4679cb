"""The NumPy ``.npy`` header: where an object array's pickle starts.

numpy.load with allow_pickle enabled unpickles the data of an array whose dtype holds
Python objects; the pickle begins right after the header. The header is a Python literal
dict, which we read with ast.literal_eval (no code can run) under a size bound.
"""

from __future__ import annotations

import ast
import io
import struct
import tokenize
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


def _literal(text: str, version: tuple[int, int]) -> object:
    """numpy.lib.format._read_array_header: a literal, or for a version 1/2 header written
    by Python 2 (``'shape': (2L, 2L)``), the literal once the ``L`` suffixes are dropped."""
    try:
        return ast.literal_eval(text)
    except SyntaxError:
        if version > (2, 0):
            raise
    return ast.literal_eval(_filter_py2_longs(text))


def _filter_py2_longs(text: str) -> str:
    """numpy.lib.format._filter_header: drop a NAME ``L`` that follows a NUMBER token."""
    tokens: list[tokenize.TokenInfo] = []
    after_number = False
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if not (after_number and token.type == tokenize.NAME and token.string == "L"):
            tokens.append(token)
        after_number = token.type == tokenize.NUMBER
    return tokenize.untokenize(tokens)


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
    text = head[start:start + length].decode("utf-8" if major == 3 else "latin-1", "replace")
    try:
        header = _literal(text, (major, minor))
    except (ValueError, SyntaxError, MemoryError, RecursionError, tokenize.TokenError) as exc:
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
