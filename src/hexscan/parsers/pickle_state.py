"""What BUILD, SETITEM(S) and APPEND(S) do to symbolic objects (mixed into ``_Machine``).

These opcodes are where payloads hide effects that are not calls: a ``__setstate__`` planted in
an instance dict and called by the next BUILD, attributes written onto a module or class so that
a later GLOBAL of that name returns the attacker's value (modelscan #85), items stored into a
module ``__dict__``, and joblib's arrays whose bytes (or, for object arrays, a whole inline
pickle) follow the wrapper's BUILD in the file.
"""

from __future__ import annotations

from typing import Any

from hexscan.parsers.pickle_arrays import _JOBLIB_WRAPPERS, _dtype_itemsize, _shape_count
from hexscan.parsers.pickle_calls import (
    _as_args,
    _as_kwargs,
    _root_ref,
    _state_items,
)
from hexscan.parsers.pickle_exec_state import foreign_exec_state
from hexscan.parsers.pickle_folds import (
    attribute,
)
from hexscan.parsers.pickle_reader import _Limit, _Malformed
from hexscan.parsers.pickle_values import (
    COMPUTED_NAME,
    MAX_COMPUTED_KEYS,
    PROTOCOL_METHODS,
    CallResult,
    Map,
    Partial,
    Ref,
    Seq,
    Unknown,
    is_const,
    may_be_callable,
    may_be_name,
    render,
)


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
        planted = self._planted(inst, "__setstate__")
        if planted:
            for setstate in planted:
                self._call(setstate, (state,), {})
            return
        if isinstance(inst, CallResult) and _root_ref(inst.callee).full in _JOBLIB_WRAPPERS:
            self._joblib_array(state)
        if isinstance(inst, Partial):
            self._set_partial_state(inst, state)
            return
        if isinstance(inst, CallResult) and not isinstance(state, Map):
            inst.attrs.setdefault("__state__", state)
        if isinstance(inst, CallResult):
            code = foreign_exec_state(_root_ref(inst.callee).full, _state_items(state))
            if code is not None:  # the class's own __setstate__ runs exec(code)
                self._call(Ref("builtins", "exec"), (code,), {})
        self._apply_state(inst, state)

    def _apply_state(self, inst: Any, state: Any) -> None:
        """``inst.__dict__.update(state)`` / setattr per slot-state item (BUILD without a
        ``__setstate__``, torch's ``_set_obj_state``)."""
        for key, value in _state_items(state):
            if isinstance(inst, Ref):
                self._mutate(inst, key, value)
            elif isinstance(inst, CallResult) and (
                len(inst.attrs) < self.limits.max_kept_items
                or key in PROTOCOL_METHODS
                or key in inst.attrs
            ):
                inst.attrs[key] = value  # past the cap, the names the unpickler calls are kept
        self._computed_names(inst, state)

    def _computed_names(self, inst: Any, state: Any) -> None:
        """State entries whose name is computed at load time (``numpy.str_('append')`` hashes
        and compares like ``'append'``): their values count as planted under every name."""
        parts = list(state.items) if isinstance(state, Seq) and state.kind == "tuple" else [state]
        for part in parts:
            if not isinstance(part, Map):
                continue
            if part.computed_kept > MAX_COMPUTED_KEYS:
                raise _Limit("max_kept_items", "too many state entries under computed names")
            for key, value in part.items:
                if not (may_be_name(key) and may_be_callable(value)):
                    continue
                if isinstance(inst, Ref):
                    self._record(inst, "mutated", f"setattr({render(inst)}, {render(key)}, "
                                 f"{render(value)})")
                elif isinstance(inst, CallResult):
                    computed = inst.attrs.setdefault(COMPUTED_NAME, [])
                    if len(computed) >= MAX_COMPUTED_KEYS:
                        raise _Limit("max_kept_items", "too many attributes under computed names")
                    computed.append(value)

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
                part.args = _as_args(state.items[1])
            if len(state.items) > 2 and isinstance(state.items[2], Map):
                part.kwargs = _as_kwargs(state.items[2])
            part.origin = None

    def _mutate(self, target: Ref, key: str, value: Any) -> None:
        """``setattr(module_or_class, key, value)``: later imports of that name see ``value``."""
        self._record(target, "mutated", f"setattr({render(target)}, {key!r}, {render(value)})")
        self.overlay[target.child(key).full] = value

    def _store_items(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        """SETITEM(S): ``target[key] = value``, i.e. ``type(target).__setitem__`` for any object."""
        if isinstance(target, Map):
            target.store(pairs, self.limits.max_kept_items)
            return
        if isinstance(target, Seq) and target.kind == "list":
            self._set_list_items(target, pairs)
            return
        if is_const(target) or isinstance(target, Seq):
            raise _Malformed(f"cannot set items on {type(target).__name__}")
        if not isinstance(target, Ref):  # one record per opcode unless something was planted
            planted = bool(self._planted(target, "__setitem__"))
            for key, value in pairs if planted else pairs[:1]:
                self._protocol_call(target, "__setitem__", (key, value))
            return
        for key, value in pairs:
            if target.qualname.endswith("__dict__") and isinstance(key, str):
                namespace = Ref(target.module, target.qualname[: -len("__dict__")].rstrip("."))
                self._mutate(namespace, key, value)
                continue
            expression = f"{render(target)}[{render(key)}] = {render(value)}"
            self._record(target, "mutated", expression)
            self._protocol_call(target, "__setitem__", (key, value))

    def _set_list_items(self, target: Seq, pairs: list[tuple[Any, Any]]) -> None:
        """``a_list[i] = v`` works in both unpicklers for an index in range."""
        for key, value in pairs:
            if not isinstance(key, int) or not -target.count <= key < target.count:
                raise _Malformed("list assignment index out of range or not an int")
            index = key % target.count
            if index < len(target.items):
                target.items[index] = value

    def _append(self, target: Any, items: list[Any], *, single: bool = False) -> None:
        """APPEND/APPENDS: ``extend(items)`` if the object has it, else ``append`` per item.

        ``pickle.py``'s APPEND calls ``append(x)``; ``_pickle.c``'s calls ``extend([x])`` when an
        ``extend`` exists. On anything but a list these are calls of whatever the object (or a
        value planted on it or its class) holds under those names, so both are recorded.
        """
        if isinstance(target, Seq) and target.kind == "list":
            target.extend(items, self.limits.max_kept_items)
            return
        if is_const(target) or isinstance(target, (Seq, Map)):
            raise _Malformed(f"cannot append to {type(target).__name__}")
        listed = Seq.capped("list", items, self.limits.max_kept_items)
        if isinstance(target, Ref):
            shown = render(Seq.capped("list", items, 4))
            self._record(target, "mutated", f"{render(target)}.extend({shown})")
        first = items[0] if items else Unknown("no item")
        if single:
            self._protocol_call(target, "append", (first,))
            if self._planted(target, "extend"):
                self._protocol_call(target, "extend", (listed,))
            return
        self._protocol_call(target, "extend", (listed,))
        if self._planted(target, "append"):
            self._protocol_call(target, "append", (first,))

    def _add_items(self, target: Any, items: list[Any]) -> None:
        """ADDITEMS: ``set.update`` on a set, ``target.add(x)`` per item on anything else."""
        if isinstance(target, Seq) and target.kind == "set":
            target.extend(items, self.limits.max_kept_items)
            return
        if is_const(target) or isinstance(target, (Seq, Map)):
            raise _Malformed(f"cannot add items to {type(target).__name__}")
        if isinstance(target, Ref):
            self._record(target, "mutated", f"{render(target)}.add(...)")
        self._protocol_call(target, "add", (items[0] if items else Unknown("no item"),))

    def _planted(self, target: Any, method: str) -> list[Any]:
        """Values stored under ``method`` on the object (BUILD of its dict, also under a computed
        name) or on its class (setattr, BUILD of a class or module): what
        ``getattr(target, method)`` may find before the type's own method."""
        if isinstance(target, CallResult):
            planted = target.attrs.get(method)
            if planted is not None:
                return [planted]
            computed = list(target.attrs.get(COMPUTED_NAME, ()))
            target = target.callee
        else:
            computed = []
        if isinstance(target, Ref):
            overlaid = self.overlay.get(target.child(method).full)
            if overlaid is not None:
                return [overlaid]
        return computed

    def _protocol_call(self, target: Any, method: str, args: tuple[Any, ...]) -> None:
        """A method the unpickler itself calls on an object the pickle built. A planted value is
        called like any callee; otherwise the call is recorded as ``<type>.<method>``."""
        for callee in self._planted(target, method) or [attribute(target, method)]:
            self._call(callee, args, {})
