"""Call semantics of the pickle machine: how a call reaches other globals.

Most calls are only recorded. The ones here have known effects that payloads use to hide what
they run: ``getattr``/``__import__``/``importlib``/``pkgutil.resolve_name`` reach a global by
name, ``functools.partial`` and ``operator.*getter/methodcaller`` defer a call, and the
*trampolines* are allow-listed rebuild helpers that themselves call one of their arguments. Each
handler records the inner call as if the pickle made it, so an allowed function cannot launder
an arbitrary callable.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hexscan.parsers.pickle_folds import (
    attribute,
    imported_module,
    item,
    split_dotted,
)
from hexscan.parsers.pickle_values import (
    Args,
    Attr,
    CallResult,
    Kwargs,
    Map,
    Partial,
    Ref,
    Seq,
    Unknown,
    UnknownExtension,
    is_const,
    render,
)

if TYPE_CHECKING:
    from hexscan.parsers.pickle_machine import _Machine

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


_STATIC_LOOKUPS = frozenset({"builtins.getattr"})


def is_static_lookup(name: str, args: Args, kwargs: Kwargs) -> bool:
    """Whether a call of ``name`` is a ``getattr`` whose object and name are known statically.

    CPython pickles some values as ``getattr(obj, 'name')`` (a zoneinfo zone in protocols < 4,
    a method pickled by reference): the lookup reaches one known global,
    which is recorded and judged on its own, so the lookup itself is not the risk. An object that
    resolves to no known global, or a computed name, keeps the call an ordinary (dangerous) one.
    """
    return (
        name in _STATIC_LOOKUPS
        and not kwargs
        and len(args) in (2, 3)
        and isinstance(args[1], str)
        and _root_ref(args[0]).module != "?"
    )


def legacy_module_class(pid: Any) -> Ref | None:
    """The class in a ``('module', cls, file, source)`` persistent id, else None.

    torch's legacy loader (files of ``torch.save`` before 1.6) answers such an id with the class
    itself; what the pickle then does with it is judged on that class, not on an opaque value.
    """
    if isinstance(pid, Seq) and len(pid.items) >= 2 and pid.items[0] == "module":
        cls = pid.items[1]
        return cls if isinstance(cls, Ref) else None
    return None


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


_PARTIALS = frozenset({"functools.partial", "_functools.partial"})


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
    "numpy.core._internal._reconstruct": _trampoline_new,  # numpy < 1.0 pickles
    "numpy._core.multiarray._reconstruct": _trampoline_new,
    "numpy.random._pickle.__randomstate_ctor": _trampoline_call(1, 0),
    "numpy.random._pickle.__generator_ctor": _trampoline_call(1, 0),
    "numpy.random._pickle.__bit_generator_ctor": _trampoline_call(0, None),
    "sklearn.neighbors._kd_tree.newObj": _trampoline_new,
    "sklearn.neighbors._ball_tree.newObj": _trampoline_new,
    "sklearn.neighbors._binary_tree.newObj": _trampoline_new,
    "pandas.core.indexes.base._new_Index": _trampoline_new,
    "dateutil.tz._tzfile._unpickle": _trampoline_new,  # (cls, key, ...): cls.__new__(cls)
}


def _call_load_from_bytes(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    """torch.storage._load_from_bytes(b) is torch.load of BytesIO(b) with weights_only=False
    (how plain pickle stores a tensor): constant bytes are scanned as a nested pickle; anything
    else is recorded as the torch.load call it is. What it returns is whatever that pickle
    built, so methods the unpickler later calls on it are calls of an unknown object."""
    data = _arg(args, kwargs, 0, "b")
    if isinstance(data, bytes):
        m._force_nested(data)
    else:
        m._call(Ref("torch", "load"), (data,), {"weights_only": False})
    return Unknown("the object an embedded pickle returns")


def _call_set_obj_state(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    """torch._utils._set_obj_state(obj, state): setattr per state item, then returns ``obj``, so
    a name planted there is seen by the calls the unpickler later makes on it."""
    if len(args) != 2:
        return None
    m._apply_state(args[0], args[1])
    return args[0]


def _call_identity(m: _Machine, args: Args, kwargs: Kwargs, expr: CallResult) -> Any:
    """Allowed helpers that return their first argument (torch/jit/_pickle.py)."""
    return args[0] if args else None


_CALL_SPECIALS: dict[str, Callable[[_Machine, Args, Kwargs, CallResult], Any]] = {
    **_TRAMPOLINES,
    "torch._utils._set_obj_state": _call_set_obj_state,
    "torch.jit._pickle.restore_type_tag": _call_identity,
    "torch.jit._pickle.build_intlist": _call_identity,
    "torch.jit._pickle.build_tensorlist": _call_identity,
    "torch.jit._pickle.build_doublelist": _call_identity,
    "torch.jit._pickle.build_boollist": _call_identity,
    "torch.storage._load_from_bytes": _call_load_from_bytes,
    "builtins.getattr": _call_getattr,
    "builtins.__import__": _call_import,
    "importlib.__import__": _call_import,
    "importlib.import_module": _call_import_module,
    # the import machinery's own entry points (what importlib.import_module calls)
    "importlib._bootstrap._gcd_import": _call_import_module,
    "_frozen_importlib._gcd_import": _call_import_module,
    "importlib._bootstrap.__import__": _call_import,
    "_frozen_importlib.__import__": _call_import,
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
