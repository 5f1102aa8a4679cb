"""The NumPy ``.npy`` header: does loading the array unpickle, and where does the pickle start.

NumPy's loader (with pickles allowed) reads the header (a Python literal dict), turns its
``descr`` into a dtype with ``numpy.lib.format.descr_to_dtype`` and, when that dtype
``hasobject``, unpickles the data that follows the header. Payloads hide behind spellings of
"object" a naive reader misses (``'|O'``, ``'O4'``, ``'object'``, ``'T'`` (StringDType), a
comma string ``'i4,O'``, a repeat ``'(2,)O'``, a structured or nested field, a subarray
tuple). This module answers ``hasobject`` without importing numpy, by following the same
steps: the header is read with ``ast.literal_eval`` (no code runs) under a size bound, and
the descr is walked as ``descr_to_dtype`` walks it, string descrs through numpy's own comma
string grammar (``numpy._core._internal._commastring``). tests/unit/test_numpy_descr.py
checks the answer against ``numpy.dtype(...).hasobject`` over a grid of spellings.
"""

from __future__ import annotations

import ast
import io
import re
import struct
import tokenize
from dataclasses import dataclass
from typing import BinaryIO

from hexscan.discover.streams import read_up_to
from hexscan.errors import ParseError

MAGIC = b"\x93NUMPY"
#: The largest header (without its padding) given to ``literal_eval``. NumPy puts no bound
#: on a header once pickles are allowed, so padding past this is read through in chunks
#: (whitespace only, else the header is refused) rather than held.
MAX_LITERAL = 1024 * 1024
_CHUNK = 1024 * 1024
_BLANKS = b" \t\r\n\x0b\x0c"
#: How deep a descr may nest (structured in structured, subarray of subarray ...).
MAX_DESCR_DEPTH = 64
#: Header length field per version: (struct format, text encoding), as numpy's reader has it.
_VERSIONS = {1: ("<H", "latin-1"), 2: ("<I", "latin-1"), 3: ("<I", "utf-8")}

#: Names numpy.dtype maps to an object-holding dtype once the byte order is stripped:
#: ``O`` with the item sizes numpy accepts, the ``sctypeDict`` aliases of ``numpy.object_``,
#: and ``T`` (``StringDType``, whose arrays numpy pickles too).
_OBJECT_NAMES = frozenset({"O", "O4", "O8", "object", "object_", "T"})

# numpy._core._internal.format_re / sep_re / space_re (the comma-string grammar).
_FORMAT_RE = re.compile(r"(?P<order1>[<>|=]?)"
                        r"(?P<repeats> *[(]?[ ,0-9]*[)]? *)"
                        r"(?P<order2>[<>|=]?)"
                        r"(?P<dtype>[A-Za-z0-9.?]*(?:\[[a-zA-Z0-9,.]+\])?)")
_SEP_RE = re.compile(r"\s*,\s*")
_SPACE_RE = re.compile(r"\s+$")


@dataclass(frozen=True, slots=True)
class NpyHeader:
    """The parsed header and the offset of the array data.

    ``objects`` is numpy's ``dtype.hasobject`` for the descr: True (the data is a pickle),
    False (raw bytes), or None when numpy would not accept the descr at all.
    """

    version: tuple[int, int]
    descr: str
    shape: tuple[int, ...]
    data_offset: int
    objects: bool | None = False

    @property
    def holds_objects(self) -> bool:
        """Whether the data may be a pickle: an object dtype, or a descr hex cannot place."""
        return self.objects is not False


def read_npy_header(stream: BinaryIO) -> NpyHeader:
    """Parse the header of a ``.npy`` stream positioned at its start (bounded reads)."""
    lead = read_up_to(stream, 12)
    if not lead.startswith(MAGIC) or len(lead) < 10:
        raise ParseError("not a .npy file")
    major, minor = lead[6], lead[7]
    if major not in _VERSIONS:
        raise ParseError(f"unknown .npy version {major}.{minor}")
    fmt, encoding = _VERSIONS[major]
    start = 8 + struct.calcsize(fmt)
    if len(lead) < start:
        raise ParseError("truncated .npy header")
    (length,) = struct.unpack_from(fmt, lead, 8)
    kept = min(length, MAX_LITERAL + _CHUNK)
    body = (lead[start:] + read_up_to(stream, max(0, kept - (len(lead) - start))))[:kept]
    if len(body) < kept:
        raise ParseError(f".npy header of {length} bytes is truncated")
    _skip_padding(stream, length - kept)
    return _header((major, minor), body, encoding, start + length)


def _skip_padding(stream: BinaryIO, left: int) -> None:
    """Read past header bytes beyond what is kept: blanks only (numpy's padding)."""
    while left > 0:
        chunk = read_up_to(stream, min(left, _CHUNK))
        if not chunk:
            raise ParseError(".npy header is truncated")
        if chunk.strip(_BLANKS):
            raise ParseError(f".npy header holds more than {MAX_LITERAL} characters")
        left -= len(chunk)


def parse_npy_header(head: bytes) -> NpyHeader:
    """Parse the header from the first bytes of a ``.npy`` stream."""
    return read_npy_header(io.BytesIO(head))


def _header(version: tuple[int, int], raw: bytes, encoding: str, data_offset: int
            ) -> NpyHeader:
    try:
        text = raw.decode(encoding).strip()
    except UnicodeDecodeError as exc:
        raise ParseError(f"undecodable .npy header: {exc}") from exc
    if len(text) > MAX_LITERAL:
        raise ParseError(f".npy header holds more than {MAX_LITERAL} characters")
    header = _literal(text, version)
    if not isinstance(header, dict) or "descr" not in header:
        raise ParseError(".npy header is not a dict with 'descr'")
    descr = header["descr"]
    shape = header.get("shape", ())
    return NpyHeader(version, descr if isinstance(descr, str) else repr(descr),
                     tuple(shape) if isinstance(shape, tuple) else (), data_offset,
                     descr_hasobject(descr))


def _literal(text: str, version: tuple[int, int]) -> object:
    """``ast.literal_eval`` as numpy applies it, with its Python 2 ``L`` filter for v1/v2."""
    attempts = [text]
    if version[0] <= 2:
        attempts.append("")  # filled in lazily: only a SyntaxError earns the second try
    error: Exception | None = None
    for attempt in attempts:
        try:
            return ast.literal_eval(attempt or _filter_header(text))
        except SyntaxError as exc:
            error = exc
        except (ValueError, TypeError, MemoryError, RecursionError,
                tokenize.TokenError) as exc:
            error = exc
            break
    raise ParseError(f"unreadable .npy header: {error}") from error


def _filter_header(text: str) -> str:
    """numpy.lib.format._filter_header: drop the ``L`` of Python 2 long literals."""
    tokens = []
    after_number = False
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if not (after_number and token.type == tokenize.NAME and token.string == "L"):
            tokens.append(token)
        after_number = token.type == tokenize.NUMBER
    return tokenize.untokenize(tokens)


def descr_hasobject(descr: object, depth: int = 0) -> bool | None:
    """``descr_to_dtype(descr).hasobject``; None where numpy raises (or the walk is too deep).

    A list is a structured dtype (any field holding objects makes it hold objects), a tuple a
    subarray of its first item, a string goes through ``numpy.dtype(str)``.
    """
    if depth > MAX_DESCR_DEPTH:
        return None
    if isinstance(descr, str):
        return _str_hasobject(descr, depth)
    if isinstance(descr, tuple):
        return descr_hasobject(descr[0], depth + 1) if len(descr) == 2 else None
    if not isinstance(descr, list):
        return None
    found: bool | None = False
    for field in descr:
        if not isinstance(field, (tuple, list)) or len(field) not in (2, 3):
            return None
        inner = descr_hasobject(field[1], depth + 1)
        if inner is None:
            return None
        found = found or inner
    return found


def _str_hasobject(text: str, depth: int) -> bool | None:
    """``numpy.dtype(text).hasobject`` for the string forms a header can hold."""
    if text.lstrip("<>|=") in _OBJECT_NAMES:
        return True
    if not _is_commastring(text):
        return _simple_name(text)
    items = _commastring(text)
    if items is None:
        return None
    found: bool | None = False
    for item in items:
        inner = _str_hasobject(item, depth + 1) if depth < MAX_DESCR_DEPTH else None
        if inner is None:
            return None
        found = found or inner
    return found


def _is_commastring(text: str) -> bool:
    """numpy's ``_check_for_commastring``: a leading count or ``()``, or a comma outside []."""
    body = text[1:] if text[:1] in "<>|=" and len(text) > 1 else text
    if text[:1].isdigit() or body[:1].isdigit() or text[:2] == "()" or \
            (len(text) > 3 and body[:2] == "()"):
        return True
    depth = 0
    for char in text:
        if char == "," and depth == 0:
            return True
        depth += (char == "[") - (char == "]")
    return False


def _simple_name(text: str) -> bool | None:
    """A single type name; object-like names numpy rejects still count (reading more)."""
    name = text.lstrip("<>|=")
    if not name:
        return None
    return name[0] == "O" or name.startswith("object") or name in _OBJECT_NAMES


def _commastring(text: str) -> list[str] | None:
    """The item type names of numpy's comma-string grammar (repeats and order stripped)."""
    items: list[str] = []
    pos = 0
    while pos < len(text):
        match = _FORMAT_RE.match(text, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        if pos < len(text):
            if _SPACE_RE.match(text, pos):
                pos = len(text)
            else:
                sep = _SEP_RE.match(text, pos)
                if sep is None:
                    return None
                pos = sep.end()
        items.append(match.group("dtype"))
    return items or None


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
