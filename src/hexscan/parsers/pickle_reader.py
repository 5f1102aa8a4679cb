"""Reading a pickle stream: the chunked byte reader, the conditions that end a stream, and the
tables behind the fast paths for runs of fixed-width constants.

The reader holds at most one 1 MiB chunk plus the value being read, so a multi-gigabyte pickle
is analysed in bounded memory; oversized values are skipped and only their head is kept.
"""

from __future__ import annotations

import functools
import pickletools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hexscan.parsers.pickle_values import Blob


class _Stop(Exception):
    """Base of the conditions that end a stream."""


class _Malformed(_Stop):
    pass


class _Truncated(_Malformed):
    pass


class _Limit(_Stop):
    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass
class _Budget:
    """Shared by a machine and the machines it starts for nested pickles."""

    deadline: float
    nested_left: int


class _Reader:
    """Incremental reader over bytes or a binary stream, keeping at most a chunk plus one value."""

    CHUNK = 1 << 20

    def __init__(self, source: Any) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.buf, self.stream = bytes(source), None
        else:
            self.buf, self.stream = b"", source
        self.pos = 0
        self.base = 0

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def fill(self, need: int) -> bool:
        """Make ``need`` bytes available at ``pos``; False if the data ends first."""
        avail = len(self.buf) - self.pos
        if avail >= need:
            return True
        if self.stream is None:
            return False
        parts = [self.buf[self.pos :]]
        self.base += self.pos
        self.pos = 0
        while avail < need:
            data = self.stream.read(max(self.CHUNK, need - avail))
            if not data:
                break
            parts.append(data)
            avail += len(data)
        self.buf = b"".join(parts)
        return avail >= need

    def at_eof(self) -> bool:
        return not self.fill(1)

    def byte(self) -> int:
        pos = self.pos
        if pos < len(self.buf):
            self.pos = pos + 1
            return self.buf[pos]
        return self.take(1)[0]

    def take(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n and not self.fill(n):
            raise _Truncated(f"data ends inside a {n}-byte argument")
        start = self.pos
        self.pos += n
        return self.buf[start : self.pos]

    def skip(self, n: int, keep: int) -> bytes:
        """Consume ``n`` bytes without holding them; return the first ``keep``."""
        head = b""
        while n > 0:
            if self.pos >= len(self.buf) and not self.fill(1):
                raise _Truncated("data ends inside a value")
            step = min(n, len(self.buf) - self.pos)
            if len(head) < keep:
                head += self.buf[self.pos : self.pos + min(step, keep - len(head))]
            self.pos += step
            n -= step
        return head

    def line(self, limit: int, keep: int) -> bytes | Blob:
        """The next newline-terminated line (without ``\\n``); a Blob if longer than ``limit``."""
        scanned = 0
        while True:
            idx = self.buf.find(b"\n", self.pos + scanned)
            if idx >= 0:
                text = self.buf[self.pos : idx]
                self.pos = idx + 1
                return text
            scanned = len(self.buf) - self.pos
            if scanned > limit:
                return self._skip_line(keep)
            if not self.fill(scanned + 1):
                return self._last_line()

    def _last_line(self) -> bytes:
        """A line cut by the end of the data. Both unpicklers' readline return what is there
        and the opcode drops its last byte as if it were the newline (``readline()[:-1]``),
        then runs: ``ibuiltins\nexec.`` calls ``builtins.exec`` before the next read fails."""
        if self.pos >= len(self.buf):
            raise _Truncated("data ends inside a text argument")
        text = self.buf[self.pos : len(self.buf) - 1]
        self.pos = len(self.buf)
        return text

    def _skip_line(self, keep: int) -> Blob:
        head = self.buf[self.pos : self.pos + keep]
        size = 0
        while True:
            idx = self.buf.find(b"\n", self.pos)
            if idx >= 0:
                size += idx - self.pos
                self.pos = idx + 1
                return Blob("line", size, head)
            size += len(self.buf) - self.pos
            self.pos = len(self.buf)
            if not self.fill(1):
                raise _Truncated("data ends inside a text argument")

    def remaining(self) -> int:
        """Bytes left from ``pos`` to the end (consumes the stream)."""
        total = len(self.buf) - self.pos
        self.pos = len(self.buf)
        if self.stream is not None:
            while data := self.stream.read(self.CHUNK):
                total += len(data)
                self.base += len(data)
        return total


@functools.lru_cache(maxsize=64)
def _run_struct(fmt: str, count: int) -> struct.Struct:
    return struct.Struct(fmt[0] + fmt[1:] * count)


def _fixed(op: str, fmt: str, size: int) -> tuple[struct.Struct, re.Pattern[bytes], str, int]:
    """(one value, regex of a run of this opcode, struct format of "opcode byte + value", width)."""
    pattern = re.compile(rb"(?:%s.{%d})+" % (re.escape(op.encode()), size), re.S)
    return struct.Struct(fmt[0] + fmt[2]), pattern, fmt, size + 1


# Fixed-width constant runs, keyed by opcode byte.
_FIXED_RUNS = {
    ord("G"): _fixed("G", ">xd", 8),
    ord("J"): _fixed("J", "<xi", 4),
    ord("K"): _fixed("K", "<xB", 1),
    ord("M"): _fixed("M", "<xH", 2),
}
# Protocol-0 "value then APPEND" runs. The character classes are a superset of what float()/int()
# accept (kept simple because the exact grammar makes the regex several times slower); a token
# CPython would reject only makes the machine follow the stream further than a loader would.
_TEXT_APPEND_RUNS: dict[int, tuple[re.Pattern[bytes], Callable[[bytes], Any]]] = {
    ord("F"): (re.compile(rb"(?:F[-+0-9.einfa]{1,40}\na)+"), float),
    ord("I"): (
        re.compile(rb"(?:I-?[1-9][0-9]{0,17}\na|I0\na)+"),
        int,
    ),  # not I00/I01: those are bools
}
_OPNAMES = {ord(op.code.encode("latin-1")): op.name for op in pickletools.opcodes}
