"""A tiny pickle assembler: write opcode streams by hand, exactly as an attacker would.

Only writes bytes; nothing here imports, calls or loads what the streams name. Real
libraries (pickle, joblib, torch, numpy) write the fixtures wherever they can produce the
structure; these helpers cover the streams no library would ever emit.
"""

from __future__ import annotations

import struct


def proto(n: int) -> bytes:
    """PROTO n (the ``\\x80`` magic of protocol 2+)."""
    return b"\x80" + bytes([n])


def glob(module: str, name: str) -> bytes:
    """GLOBAL (protocol 0): ``c module \\n name \\n``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def ustr(text: str) -> bytes:
    """BINUNICODE (protocol 1+ str)."""
    data = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(data)) + data


def sstr(text: str) -> bytes:
    """STRING (protocol 0, quoted repr)."""
    return b"S" + repr(text).encode() + b"\n"


def binbytes(data: bytes) -> bytes:
    """BINBYTES (protocol 3+ bytes)."""
    return b"B" + struct.pack("<I", len(data)) + data


def binint(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def sglob(module: str, name: str) -> bytes:
    """STACK_GLOBAL with str operands."""
    return ustr(module) + ustr(name) + b"\x93"


def tup(*items: bytes) -> bytes:
    """MARK items TUPLE."""
    return b"(" + b"".join(items) + b"t"


def lst(*items: bytes) -> bytes:
    """MARK items LIST."""
    return b"(" + b"".join(items) + b"l"


def dct(**items: bytes) -> bytes:
    """MARK key value ... DICT (str keys)."""
    return b"(" + b"".join(ustr(k) + v for k, v in items.items()) + b"d"


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)``: func, MARK args TUPLE, REDUCE."""
    return func + tup(*args) + b"R"


def pkl(body: bytes, protocol: int = 2) -> bytes:
    """A whole stream: PROTO (unless protocol is 0/1), body, STOP."""
    head = proto(protocol) if protocol >= 2 else b""
    return head + body + b"."


def os_system(cmd: str, protocol: int = 2) -> bytes:
    """The canonical payload, ``os.system(cmd)`` as pickle writes it on Linux (posix)."""
    return pkl(call(glob("posix", "system"), ustr(cmd) if protocol else sstr(cmd)), protocol)


def proto0_system(cmd: str) -> bytes:
    """Protocol 0: ``cos\\nsystem\\n(S'cmd'\\ntR.`` (no magic at all)."""
    return glob("os", "system") + b"(" + sstr(cmd) + b"tR."
