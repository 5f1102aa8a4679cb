"""Is a str/bytes constant of a pickle itself a pickle (raw, base64 or hex)?

Payloads hide a second pickle in a string that a custom ``__setstate__`` or
``torch.storage._load_from_bytes`` loads later. These checks run on every long constant, so the
cheap first-byte filters come first and decoding happens only for plausible candidates.
"""

from __future__ import annotations

import base64
import binascii
import re

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
