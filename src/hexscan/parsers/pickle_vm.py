"""A symbolic pickle machine: what CPython's unpickler would do, without importing or calling.

The machine walks the opcodes of protocols 0-5 with a real stack, metastack (MARK) and memo, but
every global is a :class:`~hexscan.parsers.pickle_values.Ref` and every call a
:class:`~hexscan.parsers.pickle_values.CallResult`. It follows the indirections payloads use to hide
what they run (``getattr`` / ``attrgetter`` / ``methodcaller`` chains, ``__import__``,
``functools.partial``, a ``__setstate__`` planted by one BUILD and called by the next, module
attributes overwritten by BUILD, names computed with ``str.join`` or base64) and records each global
with how it is used. The result is a frozen :class:`PickleView`; judging it is the policy's job.

It never raises on any input: malformations and limits are recorded and whatever was seen before
them is kept, because a real loader may already have run the payload before failing.

Speed: the stream is read in 1 MiB chunks, large values are skipped (only a head is kept), and runs
of fixed-width constants (BINFLOAT, BININT*, protocol-0 ``F...\\na``) are consumed with one regex
match and one struct unpack instead of one Python dispatch per opcode.
"""

from __future__ import annotations

import _compat_pickle
import base64
import binascii
import codecs
import copyreg
import dataclasses
import functools
import math
import pickletools
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hexscan.parsers.pickle_values import (
    NOT_FOLDED,
    Args,
    Attr,
    Blob,
    Buffer,
    CallResult,
    Kwargs,
    Map,
    Partial,
    Persistent,
    Ref,
    Seq,
    Unknown,
    UnknownExtension,
    attribute,
    fold_call,
    fold_method,
    imported_module,
    is_const,
    item,
    render,
    split_dotted,
)

__all__ = [
    "CallResult",
    "ExtensionUse",
    "GlobalUse",
    "LimitHit",
    "Malformation",
    "NestedPickle",
    "PersistentRef",
    "PickleLimits",
    "PickleView",
    "Ref",
    "StreamInfo",
    "TrailingData",
    "USES",
    "analyze_pickle",
    "analyze_pickle_file",
]

USES = ("called", "constructed", "attribute", "referenced", "mutated")
"""How a global is used. ``mutated``: BUILD/SETITEM/APPEND/setattr change a module or class."""

EXTENSION_REGISTRY: dict[int, tuple[str, str]] = {
    code: key
    for key, code in getattr(
        copyreg, "_extension_registry", {}
    ).items()  # a copy, never registered into
}
"""Copy of the standard copyreg extension registry at import (empty unless something registered)."""


@dataclass(frozen=True)
class PickleLimits:
    """Bounds on one analysis. Hitting one is recorded in the view, never raised."""

    max_opcodes: int = 100_000_000
    max_memo_entries: int = 2_000_000
    max_stack_depth: int = 2_000_000
    max_nesting: int = 10_000
    """Depth of MARK nesting (metastack)."""
    max_value_bytes: int = 16 << 20
    """Larger str/bytes values are skipped; only their first ``kept_head_bytes`` are kept."""
    kept_head_bytes: int = 4096
    max_seconds: float = 120.0
    max_kept_items: int = 256
    """Items kept per list/tuple/dict/set (the count is always exact)."""
    max_globals: int = 100_000
    """Distinct (global, use) records."""
    max_nested_depth: int = 3
    max_nested_pickles: int = 64
    min_nested_bytes: int = 12


@dataclass(frozen=True)
class GlobalUse:
    """One global and one way the pickle uses it (first occurrence; ``count`` in all)."""

    module: str
    qualname: str
    use: str
    offset: int
    expression: str
    canonical: str
    """``module.qualname`` after Python-2 name mapping (``__builtin__``: ``builtins``)."""
    opcode: str
    stream: int
    count: int = 1

    @property
    def full(self) -> str:
        return f"{self.module}.{self.qualname}" if self.qualname else self.module


@dataclass(frozen=True)
class Malformation:
    offset: int
    message: str
    stream: int


@dataclass(frozen=True)
class LimitHit:
    limit: str
    offset: int
    message: str


@dataclass(frozen=True)
class ExtensionUse:
    offset: int
    code: int
    module: str | None
    name: str | None


@dataclass(frozen=True)
class PersistentRef:
    offset: int
    expression: str


@dataclass(frozen=True)
class StreamInfo:
    index: int
    start: int
    end: int
    protocol: int
    opcodes: int
    complete: bool
    """Reached STOP."""
    result: str
    """Rendered top-level value."""


@dataclass(frozen=True)
class TrailingData:
    offset: int
    length: int


@dataclass(frozen=True)
class NestedPickle:
    offset: int
    """Offset (in the enclosing stream) of the opcode that produced the str/bytes value."""
    encoding: str
    """``raw``, ``base64`` or ``hex``."""
    depth: int
    view: PickleView


@dataclass(frozen=True)
class PickleView:
    """Everything the machine saw. Offsets are relative to where the input started."""

    streams: tuple[StreamInfo, ...] = ()
    globals: tuple[GlobalUse, ...] = ()
    extensions: tuple[ExtensionUse, ...] = ()
    persistent_ids: tuple[PersistentRef, ...] = ()
    persistent_id_count: int = 0
    malformations: tuple[Malformation, ...] = ()
    limit_hits: tuple[LimitHit, ...] = ()
    trailing: tuple[TrailingData, ...] = ()
    nested: tuple[NestedPickle, ...] = ()
    opcode_count: int = 0
    bytes_read: int = 0
    truncated_values: int = 0

    def global_names(self, *, nested: bool = True) -> set[str]:
        """Every global named or reached (``module.qualname`` and canonical forms)."""
        names = {g.full for g in self.globals} | {g.canonical for g in self.globals}
        if nested:
            for inner in self.nested:
                names |= inner.view.global_names()
        return names


def analyze_pickle(
    source: bytes | bytearray | memoryview | BinaryIO, limits: PickleLimits | None = None
) -> PickleView:
    """Symbolically run every pickle stream in ``source`` (bytes, or a file read in chunks)."""
    limits = limits or PickleLimits()
    budget = _Budget(time.monotonic() + limits.max_seconds, limits.max_nested_pickles)
    return _Machine(_Reader(source), limits, budget, depth=0).run()


# ---------------------------------------------------------------------------- internals


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
                raise _Truncated("data ends inside a text argument")

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
_NESTED_B64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_NESTED_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_PROTOCOL0_BOOLS = {b"00": False, b"01": True}
_OPNAMES = {ord(op.code.encode("latin-1")): op.name for op in pickletools.opcodes}
_VALUE_BASES = frozenset(
    {
        "builtins.object",
        "builtins.dict",
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.complex",
        "builtins.str",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.bool",
    }
)
"""Bases whose ``__new__``/``__init__`` only build a value (copyreg._reconstructor)."""


def canonical_name(module: str, qualname: str) -> str:
    """``module.qualname`` as Python 3 would import it (CPython's fix_imports mapping)."""
    head, _, rest = qualname.partition(".")
    mapped = _compat_pickle.NAME_MAPPING.get((module, head))
    if mapped:
        module, head = mapped
    else:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    name = f"{head}.{rest}" if rest else head
    return f"{module}.{name}" if name else module


def _root_ref(value: Any) -> Ref:
    """The global a callee/class value stands for (module ``?`` when it cannot be known)."""
    if isinstance(value, Ref):
        return value
    if isinstance(value, Partial):
        return _root_ref(value.func)
    if isinstance(value, Attr):
        return _owner_ref(value.obj).child(value.name)
    if isinstance(value, CallResult):
        owner = _owner_ref(value)
        return owner if owner.module == "?" else owner.child("__call__")
    if isinstance(value, UnknownExtension):
        return Ref("?", f"<extension {value.code}>")
    return Ref("?", f"<{type(value).__name__.lower()}>")


def _owner_ref(obj: Any) -> Ref:
    """The class an object belongs to: an instance's callee, or the builtin type of a constant."""
    if isinstance(obj, CallResult):
        return _root_ref(obj.callee)
    if isinstance(obj, Seq):
        return Ref("builtins", obj.kind)
    if isinstance(obj, Map):
        return Ref("builtins", "dict")
    if is_const(obj) or isinstance(obj, bytearray):
        return Ref("builtins", type(obj).__name__)
    return _root_ref(obj)


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


class _Machine:
    """One run over a reader: all its pickle streams, then the nested pickles in their values."""

    def __init__(self, reader: _Reader, limits: PickleLimits, budget: _Budget, depth: int) -> None:
        self.r = reader
        self.limits = limits
        self.budget = budget
        self.depth = depth
        self.memo: dict[int, Any] = {}
        self.overlay: dict[str, Any] = {}
        """Full name -> value BUILD/setattr wrote onto a module or class (seen by later imports)."""
        self.opcodes = 0
        self.op_offset = 0
        self.op_code = 0
        self.stream_index = 0
        self.truncated_values = 0
        self.stream_opcodes = 0
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.protocol = 0
        self.handlers = self._handler_table()
        self.kept = _Records()
        self.rec = _Records()

    # ------------------------------------------------------------------ driver

    def run(self) -> PickleView:
        while True:
            start = self.r.offset
            outcome = self._guarded_stream()
            self._settle_stream(start, outcome)
            if outcome != "stop" or self._at_eof_safely():
                break
            self.stream_index += 1
        nested = self._scan_nested()
        return self._view(nested)

    def _guarded_stream(self) -> str:
        """Run one stream; turn every way it can end into an outcome, recorded in ``self.rec``."""
        self.rec = _Records()
        self.stack, self.metastack, self.protocol = [], [], 0
        self.stream_opcodes = 0
        try:
            self._run_stream()
            return "stop"
        except _Limit as hit:
            self.rec.limits.append(LimitHit(hit.limit, self.op_offset, str(hit)))
            return "limit"
        except _Malformed as err:
            self.rec.malformations.append(Malformation(self.op_offset, str(err), self.stream_index))
            return "malformed"
        except IndexError:  # the hot handlers index the stack directly
            self.rec.malformations.append(
                Malformation(self.op_offset, "stack underflow", self.stream_index)
            )
            return "malformed"
        except RecursionError:
            self.rec.limits.append(
                LimitHit("max_nesting", self.op_offset, "value nesting too deep to follow")
            )
            return "limit"
        except Exception as err:  # noqa: BLE001 - never crash on input: record and stop this stream
            message = f"{_OPNAMES.get(self.op_code, 'opcode')}: {type(err).__name__}: {err}"
            self.rec.malformations.append(Malformation(self.op_offset, message, self.stream_index))
            return "malformed"

    def _settle_stream(self, start: int, outcome: str) -> None:
        """Keep the stream's records, or (a later stream that is only junk) record trailing data."""
        self.opcodes += self.stream_opcodes
        # a later stream counts as a pickle if it completed or named something a loader would import
        is_pickle = self.stream_index == 0 or outcome == "stop" or self.rec.saw_code()
        if not is_pickle:
            length = (self.r.offset - start) + self._remaining_safely()
            self.kept.trailing.append(TrailingData(start, length))
            return
        result = render(self.stack[-1]) if outcome == "stop" and self.stack else ""
        self.kept.streams.append(
            StreamInfo(
                self.stream_index,
                start,
                self.r.offset,
                self.protocol,
                self.stream_opcodes,
                outcome == "stop",
                result,
            )
        )
        self.kept.merge(self.rec)

    def _at_eof_safely(self) -> bool:
        try:
            return self.r.at_eof()
        except Exception as err:  # noqa: BLE001
            self.kept.malformations.append(
                Malformation(self.r.offset, f"read error: {err}", self.stream_index)
            )
            return True

    def _remaining_safely(self) -> int:
        try:
            return self.r.remaining()
        except Exception:  # noqa: BLE001
            return 0

    def _run_stream(self) -> None:
        """The dispatch loop (hot: locals only; limits are checked every 1024 opcodes)."""
        r, handlers = self.r, self.handlers
        self._check_limits()
        done = 0
        try:
            while True:
                pos = r.pos
                if pos >= len(r.buf):
                    if not r.fill(1):
                        self.op_offset = r.offset
                        raise _Truncated("data ends before STOP")
                    pos = r.pos
                code = r.buf[pos]
                self.op_offset = r.base + pos
                self.op_code = code
                r.pos = pos + 1
                handler = handlers[code]
                if handler is None:
                    raise _Malformed(f"invalid opcode 0x{code:02x}")
                done += 1
                if handler():
                    return
                if done & 1023 == 0:
                    self.stream_opcodes += done
                    done = 0
                    self._check_limits()
        finally:
            self.stream_opcodes += done

    def _check_limits(self) -> None:
        total = self.opcodes + self.stream_opcodes
        if total > self.limits.max_opcodes:
            raise _Limit("max_opcodes", f"more than {self.limits.max_opcodes} opcodes")
        if len(self.stack) > self.limits.max_stack_depth:
            raise _Limit(
                "max_stack_depth", f"more than {self.limits.max_stack_depth} values on the stack"
            )
        if time.monotonic() > self.budget.deadline:
            raise _Limit("max_seconds", f"analysis took more than {self.limits.max_seconds} s")

    def _view(self, nested: list[NestedPickle]) -> PickleView:
        k = self.kept
        return PickleView(
            streams=tuple(k.streams),
            globals=tuple(sorted(k.use_records(), key=lambda g: (g.offset, g.use))),
            extensions=tuple(k.extensions),
            persistent_ids=tuple(k.persistent),
            persistent_id_count=k.persistent_count,
            malformations=tuple(k.malformations),
            limit_hits=tuple(k.limits),
            trailing=tuple(k.trailing),
            nested=tuple(nested),
            opcode_count=sum(s.opcodes for s in k.streams),
            bytes_read=self.r.offset,
            truncated_values=self.truncated_values,
        )

    # ------------------------------------------------------------------ nested pickles

    def _note_constant(self, value: Any) -> Any:
        """Remember str/bytes constants that hold a pickle, to scan after the stream."""
        found = _nested_payload(value, self.limits.min_nested_bytes)
        if found and len(self.rec.candidates) < self.limits.max_nested_pickles:
            self.rec.candidates.append((self.op_offset, found[0], found[1]))
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
            view = _Machine(_Reader(data), self.limits, self.budget, self.depth + 1).run()
            if any(s.complete for s in view.streams) or view.globals:
                found.append(NestedPickle(offset, encoding, self.depth + 1, view))
        return found

    # ------------------------------------------------------------------ stack helpers

    def _pop(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack.pop()

    def _top(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Malformed("MARK expected but not found")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _value(self, size: int, kind: str) -> Any:
        """Read a length-prefixed str/bytes value; oversized ones are skipped, keeping a head."""
        if size < 0:
            raise _Malformed("negative length")
        if size > self.limits.max_value_bytes:
            self.truncated_values += 1
            return Blob(kind, size, self.r.skip(size, self.limits.kept_head_bytes))
        data = self.r.take(size)
        if kind == "bytearray":
            return bytearray(data)
        value = data.decode("utf-8", "surrogatepass") if kind == "str" else data
        return self._note_constant(value) if size >= self.limits.min_nested_bytes else value

    def _line(self) -> bytes | Blob:
        return self.r.line(self.limits.max_value_bytes * 4 + 64, self.limits.kept_head_bytes)

    def _name_line(self) -> str:
        text = self._line()
        if isinstance(text, Blob):
            raise _Malformed("oversized global name")
        return text.decode("utf-8")

    def _int_arg(self, fmt: str, size: int) -> int:
        return int(struct.unpack(fmt, self.r.take(size))[0])

    # ------------------------------------------------------------------ recording

    def _record(self, value: Any, use: str, expression: str | None = None) -> None:
        ref = _root_ref(value)
        key = (ref.module, ref.qualname, use)
        uses = self.rec.uses
        if key in uses:
            uses[key][1] += 1
            return
        if len(uses) + len(self.kept.uses) >= self.limits.max_globals:
            raise _Limit("max_globals", f"more than {self.limits.max_globals} distinct global uses")
        record = GlobalUse(
            module=ref.module,
            qualname=ref.qualname,
            use=use,
            offset=self.op_offset,
            expression=expression if expression is not None else render(value),
            canonical=canonical_name(ref.module, ref.qualname),
            opcode=_OPNAMES.get(self.op_code, "?"),
            stream=self.stream_index,
        )
        uses[key] = [record, 1]

    def _record_reached(self, value: Any) -> Any:
        """A global reached dynamically (getattr, __import__, attrgetter ...): an attribute use."""
        if isinstance(value, Ref):
            self._record(value, "attribute")
        return value

    # ------------------------------------------------------------------ globals

    def _import(self, module: str, name: str) -> Any:
        """What find_class(module, name) returns: dotted names walked, overwrites honoured."""
        written = Ref(module, name)
        self._record(written, "referenced", written.full)
        value: Any = Ref(module)
        parts = name.split(".")
        for i, part in enumerate(parts):
            if isinstance(value, Ref) and value.child(part).full in self.overlay:
                value = self.overlay[value.child(part).full]
            else:
                value = attribute(value, part)
            if isinstance(value, Ref) and i < len(parts) - 1:
                self._record(value, "referenced", value.full)
        if not (isinstance(value, Ref) and value == written):
            self._record_reached(value)
        return value

    # ------------------------------------------------------------------ calls

    def _call(
        self,
        func: Any,
        args: Args,
        kwargs: Kwargs,
        expr: CallResult | None = None,
        use: str = "called",
    ) -> Any:
        """Symbolically call ``func``: record the use, apply known semantics, fold pure calls."""
        expr = expr or CallResult(func, args, kwargs)
        if isinstance(func, Partial):
            return self._call(func.func, func.args + args, {**func.kwargs, **kwargs}, expr, use)
        if isinstance(func, CallResult):
            apply = _INSTANCE_CALLS.get(_canonical(_root_ref(func.callee)))
            if apply:
                return apply(self, func, args, kwargs, expr)
        self._record(func, use, render(expr))
        if isinstance(func, Attr) and is_const(func.obj):
            folded = fold_method(func.obj, func.name, args, kwargs)
            return expr if folded is NOT_FOLDED else self._note_folded(folded)
        name = _canonical(_root_ref(func))
        special = _CALL_SPECIALS.get(name)
        if special:
            result = special(self, args, kwargs, expr)
            if result is not None:
                return result
        folded = fold_call(name, args, kwargs)
        return expr if folded is NOT_FOLDED else self._note_folded(folded)

    def _note_folded(self, value: Any) -> Any:
        if isinstance(value, (str, bytes)):
            self._note_constant(value)
        return value

    def _construct(self, cls: Any, args: Args, kwargs: Kwargs) -> CallResult:
        """``cls.__new__(cls, *args)``: the object protocol (NEWOBJ, copyreg.__newobj__ ...)."""
        expr = CallResult(cls, args, kwargs, kind="new")
        self._record(cls, "constructed", render(expr))
        return expr

    def _instantiate(self, cls: Any, args: list[Any]) -> Any:
        """INST/OBJ: ``cls(*args)``, or only ``cls.__new__`` with no args when cls is a class."""
        looks_like_class = isinstance(cls, Ref) and cls.qualname.rpartition(".")[2][:1].isupper()
        if args or not looks_like_class:
            return self._call(cls, tuple(args), {})
        return self._construct(cls, (), {})

    def _build(self, inst: Any, state: Any) -> None:
        """BUILD: a planted ``__setstate__`` is called; on a global it is an attribute overwrite."""
        setstate = inst.attrs.get("__setstate__") if isinstance(inst, CallResult) else None
        if setstate is not None:
            self._call(setstate, (state,), {})
            return
        if isinstance(inst, CallResult) and _root_ref(inst.callee).full in _JOBLIB_WRAPPERS:
            self._joblib_array(state)
        if isinstance(inst, Partial):
            self._set_partial_state(inst, state)
            return
        if isinstance(inst, CallResult) and not isinstance(state, Map):
            inst.attrs.setdefault("__state__", state)
        for key, value in _state_items(state):
            if isinstance(inst, Ref):
                self._mutate(inst, key, value)
            elif isinstance(inst, CallResult) and len(inst.attrs) < self.limits.max_kept_items:
                inst.attrs[key] = value

    def _joblib_array(self, state: Any) -> None:
        """joblib's unpickler reads an array's data from the file right after its wrapper's BUILD:
        raw bytes (after optional alignment padding), or for object arrays a whole pickle stream."""
        fields = (
            {k: v for k, v in state.items if isinstance(k, str)} if isinstance(state, Map) else {}
        )
        itemsize = _dtype_itemsize(fields.get("dtype"))
        count = _shape_count(fields.get("shape"))
        if itemsize == "object":
            self._inline_stream()
        elif isinstance(itemsize, int) and count is not None:
            if isinstance(fields.get("numpy_array_alignment_bytes"), int):
                self.r.skip(self.r.take(1)[0], 0)
            self.r.skip(count * itemsize, 0)

    def _inline_stream(self) -> None:
        """A complete pickle stream embedded at this point, loaded by a fresh unpickler."""
        saved = self.stack, self.metastack, self.memo
        self.stack, self.metastack, self.memo = [], [], {}
        try:
            self._run_stream()
        finally:
            self.stack, self.metastack, self.memo = saved

    def _set_partial_state(self, part: Partial, state: Any) -> None:
        if isinstance(state, Seq) and state.kind == "tuple" and state.items:
            part.func = state.items[0]
            if len(state.items) > 1 and isinstance(state.items[1], Seq):
                part.args = tuple(state.items[1].items)
            part.origin = None

    def _mutate(self, target: Ref, key: str, value: Any) -> None:
        """``setattr(module_or_class, key, value)``: later imports of that name see ``value``."""
        self._record(target, "mutated", f"setattr({render(target)}, {key!r}, {render(value)})")
        self.overlay[target.child(key).full] = value

    def _store_items(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        if isinstance(target, Map):
            target.store(pairs, self.limits.max_kept_items)
        elif isinstance(target, Ref):
            for key, value in pairs:
                if target.qualname.endswith("__dict__") and isinstance(key, str):
                    namespace = Ref(target.module, target.qualname[: -len("__dict__")].rstrip("."))
                    self._mutate(namespace, key, value)
                else:
                    self._record(
                        target, "mutated", f"{render(target)}[{render(key)}] = {render(value)}"
                    )
        elif is_const(target) or isinstance(target, Seq):
            raise _Malformed(f"cannot set items on {type(target).__name__}")

    def _append(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, Seq) and target.kind == "list":
            target.extend(items, self.limits.max_kept_items)
        elif isinstance(target, Ref):
            self._record(
                target,
                "mutated",
                f"{render(target)}.extend({render(Seq.capped('list', items, 4))})",
            )
        elif is_const(target) or isinstance(target, (Seq, Map)):
            raise _Malformed(f"cannot append to {type(target).__name__}")

    # ------------------------------------------------------------------ opcode table

    def _handler_table(self) -> list[Callable[[], Any] | None]:
        table: list[Callable[[], Any] | None] = [None] * 256
        for code, name in _OPNAMES.items():
            table[code] = getattr(self, f"_op_{name.lower()}")
        return table

    # constants --------------------------------------------------------

    def _fixed_run(self) -> None:
        """BINFLOAT/BININT/BININT1/BININT2 and the directly following same opcodes, at once."""
        r, code = self.r, self.op_code
        single, pattern, fmt, width = _FIXED_RUNS[code]
        self.stack.append(single.unpack(r.take(width - 1))[0])
        pos = r.pos
        if pos < len(r.buf) and r.buf[pos] == code:  # a run follows
            match = pattern.match(r.buf, pos)
            if match:
                count = (match.end() - pos) // width
                self.stack.extend(_run_struct(fmt, count).unpack_from(r.buf, pos))
                r.pos = match.end()
                self.stream_opcodes += count
                self._check_limits()

    _op_binfloat = _op_binint = _op_binint1 = _op_binint2 = _fixed_run

    def _text_append_run(self) -> bool:
        """Protocol 0 ``F1.5\\na`` / ``I7\\na`` runs appended to a list on the stack top."""
        r = self.r
        target = self.stack[-1] if self.stack else None
        if not (isinstance(target, Seq) and target.kind == "list"):
            return False
        pattern, parse = _TEXT_APPEND_RUNS[self.op_code]
        match = pattern.match(r.buf, r.pos - 1)  # the opcode byte is still in the buffer
        if not match:
            return False
        count = r.buf.count(b"\n", r.pos - 1, match.end())
        room = max(self.limits.max_kept_items - len(target.items), 0)
        if room:
            end = min(match.end(), r.pos - 1 + 44 * room)
            whole_lines = r.buf[r.pos - 1 : end].split(b"\na")[:-1]  # the last piece may be cut
            target.items.extend(parse(line[1:]) for line in whole_lines[:room])
        target.count += count
        r.pos = match.end()
        self.stream_opcodes += 2 * count - 1
        self._check_limits()
        return True

    def _op_float(self) -> None:
        if not self._text_append_run():
            self.stack.append(float(self._text_arg()))

    def _op_int(self) -> None:
        if self._text_append_run():
            return
        text = self._text_arg()
        self.stack.append(_PROTOCOL0_BOOLS[text] if text in _PROTOCOL0_BOOLS else int(text))

    def _text_arg(self) -> bytes:
        text = self._line()
        if isinstance(text, Blob):
            raise _Limit("max_value_bytes", "oversized numeric literal")
        return text

    def _op_long(self) -> None:
        self.stack.append(int(self._text_arg().rstrip(b"L")))

    def _op_long1(self) -> None:
        self.stack.append(int.from_bytes(self.r.take(self.r.take(1)[0]), "little", signed=True))

    def _op_long4(self) -> None:
        size = self._int_arg("<i", 4)
        value = self._value(size, "bytes")
        self.stack.append(
            int.from_bytes(value, "little", signed=True)
            if isinstance(value, bytes)
            else Unknown("huge int")
        )

    def _op_string(self) -> None:
        text = self._line()
        if isinstance(text, Blob):
            self.truncated_values += 1
            self.stack.append(text)
            return
        if len(text) < 2 or text[:1] not in b"'\"" or text[-1:] != text[:1]:
            raise _Malformed("STRING argument is not quoted")
        self.stack.append(
            self._note_constant(codecs.escape_decode(text[1:-1])[0].decode("latin-1"))
        )

    def _op_binstring(self) -> None:
        self._push_latin1(self._value(self._int_arg("<i", 4), "bytes"))

    def _op_short_binstring(self) -> None:
        self._push_latin1(self._value(self.r.take(1)[0], "bytes"))

    def _push_latin1(self, value: Any) -> None:
        self.stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)

    def _op_unicode(self) -> None:
        text = self._line()
        if isinstance(text, Blob):
            self.truncated_values += 1
            self.stack.append(text)
            return
        self.stack.append(self._note_constant(text.decode("raw-unicode-escape")))

    def _op_short_binunicode(self) -> None:
        self.stack.append(self._value(self.r.byte(), "str"))

    def _op_binunicode(self) -> None:
        self.stack.append(self._value(self._int_arg("<I", 4), "str"))

    def _op_binunicode8(self) -> None:
        self.stack.append(self._value(self._int_arg("<Q", 8), "str"))

    def _op_short_binbytes(self) -> None:
        self.stack.append(self._value(self.r.byte(), "bytes"))

    def _op_binbytes(self) -> None:
        self.stack.append(self._value(self._int_arg("<I", 4), "bytes"))

    def _op_binbytes8(self) -> None:
        self.stack.append(self._value(self._int_arg("<Q", 8), "bytes"))

    def _op_bytearray8(self) -> None:
        self.stack.append(self._value(self._int_arg("<Q", 8), "bytearray"))

    def _op_none(self) -> None:
        self.stack.append(None)

    def _op_newtrue(self) -> None:
        self.stack.append(True)

    def _op_newfalse(self) -> None:
        self.stack.append(False)

    def _op_next_buffer(self) -> None:
        self.stack.append(Buffer())

    def _op_readonly_buffer(self) -> None:
        top = self._top()
        if isinstance(top, Buffer):
            top.readonly = True

    # containers -------------------------------------------------------

    def _op_empty_list(self) -> None:
        self.stack.append(Seq("list"))

    def _op_empty_tuple(self) -> None:
        self.stack.append(Seq("tuple"))

    def _op_empty_dict(self) -> None:
        self.stack.append(Map())

    def _op_empty_set(self) -> None:
        self.stack.append(Seq("set"))

    def _op_list(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq.capped("list", items, self.limits.max_kept_items))

    def _op_tuple(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq.capped("tuple", items, self.limits.max_kept_items))

    def _small_tuple(self, size: int) -> None:
        if len(self.stack) < size:
            raise _Malformed("stack underflow")
        items = self.stack[-size:]
        del self.stack[-size:]
        self.stack.append(Seq("tuple", items))

    def _op_tuple1(self) -> None:
        self._small_tuple(1)

    def _op_tuple2(self) -> None:
        self._small_tuple(2)

    def _op_tuple3(self) -> None:
        self._small_tuple(3)

    def _op_frozenset(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq.capped("frozenset", items, self.limits.max_kept_items))

    def _op_dict(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise _Malformed("odd number of items for DICT")
        mapping = Map()
        mapping.store(list(zip(items[::2], items[1::2], strict=True)), self.limits.max_kept_items)
        self.stack.append(mapping)

    def _op_append(self) -> None:
        value = self._pop()
        self._append(self._top(), [value])

    def _op_appends(self) -> None:
        items = self._pop_mark()
        self._append(self._top(), items)

    def _op_setitem(self) -> None:
        value = self._pop()
        key = self._pop()
        self._store_items(self._top(), [(key, value)])

    def _op_setitems(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise _Malformed("odd number of items for SETITEMS")
        self._store_items(self._top(), list(zip(items[::2], items[1::2], strict=True)))

    def _op_additems(self) -> None:
        items = self._pop_mark()
        target = self._top()
        if isinstance(target, Seq) and target.kind == "set":
            target.extend(items, self.limits.max_kept_items)
        elif isinstance(target, Ref):
            self._record(target, "mutated", f"{render(target)}.add(...)")
        elif is_const(target) or isinstance(target, (Seq, Map)):
            raise _Malformed(f"cannot add items to {type(target).__name__}")

    # stack and memo ---------------------------------------------------

    def _op_mark(self) -> None:
        if len(self.metastack) >= self.limits.max_nesting:
            raise _Limit("max_nesting", f"more than {self.limits.max_nesting} nested MARKs")
        self.metastack.append(self.stack)
        self.stack = []

    def _op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def _op_pop_mark(self) -> None:
        self._pop_mark()

    def _op_dup(self) -> None:
        self.stack.append(self._top())

    def _memo_put(self, index: int) -> None:
        memo = self.memo
        if index not in memo and (index < 0 or len(memo) >= self.limits.max_memo_entries):
            if index < 0:
                raise _Malformed("negative memo index")
            raise _Limit(
                "max_memo_entries", f"more than {self.limits.max_memo_entries} memo entries"
            )
        memo[index] = self.stack[-1]

    def _memo_get(self, index: int) -> None:
        try:
            self.stack.append(self.memo[index])
        except KeyError:
            raise _Malformed(f"memo key {index} has never been stored") from None

    def _op_put(self) -> None:
        self._memo_put(int(self._text_arg()))

    def _op_binput(self) -> None:
        self._memo_put(self.r.byte())

    def _op_long_binput(self) -> None:
        self._memo_put(self._int_arg("<I", 4))

    def _op_memoize(self) -> None:
        self._memo_put(len(self.memo))

    def _op_get(self) -> None:
        self._memo_get(int(self._text_arg()))

    def _op_binget(self) -> None:
        self._memo_get(self.r.byte())

    def _op_long_binget(self) -> None:
        self._memo_get(self._int_arg("<I", 4))

    # globals, calls, objects ------------------------------------------

    def _op_global(self) -> None:
        module = self._name_line()
        name = self._name_line()
        self.stack.append(self._import(module, name))

    def _op_stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if isinstance(module, str) and isinstance(name, str):
            self.stack.append(self._import(module, name))
        elif any(is_const(v) and not isinstance(v, str) for v in (module, name)):
            raise _Malformed("STACK_GLOBAL requires str module and name")
        else:
            unresolved = Ref("?", f"{render(module)}.{render(name)}")
            self._record(unresolved, "referenced", f"find_class({render(module)}, {render(name)})")
            self.stack.append(unresolved)

    def _op_inst(self) -> None:
        module = self._name_line()
        name = self._name_line()
        cls = self._import(module, name)
        instance = self._instantiate(cls, self._pop_mark())
        self.stack.append(instance)

    def _op_obj(self) -> None:
        items = self._pop_mark()
        if not items:
            raise _Malformed("OBJ without a class")
        self.stack.append(self._instantiate(items[0], items[1:]))

    def _op_newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        self.stack.append(self._construct(cls, _as_args(args), {}))

    def _op_newobj_ex(self) -> None:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        self.stack.append(self._construct(cls, _as_args(args), _as_kwargs(kwargs)))

    def _op_reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        self.stack.append(self._call(func, _as_args(args), {}))

    def _op_build(self) -> None:
        state = self._pop()
        self._build(self._top(), state)

    def _extension(self, code: int) -> None:
        key = EXTENSION_REGISTRY.get(code)
        self.rec.extensions.append(ExtensionUse(self.op_offset, code, *(key or (None, None))))
        if key:
            self.stack.append(self._import(*key))
            return
        self.stack.append(UnknownExtension(code))

    def _op_ext1(self) -> None:
        self._extension(self.r.take(1)[0])

    def _op_ext2(self) -> None:
        self._extension(self._int_arg("<H", 2))

    def _op_ext4(self) -> None:
        self._extension(self._int_arg("<i", 4))

    def _persistent(self, pid: Any) -> None:
        self.rec.persistent_count += 1
        if len(self.rec.persistent) < 16:
            self.rec.persistent.append(PersistentRef(self.op_offset, render(pid)))
        self.stack.append(Persistent(pid))

    def _op_persid(self) -> None:
        self._persistent(self._name_line())

    def _op_binpersid(self) -> None:
        self._persistent(self._pop())

    # framing ----------------------------------------------------------

    def _op_proto(self) -> None:
        self.protocol = self.r.take(1)[0]
        if self.protocol > 5:
            raise _Malformed(f"unsupported pickle protocol {self.protocol}")

    def _op_frame(self) -> None:
        self.r.take(8)

    def _op_stop(self) -> bool:
        if not self.stack:
            raise _Malformed("STOP with an empty stack")
        return True


# ---------------------------------------------------------------------------- records and semantics


@dataclass
class _Records:
    """What one stream (or, merged, the whole run) recorded."""

    uses: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    """(module, qualname, use[, stream]) -> [first GlobalUse, count]."""
    malformations: list[Malformation] = field(default_factory=list)
    limits: list[LimitHit] = field(default_factory=list)
    extensions: list[ExtensionUse] = field(default_factory=list)
    persistent: list[PersistentRef] = field(default_factory=list)
    persistent_count: int = 0
    candidates: list[tuple[int, str, bytes]] = field(default_factory=list)
    streams: list[StreamInfo] = field(default_factory=list)
    trailing: list[TrailingData] = field(default_factory=list)

    def saw_code(self) -> bool:
        """Did this stream name a global, extension or persistent id (a pickle, not junk)?"""
        return bool(self.uses or self.extensions or self.persistent_count)

    def merge(self, other: _Records) -> None:
        for key, (record, count) in other.uses.items():
            key = (*key, record.stream)
            if key in self.uses:
                self.uses[key][1] += count
            else:
                self.uses[key] = [record, count]
        self.malformations += other.malformations
        self.limits += other.limits
        self.extensions += other.extensions
        self.persistent += other.persistent[: max(16 - len(self.persistent), 0)]
        self.persistent_count += other.persistent_count
        self.candidates += other.candidates

    def use_records(self) -> list[GlobalUse]:
        return [_with_count(record, count) for record, count in self.uses.values()]


def _with_count(record: GlobalUse, count: int) -> GlobalUse:
    return record if record.count == count else dataclasses.replace(record, count=count)


_JOBLIB_WRAPPERS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    }
)


def _dtype_itemsize(dtype: Any) -> int | str | None:
    """Item size of a symbolic ``numpy.dtype(code, ...)`` value; ``"object"`` for object dtypes."""
    if not (isinstance(dtype, CallResult) and dtype.args and isinstance(dtype.args[0], str)):
        return None
    code = dtype.args[0].lstrip("<>=|")
    if code[:1] == "O":
        return "object"
    state = dtype.attrs.get("__state__")
    if (
        isinstance(state, Seq)
        and len(state.items) > 5
        and isinstance(state.items[5], int)
        and state.items[5] > 0
    ):
        return state.items[5]
    digits = code[1:]
    return int(digits) if digits.isdigit() else None


def _shape_count(shape: Any) -> int | None:
    if not (
        isinstance(shape, Seq)
        and shape.complete
        and all(isinstance(n, int) and n >= 0 for n in shape.items)
    ):
        return None
    return int(math.prod(shape.items))


def _canonical(ref: Ref) -> str:
    return canonical_name(ref.module, ref.qualname)


def _as_args(value: Any) -> Args:
    if isinstance(value, Seq):
        return (
            tuple(value.items)
            if value.complete
            else (*value.items, Unknown(f"{value.count - len(value.items)} more"))
        )
    return (Unknown(f"*{render(value, 1)}"),)


def _as_kwargs(value: Any) -> Kwargs:
    if isinstance(value, Map):
        return {k if isinstance(k, str) else render(k): v for k, v in value.items}
    return {"**": value}


def _state_items(state: Any) -> list[tuple[str, Any]]:
    """(name, value) pairs BUILD would set from a dict state or a (dict, slots) tuple."""
    parts = [state]
    if isinstance(state, Seq) and state.kind == "tuple" and state.count == 2:
        parts = list(state.items)
    pairs: list[tuple[str, Any]] = []
    for part in parts:
        if isinstance(part, Map):
            pairs += [(k, v) for k, v in part.items if isinstance(k, str)]
    return pairs


def _arg(args: Args, kwargs: Kwargs, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


# Calls whose effect is known: they reach other globals or build objects.
def _call_getattr(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    if len(args) >= 2 and isinstance(args[1], str):
        return m._record_reached(attribute(args[0], args[1], expr))
    return Unknown("getattr with a computed name")


def _call_import(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    return m._record_reached(
        imported_module(_arg(args, kwargs, 0, "name"), _arg(args, kwargs, 3, "fromlist"), expr)
    )


def _call_import_module(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    name = _arg(args, kwargs, 0, "name")
    return (
        m._record_reached(Ref(name, "", expr))
        if isinstance(name, str)
        else Unknown("import of a computed name")
    )


def _call_locate(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    name = _arg(args, kwargs, 0, "path")
    if not isinstance(name, str):
        return Unknown("lookup of a computed name")
    ref = split_dotted(name)
    return m._record_reached(Ref(ref.module, ref.qualname, expr))


def _call_partial(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    return Partial(args[0], tuple(args[1:]), dict(kwargs), expr) if args else None


def _call_getitem(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    return m._record_reached(item(args[0], args[1], expr)) if len(args) == 2 else None


def _call_vars(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    return (
        m._record_reached(attribute(args[0], "__dict__", expr))
        if args
        else Unknown("vars() of the loader")
    )


def _call_setattr(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    if len(args) == 3 and isinstance(args[0], Ref) and isinstance(args[1], str):
        m._mutate(args[0], args[1], args[2])
    return None


def _call_reconstructor(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    """copyreg._reconstructor(cls, base, state): ``base.__new__(cls, state)``, then
    ``base.__init__(obj, state)`` unless base is a value type."""
    if len(args) != 3:
        return None
    cls, base, state = args
    if not (isinstance(base, Ref) and canonical_name(base.module, base.qualname) in _VALUE_BASES):
        m._call(attribute(base, "__init__"), (cls, state), {}, CallResult(base, (state,), {}))
    return m._construct(cls, (state,) if state is not None else (), {})


def _call_newobj(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    return m._construct(args[0], tuple(args[1:]), {}) if args else None


def _call_newobj_ex(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    if len(args) != 3:
        return None
    return m._construct(args[0], _as_args(args[1]), _as_kwargs(args[2]))


# Trampolines: functions that benign pickles call (so a policy may allow them) but that themselves
# call or instantiate one of their arguments. The inner call is recorded as if the pickle made it,
# so an allowed trampoline cannot launder an arbitrary callable.
def _trampoline_call(callee_index: int, args_index: int | None) -> Callable[..., Any]:
    def handler(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> None:
        if len(args) > callee_index and not isinstance(args[callee_index], str):
            inner_args = (
                (args[args_index],) if args_index is not None and len(args) > args_index else ()
            )
            m._call(args[callee_index], inner_args, {})

    return handler


def _trampoline_spread(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> None:
    """torch._tensor._rebuild_from_type(_v2)(func, type, args, state): ``func(*args)``."""
    if len(args) >= 3:
        m._call(args[0], _as_args(args[2]), {})


def _trampoline_new(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> None:
    """Functions doing ``args[0].__new__(args[0], ...)`` (numpy _reconstruct, sklearn newObj)."""
    if args:
        m._construct(args[0], (), {})


_TRAMPOLINES: dict[str, Callable[[_Machine, Args, Kwargs, CallResult], Any]] = {
    "torch._tensor._rebuild_from_type": _trampoline_spread,
    "torch._tensor._rebuild_from_type_v2": _trampoline_spread,
    "torch._utils._rebuild_wrapper_subclass": _trampoline_new,
    "numpy.core.multiarray._reconstruct": _trampoline_new,
    "numpy._core.multiarray._reconstruct": _trampoline_new,
    "numpy.random._pickle.__randomstate_ctor": _trampoline_call(1, 0),
    "numpy.random._pickle.__generator_ctor": _trampoline_call(1, 0),
    "numpy.random._pickle.__bit_generator_ctor": _trampoline_call(0, None),
    "sklearn.neighbors._kd_tree.newObj": _trampoline_new,
    "sklearn.neighbors._ball_tree.newObj": _trampoline_new,
    "sklearn.neighbors._binary_tree.newObj": _trampoline_new,
    "pandas.core.indexes.base._new_Index": _trampoline_new,
}


def _call_load_from_bytes(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> None:
    """torch.storage._load_from_bytes(b) is torch.load of BytesIO(b) with weights_only=False
    (how plain pickle stores a tensor): constant bytes are scanned as a nested pickle; anything
    else is recorded as the torch.load call it is."""
    data = _arg(args, kwargs, 0, "b")
    if isinstance(data, bytes):
        m._force_nested(data)
    else:
        m._call(Ref("torch", "load"), (data,), {"weights_only": False})


_CALL_SPECIALS: dict[str, Callable[[_Machine, Args, Kwargs, CallResult], Any]] = {
    **_TRAMPOLINES,
    "torch.storage._load_from_bytes": _call_load_from_bytes,
    "builtins.getattr": _call_getattr,
    "builtins.__import__": _call_import,
    "importlib.__import__": _call_import,
    "importlib.import_module": _call_import_module,
    "pkgutil.resolve_name": _call_locate,
    "pydoc.locate": _call_locate,
    "functools.partial": _call_partial,
    "_functools.partial": _call_partial,
    "operator.getitem": _call_getitem,
    "_operator.getitem": _call_getitem,
    "builtins.vars": _call_vars,
    "builtins.setattr": _call_setattr,
    "copyreg._reconstructor": _call_reconstructor,
    "copyreg.__newobj__": _call_newobj,
    "copyreg.__newobj_ex__": _call_newobj_ex,
}


# Calling an object made by one of these (attrgetter('system')(os) ...).
def _apply_attrgetter(
    m: _Machine, getter: CallResult, args: Args, kwargs: Kwargs, expr: CallResult
) -> Any:
    if len(args) != 1 or not all(isinstance(a, str) for a in getter.args):
        return Unknown("attrgetter on computed names")
    results = []
    for dotted in getter.args:
        value = args[0]
        for part in dotted.split("."):
            value = m._record_reached(attribute(value, part, expr))
        results.append(value)
    return results[0] if len(results) == 1 else Seq("tuple", results)


def _apply_methodcaller(
    m: _Machine, caller: CallResult, args: Args, kwargs: Kwargs, expr: CallResult
) -> Any:
    if len(args) != 1 or not caller.args or not isinstance(caller.args[0], str):
        return Unknown("methodcaller on a computed name")
    method = m._record_reached(attribute(args[0], caller.args[0]))
    return m._call(method, tuple(caller.args[1:]), dict(caller.kwargs), expr)


def _apply_itemgetter(
    m: _Machine, getter: CallResult, args: Args, kwargs: Kwargs, expr: CallResult
) -> Any:
    if len(args) != 1 or len(getter.args) != 1:
        return Unknown("itemgetter of several items")
    return m._record_reached(item(args[0], getter.args[0], expr))


_INSTANCE_CALLS: dict[str, Callable[[_Machine, CallResult, Args, Kwargs, CallResult], Any]] = {
    f"{module}.{name}": handler
    for module in ("operator", "_operator")
    for name, handler in (
        ("attrgetter", _apply_attrgetter),
        ("methodcaller", _apply_methodcaller),
        ("itemgetter", _apply_itemgetter),
    )
}


def analyze_pickle_file(path: str, limits: PickleLimits | None = None) -> PickleView:
    """Analyse a file on disk, streaming it."""
    with open(path, "rb") as handle:
        return analyze_pickle(handle, limits)
