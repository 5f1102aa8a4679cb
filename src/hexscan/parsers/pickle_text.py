"""The text-argument opcodes of protocol 0/1, read as CPython's unpicklers read them.

Protocol 0 spells numbers, memo keys and strings as newline-terminated text, and the two
unpicklers of CPython 3.11 do not parse that text alike:

* INT: ``_pickle.c`` calls ``strtol(s, &end, 0)`` and, when that does not reach the newline or a
  NUL, ``PyLong_FromString(s, NULL, 0)``; ``pickle.py`` calls ``int(line, 0)``. Both accept base
  prefixes (``0x1f``, ``0o17``, ``0b1``), underscores, signs and surrounding whitespace; only C
  reads ``010`` as octal 8 and stops at a NUL byte (``I7\\x00junk``). A two-character argument
  whose strtol value is 0 or 1 is a bool in C (``I00``, ``I+1``, ``I 0``); only ``00``/``01`` in
  Python.
* LONG: both strip one trailing ``L`` and parse with base 0; C stops at a NUL.
* GET/PUT: base 10 (``int()`` / ``PyLong_FromString(s, NULL, 10)``), so ``g1_0`` is key 10 and
  C again stops at a NUL.
* FLOAT: ``float()`` in Python (whitespace and underscores allowed, ``1e999`` is inf); C's
  ``PyOS_string_to_double`` takes neither but stops at a NUL.

The machine follows whichever reading succeeds (C's where both do and differ, as ``pickle.load``
is C), so that no spelling either loader accepts stops the analysis early.
"""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING, Any

from hexscan.parsers.pickle_reader import _Limit, _Malformed
from hexscan.parsers.pickle_values import Blob

_C_LONG_MIN, _C_LONG_MAX = -(1 << 63), (1 << 63) - 1
_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")
"""What glibc's ``strtol(s, &end, 0)`` consumes when it consumes a whole string."""
_C_FLOAT = re.compile(
    rb"[+-]?(?:inf(?:inity)?|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.I
)
"""What ``PyOS_string_to_double`` accepts (no whitespace, no underscores)."""


def _c_string(line: bytes) -> bytes:
    """The line as C's number parsers see it: they stop at the first NUL byte."""
    return line.split(b"\0", 1)[0]


def _strtol(text: bytes) -> int | None:
    """``strtol(text, &end, 0)`` when it consumes all of ``text`` without overflow, else None."""
    if not text:
        return 0  # no digits: end == start, which points at the NUL, so C accepts 0
    match = _STRTOL.fullmatch(text)
    if not match:
        return None
    sign, hexa, octal, decimal = match.groups()
    if hexa:
        value = int(hexa, 16)
    elif octal:
        value = int(octal, 8)
    else:
        value = int(decimal, 10)
    value = -value if sign == b"-" else value
    return value if _C_LONG_MIN <= value <= _C_LONG_MAX else None


def int_literal(line: bytes) -> int:
    """The value of ``I<line>\\n`` under the C unpickler (a superset of the Python one's)."""
    if not line:
        raise ValueError("INT argument is empty")
    text = _c_string(line)
    value = _strtol(text)
    if value is None:
        return int(text, 0)  # PyLong_FromString(s, NULL, 0); ValueError: the loader fails too
    if len(line) == 2 and value in (0, 1):
        return bool(value)
    return value


def long_literal(line: bytes) -> int:
    """The value of ``L<line>\\n``: one trailing ``L`` removed, then base 0."""
    if not line:
        raise ValueError("LONG argument is empty")
    return int(_c_string(line[:-1] if line.endswith(b"L") else line), 0)


def float_literal(line: bytes) -> float:
    """The value of ``F<line>\\n`` under whichever unpickler accepts the spelling."""
    try:
        return float(line)
    except ValueError:
        text = _c_string(line)
        if not _C_FLOAT.fullmatch(text):
            raise
        return float(text)


def memo_key(line: bytes) -> int:
    """The key of a text GET/PUT: base 10, underscores and whitespace allowed, C stops at NUL."""
    try:
        return int(line)
    except ValueError:
        return int(_c_string(line))


class _TextOpcodes:
    """INT/LONG/FLOAT/STRING/UNICODE/GET/PUT handlers (mixed into ``_Machine``)."""

    stack: list[Any]
    truncated_values: int
    op_code: int

    if TYPE_CHECKING:  # provided by the other mixins and the machine

        def _line(self) -> bytes | Blob: ...
        def _text_append_run(self) -> bool: ...
        def _note_constant(self, value: Any) -> Any: ...
        def _memo_put(self, index: int) -> None: ...
        def _memo_get(self, index: int) -> None: ...

    def _text_arg(self) -> bytes:
        text = self._line()
        if isinstance(text, Blob):
            raise _Limit("max_value_bytes", "oversized numeric literal")
        return text

    def _op_float(self) -> None:
        if not self._text_append_run():
            self.stack.append(float_literal(self._text_arg()))

    def _op_int(self) -> None:
        if not self._text_append_run():
            self.stack.append(int_literal(self._text_arg()))

    def _op_long(self) -> None:
        self.stack.append(long_literal(self._text_arg()))

    def _op_put(self) -> None:
        self._memo_put(memo_key(self._text_arg()))

    def _op_get(self) -> None:
        self._memo_get(memo_key(self._text_arg()))

    def _text_value(self) -> bytes | None:
        """The line of STRING/UNICODE, or None when it was oversized (a Blob is pushed)."""
        text = self._line()
        if isinstance(text, Blob):
            self.truncated_values += 1
            self.stack.append(text)
            return None
        return text

    def _op_string(self) -> None:
        text = self._text_value()
        if text is None:
            return
        if len(text) < 2 or text[:1] not in b"'\"" or text[-1:] != text[:1]:
            raise _Malformed("STRING argument is not quoted")
        self.stack.append(
            self._note_constant(codecs.escape_decode(text[1:-1])[0].decode("latin-1"))
        )

    def _op_unicode(self) -> None:
        text = self._text_value()
        if text is not None:
            self.stack.append(self._note_constant(text.decode("raw-unicode-escape")))
