"""What BUILD, SETITEM(S) and APPEND(S) do to symbolic objects (mixed into ``_Machine``).

These opcodes are where payloads hide effects that are not calls: a ``__setstate__`` planted in
an instance dict and called by the next BUILD, attributes written onto a module or class so that
a later GLOBAL of that name returns the attacker's value (modelscan #85), items stored into a
module ``__dict__``, and joblib's arrays whose bytes (or, for object arrays, a whole inline
pickle) follow the wrapper's BUILD in the file.
"""

from __future__ import annotations

from typing import Any

from hexscan.parsers.pickle_calls import (
    _JOBLIB_WRAPPERS,
    _dtype_itemsize,
    _root_ref,
    _shape_count,
    _state_items,
)
from hexscan.parsers.pickle_reader import _Malformed
from hexscan.parsers.pickle_values import CallResult, Map, Partial, Ref, Seq, is_const, render


class _ObjectState:
    """BUILD / SETITEM / APPEND semantics; state and recording live in ``_Machine``."""

    r: Any
    limits: Any
    stack: list[Any]
    memo: dict[int, Any]
    metastack: list[list[Any]]
    overlay: dict[str, Any]

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
