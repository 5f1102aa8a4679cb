"""The record layout of a torch < 0.4 tar checkpoint's ``storages`` and ``tensors`` members.

``torch.serialization.legacy_load`` reads ``storages`` as: a pickle (the count), then per
storage a pickle ``(key, location, storage_type)`` followed by raw bytes (an int64 element
count, then count x element size bytes of data), then a pickle of the storage views; and
``tensors`` as: a pickle (the count), then per tensor a pickle ``(key, storage_id, type)``
followed by an int32 ndim, 4 skipped bytes, ndim int64 sizes, ndim int64 strides and an int64
offset. Every one of those pickles is unpickled; the raw bytes never are. This module finds
the pickles the way the loader does, so each is judged and raw tensor data that merely looks
like a pickle is not. Where the layout cannot be followed (a count or storage type hex
cannot read), the walk reports where it lost track so the caller can judge the rest as a
stream of pickles: reading more than the loader, never less.
"""

from __future__ import annotations

import io
import pickletools
import struct
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hexscan.discover.streams import read_up_to

RECORD_MEMBERS = frozenset({"storages", "tensors"})
#: A record pickle larger than this is not followed (they are a few dozen bytes).
MAX_RECORD_PICKLE = 16 * 1024 * 1024
#: At most this many records are followed per member.
MAX_RECORDS = 1_000_000
_FIRST_WINDOW = 4096

#: Element size of each legacy storage class (``torch._utils._element_size(cls._dtype)``;
#: tests/unit/test_torch_legacy.py checks the table against torch).
ELEMENT_SIZE: dict[str, int] = {
    f"{module}.{kind}Storage": size
    for module in ("torch", "torch.cuda")
    for kind, size in (
        ("Double", 8), ("Float", 4), ("Half", 2), ("BFloat16", 2), ("Long", 8), ("Int", 4),
        ("Short", 2), ("Char", 1), ("Byte", 1), ("Bool", 1), ("ComplexDouble", 16),
        ("ComplexFloat", 8),
    )
} | {f"torch.{kind}Storage": 1 for kind in ("QUInt8", "QInt8", "QUInt4x2", "QUInt2x4")} | {
    "torch.QInt32Storage": 4,
}

_INT_OPS = frozenset({"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"})
_FRAMING = frozenset({"PROTO", "FRAME", "STOP", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"})
_STRINGS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                      "SHORT_BINSTRING", "BINSTRING", "STRING"})


@dataclass(frozen=True, slots=True)
class RecordPickle:
    """One pickle the loader unpickles: where it starts and its bytes."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class LostTrack:
    """The layout could not be followed from ``offset`` on (``reason`` says why)."""

    offset: int
    reason: str
    layout: bool = True
    """False when the member never matched the layout (its count is no plain integer):
    then it is simply another pickle file, not a broken legacy checkpoint."""


@dataclass(frozen=True, slots=True)
class _Ops:
    end: int
    ints: tuple[int, ...]
    names: tuple[str, ...]
    plain: bool
    """Only framing and one int push: the value is that int."""


def walk_records(stream: BinaryIO, member: str) -> Iterator[RecordPickle | LostTrack]:
    """The pickles of a ``storages`` or ``tensors`` member, in the order torch reads them."""
    pos = 0
    count, pos = yield from _count(stream, pos)
    if count is None:
        return
    for _ in range(count):
        got = _pickle_at(stream, pos)
        if isinstance(got, LostTrack):
            yield got
            return
        yield RecordPickle(pos, got[0])
        ops = got[1]
        pos = ops.end
        skipped = _skip_storage(stream, pos, ops) if member == "storages" else \
            _skip_tensor(stream, pos)
        if isinstance(skipped, LostTrack):
            yield skipped
            return
        pos = skipped
    if member == "storages":
        got = _pickle_at(stream, pos)
        yield got if isinstance(got, LostTrack) else RecordPickle(pos, got[0])


def _count(stream: BinaryIO, pos: int
           ) -> Generator[RecordPickle | LostTrack, None, tuple[int | None, int]]:
    """The count pickle; its value when it is a plain integer (None: track lost)."""
    got = _pickle_at(stream, pos)
    if isinstance(got, LostTrack):
        yield got
        return None, pos
    yield RecordPickle(pos, got[0])
    ops = got[1]
    if not ops.plain or not ops.ints or not 0 <= ops.ints[0] <= MAX_RECORDS:
        yield LostTrack(ops.end, "the record count is not a plain integer", layout=False)
        return None, pos
    return ops.ints[0], ops.end


def _skip_storage(stream: BinaryIO, pos: int, ops: _Ops) -> int | LostTrack:
    sizes = {ELEMENT_SIZE[name] for name in ops.names if name in ELEMENT_SIZE}
    if len(sizes) != 1:
        return LostTrack(pos, f"storage type not known ({', '.join(ops.names) or 'none'})")
    stream.seek(pos)
    raw = read_up_to(stream, 8)
    if len(raw) < 8:
        return LostTrack(pos, "storage size truncated")
    count = int.from_bytes(raw, "little", signed=True)
    if count < 0:
        return LostTrack(pos, "negative storage size")
    return pos + 8 + count * sizes.pop()


def _skip_tensor(stream: BinaryIO, pos: int) -> int | LostTrack:
    stream.seek(pos)
    raw = read_up_to(stream, 8)
    if len(raw) < 8:
        return LostTrack(pos, "tensor header truncated")
    ndim = int.from_bytes(raw[:4], "little", signed=True)
    if not 0 <= ndim <= 1024:
        return LostTrack(pos, f"tensor ndim {ndim} out of range")
    return pos + 8 + 16 * ndim + 8


def _pickle_at(stream: BinaryIO, pos: int) -> tuple[bytes, _Ops] | LostTrack:
    """The pickle starting at ``pos`` (its bytes and what its opcodes say), found by
    walking opcodes (pickletools, which only parses) in a window grown as needed."""
    window = _FIRST_WINDOW
    while True:
        stream.seek(pos)
        data = read_up_to(stream, window)
        if not data:
            return LostTrack(pos, "a pickle was expected, the member ended")
        try:
            ops = _walk(data)
        except (ValueError, KeyError, EOFError, struct.error, UnicodeDecodeError) as exc:
            if len(data) == window and window < MAX_RECORD_PICKLE:
                window *= 16
                continue
            return LostTrack(pos, f"not a pickle where one is read: {exc}")
        return data[:ops.end], _Ops(pos + ops.end, ops.ints, ops.names, ops.plain)


def _walk(data: bytes) -> _Ops:
    ints: list[int] = []
    names: list[str] = []
    strings: list[str] = []
    others = 0
    end = 0
    for op, arg, at in pickletools.genops(io.BytesIO(data)):
        end = (at or 0) + 1
        if op.name in _INT_OPS and isinstance(arg, int):
            ints.append(int(arg))
        elif op.name in ("GLOBAL", "INST") and isinstance(arg, str):
            names.append(arg.replace(" ", ".", 1))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        if op.name in _STRINGS and isinstance(arg, (str, bytes)):
            strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
        if op.name not in _FRAMING and op.name not in _INT_OPS:
            others += 1
        if op.name == "STOP":
            return _Ops(end, tuple(ints), tuple(names), others == 0 and len(ints) == 1)
    raise ValueError("pickle exhausted before seeing STOP")
