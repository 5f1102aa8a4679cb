"""The symbolic pickle machine: the driver loop, the state, and what globals and calls do.

One :class:`_Machine` runs over one reader: every stacked pickle stream in it, then the nested
pickles found in its constants. Opcode handlers come from ``pickle_opcodes``; call semantics
(getattr, __import__, trampolines ...) from ``pickle_calls``. It never raises on any input.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from hexscan.parsers.pickle_calls import (
    _CALL_SPECIALS,
    _INSTANCE_CALLS,
    _PARTIALS,
    _canonical,
    _root_ref,
    canonical_name,
    is_static_lookup,
)
from hexscan.parsers.pickle_folds import (
    NOT_FOLDED,
    attribute,
    fold_call,
    fold_method,
)
from hexscan.parsers.pickle_frames import _FrameRules
from hexscan.parsers.pickle_nested import _NestedPickles
from hexscan.parsers.pickle_opcodes import _OpcodeHandlers
from hexscan.parsers.pickle_reader import (
    _OPNAMES,
    _Budget,
    _Limit,
    _Malformed,
    _Reader,
    _Truncated,
)
from hexscan.parsers.pickle_state import _ObjectState
from hexscan.parsers.pickle_values import (
    Args,
    Attr,
    Blob,
    CallResult,
    Kwargs,
    Partial,
    Ref,
    is_const,
    render,
)
from hexscan.parsers.pickle_view import (
    GlobalUse,
    LimitHit,
    Malformation,
    NestedPickle,
    PickleLimits,
    PickleView,
    StreamInfo,
    TrailingData,
    _Records,
)


class _Machine(_OpcodeHandlers, _ObjectState, _FrameRules, _NestedPickles):
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
        self.frame_end = -1
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
        self.frame_end = -1
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
            containers=tuple(k.containers),
            opcode_count=sum(s.opcodes for s in k.streams),
            bytes_read=self.r.offset,
            truncated_values=self.truncated_values,
        )

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
        start = self.r.offset
        data = self.r.take(size)
        if start < self.frame_end < start + size:
            self._frame_overrun(start, data)
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

    def _record(self, value: Any, use: str, expression: Any = None) -> None:
        """Count a use of the global behind ``value``; ``expression`` (text, or a value rendered
        only for the first record of that global and use) says how it was used."""
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
            expression=render(value if expression is None else expression)
            if not isinstance(expression, str) else expression,
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
        name = _canonical(_root_ref(func))
        if use == "called" and is_static_lookup(name, args, kwargs):
            use = "resolved"
        self._record(func, use, expr)
        if isinstance(func, Attr) and is_const(func.obj):
            folded = fold_method(func.obj, func.name, args, kwargs)
            return expr if folded is NOT_FOLDED else self._note_folded(folded)
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

    def _construct(self, cls: Any, args: Args, kwargs: Kwargs) -> CallResult | Partial:
        """``cls.__new__(cls, *args)``: the object protocol (NEWOBJ, copyreg.__newobj__ ...)."""
        expr = CallResult(cls, args, kwargs, kind="new")
        self._record(cls, "constructed", render(expr))
        if args and _canonical(_root_ref(cls)) in _PARTIALS:  # partial.__new__(partial, f, *a)
            return Partial(args[0], args[1:], dict(kwargs), expr)
        return expr

    def _instantiate(self, cls: Any, args: list[Any]) -> Any:
        """INST/OBJ: ``cls(*args)``, or only ``cls.__new__`` with no args when cls is a class."""
        looks_like_class = isinstance(cls, Ref) and cls.qualname.rpartition(".")[2][:1].isupper()
        if args or not looks_like_class:
            return self._call(cls, tuple(args), {})
        return self._construct(cls, (), {})
