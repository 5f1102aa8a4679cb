"""Is a str/bytes constant of a pickle itself a pickle (raw, base64 or hex)?

Payloads hide a second pickle in a string that a custom ``__setstate__`` or
``torch.storage._load_from_bytes`` loads later. These checks run on every long constant, so the
cheap first-byte filters come first and decoding happens only for plausible candidates.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from hexscan.parsers.pickle_reader import _Budget, _Reader
from hexscan.parsers.pickle_view import (
    EmbeddedContainer,
    LimitHit,
    NestedPickle,
    PickleLimits,
    PickleView,
)

_NESTED_B64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_NESTED_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")


def _nested_payload(value: str | bytes, min_len: int) -> tuple[str, bytes] | None:
    """Does this constant hold a pickle (raw, base64 or hex)? Cheap first-byte filters first."""
    if len(value) < min_len:
        return None
    try:
        data = value.encode("latin-1") if isinstance(value, str) else value
    except UnicodeEncodeError:
        return None
    if _pickle_head(data):
        return ("raw", data) if _looks_like_pickle(data) else None
    data = data.strip()
    if data[:2] in (b"80", b"63", b"28") and _NESTED_HEX.fullmatch(data):
        decoded = binascii.unhexlify(data)
        return ("hex", decoded) if _looks_like_pickle(decoded) else None
    if data[0] in _B64_PICKLE_STARTS and _pickle_head(_b64(data[:12])):
        compact = b"".join(data.split())
        decoded = _b64(compact) if _NESTED_B64.fullmatch(compact) else b""
        return ("base64", decoded) if _looks_like_pickle(decoded) else None
    return None


_B64_PICKLE_STARTS = frozenset(b"gYKXf")
"""First base64 character of a PROTO byte (0x80) and of protocol-0 starts ``c ( ] }``."""


def _b64(data: bytes) -> bytes:
    try:
        altchars = b"-_" if b"-" in data or b"_" in data else None
        return base64.b64decode(data + b"=" * (-len(data) % 4), altchars=altchars)
    except (binascii.Error, ValueError):
        return b""


_PROTOCOL0_STARTS = (b"c", b"(", b"]", b"}")


def _pickle_head(data: bytes) -> bool:
    if data[:1] == b"\x80":
        return len(data) > 1 and data[1] <= 5
    return data[:1] in _PROTOCOL0_STARTS


def _looks_like_pickle(data: bytes) -> bool:
    """A plausible whole pickle: PROTO first, or a protocol-0/1 start and a final STOP."""
    if len(data) < 4 or not _pickle_head(data):
        return False
    return data[:1] == b"\x80" or data.rstrip()[-1:] == b"."


def container_kind(data: bytes) -> str | None:
    """Bytes a loader reads as a whole file of another format rather than as a pickle.

    ``torch.load`` (what ``torch.storage._load_from_bytes`` calls) takes the zip reader when
    the bytes start with a zip local header; the walk then reads them as the checkpoint they
    are instead of as a nested pickle.
    """
    return "zip" if data[:4] == b"PK\x03\x04" else None


class _NestedPickles:
    """Constants that hold a pickle, scanned after the stream (mixed into ``_Machine``)."""

    rec: Any
    kept: Any
    limits: PickleLimits
    budget: _Budget
    depth: int
    op_offset: int

    if TYPE_CHECKING:  # the machine's own constructor and driver

        def __init__(self, reader: _Reader, limits: PickleLimits, budget: _Budget,
                     depth: int) -> None: ...
        def run(self) -> PickleView: ...

    def _note_constant(self, value: Any) -> Any:
        """Remember str/bytes constants that hold a pickle, to scan after the stream."""
        found = _nested_payload(value, self.limits.min_nested_bytes)
        if not found:
            return value
        if len(self.rec.candidates) < self.limits.max_nested_pickles:
            self.rec.candidates.append((self.op_offset, found[0], found[1]))
        elif not any(hit.limit == "max_nested_pickles" for hit in self.rec.limits):
            self.rec.limits.append(LimitHit(
                "max_nested_pickles", self.op_offset, "too many embedded pickles to scan"))
        return value

    def _force_nested(self, data: bytes) -> None:
        """Scan ``data`` as a pickle even if it does not look like one (a loader will load it)."""
        if not any(candidate[2] is data for candidate in self.rec.candidates):
            self.rec.candidates.append((self.op_offset, "raw", data))

    def _scan_nested(self) -> list[NestedPickle]:
        found: list[NestedPickle] = []
        if self.depth >= self.limits.max_nested_depth:
            if self.kept.candidates:
                offset = self.kept.candidates[0][0]
                self.kept.limits.append(
                    LimitHit("max_nested_depth", offset, "embedded pickles nested too deep to scan")
                )
            return found
        for offset, encoding, data in self.kept.candidates:
            if self.budget.nested_left <= 0:
                self.kept.limits.append(
                    LimitHit("max_nested_pickles", offset, "too many embedded pickles to scan")
                )
                break
            self.budget.nested_left -= 1
            kind = container_kind(data)
            if kind is not None:
                self.kept.containers.append(EmbeddedContainer(offset, kind, data))
                continue
            view = type(self)(_Reader(data), self.limits, self.budget, self.depth + 1).run()
            if any(s.complete for s in view.streams) or view.globals:
                found.append(NestedPickle(offset, encoding, self.depth + 1, view))
        return found

