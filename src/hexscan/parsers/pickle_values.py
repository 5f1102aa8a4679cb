"""Symbolic values of the pickle machine and how they print (names, attributes and constant
folds on them are in ``pickle_folds``).

Nothing here imports or calls what a pickle names. A global is only ever a :class:`Ref` (module
and qualified name); calling something yields a :class:`CallResult` that remembers the call.

Containers keep only a bounded sample of their items plus an exact count: a 5-million-float
list costs a few hundred objects, not 5 million.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Args = tuple[Any, ...]
Kwargs = dict[str, Any]

LITERAL_CHARS = 48
"""Literals longer than this are cut in rendered expressions."""
EXPR_CHARS = 400
"""Rendered expressions longer than this are cut."""
RENDER_DEPTH = 6
RENDER_ITEMS = 4


class Ref:
    """A global object: ``module`` plus dotted ``qualname`` (empty for the module itself).

    ``origin`` is the call that produced the reference when it was computed (``getattr``,
    ``__import__`` ...), so expressions show how it was reached. It takes no part in equality.
    """

    __slots__ = ("module", "qualname", "origin")

    def __init__(self, module: str, qualname: str = "", origin: Any = None) -> None:
        self.module = module
        self.qualname = qualname
        self.origin = origin

    @property
    def full(self) -> str:
        return f"{self.module}.{self.qualname}" if self.qualname else self.module

    def child(self, name: str, origin: Any = None) -> Ref:
        return Ref(self.module, f"{self.qualname}.{name}" if self.qualname else name, origin)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and (self.module, self.qualname) == (
            other.module,
            other.qualname,
        )

    def __hash__(self) -> int:
        return hash((self.module, self.qualname))

    def __repr__(self) -> str:
        return f"Ref({self.module!r}, {self.qualname!r})"


class CallResult:
    """What calling ``callee`` returns; also the object that later BUILD/SETITEM opcodes act on.

    ``kind`` is ``"call"`` (REDUCE, INST/OBJ with arguments, ``__setstate__``) or ``"new"``
    (NEWOBJ style: only ``cls.__new__`` runs). ``attrs`` holds attributes set by BUILD, so that
    a ``__setstate__`` planted in an instance dict is seen when a later BUILD calls it.
    """

    __slots__ = ("callee", "args", "kwargs", "kind", "attrs")

    def __init__(
        self, callee: Any, args: Args = (), kwargs: Kwargs | None = None, kind: str = "call"
    ) -> None:
        self.callee = callee
        self.args = args
        self.kwargs = kwargs or {}
        self.kind = kind
        self.attrs: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"CallResult({render(self)})"


class Attr:
    """Attribute ``name`` of a value that is not a global (an instance or a constant)."""

    __slots__ = ("obj", "name", "origin")

    def __init__(self, obj: Any, name: str, origin: Any = None) -> None:
        self.obj = obj
        self.name = name
        self.origin = origin


class Partial:
    """A ``functools.partial`` object: calling it calls ``func`` with ``args`` first."""

    __slots__ = ("func", "args", "kwargs", "origin")

    def __init__(self, func: Any, args: Args, kwargs: Kwargs, origin: Any = None) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.origin = origin


class Persistent:
    """The object a loader's ``persistent_load`` returns for ``pid`` (torch: a storage)."""

    __slots__ = ("pid",)

    def __init__(self, pid: Any) -> None:
        self.pid = pid


class Unknown:
    """A value the machine cannot know statically (e.g. a fold it refused to do)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class UnknownExtension:
    """An EXT1/2/4 code that the (default, empty) copyreg extension registry does not know."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


class Blob:
    """A str/bytes value larger than the keep limit: its size and first bytes only."""

    __slots__ = ("kind", "size", "head")

    def __init__(self, kind: str, size: int, head: bytes) -> None:
        self.kind = kind
        self.size = size
        self.head = head


class Buffer:
    """An out-of-band buffer (NEXT_BUFFER): data the caller supplies, not the stream."""

    __slots__ = ("readonly",)

    def __init__(self) -> None:
        self.readonly = False


class Seq:
    """A list/tuple/set/frozenset: the first ``cap`` items and the exact ``count``."""

    __slots__ = ("kind", "items", "count")

    def __init__(self, kind: str, items: list[Any] | None = None, count: int | None = None) -> None:
        self.kind = kind
        self.items = items if items is not None else []
        self.count = len(self.items) if count is None else count

    @classmethod
    def capped(cls, kind: str, items: list[Any], cap: int) -> Seq:
        return cls(kind, items[:cap] if len(items) > cap else items, len(items))

    def extend(self, items: list[Any], cap: int) -> None:
        room = cap - len(self.items)
        if room > 0:
            self.items.extend(items[:room] if len(items) > room else items)
        self.count += len(items)

    @property
    def complete(self) -> bool:
        return len(self.items) == self.count


class Map:
    """A dict: the first ``cap`` (key, value) pairs and the exact number of SETITEM stores."""

    __slots__ = ("items", "count", "computed_kept")

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any]] = []
        self.count = 0
        self.computed_kept = 0
        """Pairs past the cap with a computed key and a non-constant value."""

    def store(self, pairs: list[tuple[Any, Any]], cap: int) -> None:
        room = max(cap - len(self.items), 0)
        self.items.extend(pairs[:room])
        rest = pairs[room:]
        if rest:  # past the cap, keep what the unpickler may call (one cheap pass over the rest)
            self._keep_callable(
                [p for p in rest if type(p[0]) not in _PLAIN_KEYS or p[0] in PROTOCOL_METHODS],
                cap,
            )
        self.count += len(pairs)

    def _keep_callable(self, pairs: list[tuple[Any, Any]], cap: int) -> None:
        for key, value in pairs:
            if isinstance(key, str) and key in PROTOCOL_METHODS:
                self.items.append((key, value))
                if len(self.items) > cap + 4 * len(PROTOCOL_METHODS):
                    self.items = self.items[:cap] + _last_per_key(self.items[cap:])
            elif may_be_name(key) and may_be_callable(value):
                if self.computed_kept < MAX_COMPUTED_KEYS:
                    self.items.append((key, value))
                self.computed_kept += 1  # past MAX_COMPUTED_KEYS, BUILD reports a limit

    def lookup(self, key: Any) -> Any:
        """The last value stored under constant ``key`` in the kept pairs (``_MISSING`` if none)."""
        found: Any = _MISSING
        for k, v in self.items:
            if is_const(k) and k == key:
                found = v
        return found


def _last_per_key(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    return list({key: (key, value) for key, value in pairs}.values())


PROTOCOL_METHODS = frozenset({"__setstate__", "append", "extend", "add", "__setitem__"})
"""Names the unpickler looks up on objects it builds (BUILD, APPEND(S), ADDITEMS, SETITEM(S)):
never dropped from a dict state or an object's attributes, whatever their size."""

_PLAIN_KEYS = frozenset({str, int, float, bytes, bool, type(None)})
"""Key types that are never a computed name (a plain str key is checked against the names)."""
COMPUTED_NAME = "\0computed"
"""Key of ``CallResult.attrs`` holding values stored under computed names (no str has a NUL
in a real attribute name reached by the unpickler)."""
MAX_COMPUTED_KEYS = 16
"""State entries under a computed (non-constant) key kept per object: such a key may turn out to
be any name, so its value is treated as planted under every name the unpickler calls."""

_MISSING = object()
CONST_TYPES = (str, bytes, int, float, complex, bool, type(None))


def is_const(value: Any) -> bool:
    return isinstance(value, CONST_TYPES)


def may_be_name(key: Any) -> bool:
    """A computed key that may equal an attribute name at load time (a str subclass, a global
    that is a str ...); constants, tuples and dicts never do."""
    return isinstance(key, (Ref, CallResult, Attr, Unknown, Persistent))


def may_be_callable(value: Any) -> bool:
    """A value the unpickler could call: not a constant or a plain container."""
    return not (is_const(value) or isinstance(value, (Seq, Map, Blob, bytearray)))


# ---------------------------------------------------------------------------- rendering


def _cut(text: str, limit: int = LITERAL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _literal(value: Any) -> str:
    if isinstance(value, (str, bytes)) and len(value) > LITERAL_CHARS:
        return repr(value[:LITERAL_CHARS]) + f"...<{len(value)}>"
    return _cut(repr(value), LITERAL_CHARS * 2)


def render(value: Any, depth: int = 0) -> str:
    """A short, Python-like expression for ``value`` (what the unpickler would evaluate)."""
    text = _render(value, depth)
    return _cut(text, EXPR_CHARS) if depth == 0 else text


def _render(value: Any, depth: int) -> str:
    if depth > RENDER_DEPTH:
        return "..."
    if is_const(value) or isinstance(value, bytearray):
        return _literal(value)
    renderer = _RENDERERS.get(type(value))
    return renderer(value, depth + 1) if renderer else f"<{type(value).__name__}>"


def _render_args(args: Args, kwargs: Kwargs, depth: int) -> str:
    parts = [_render(a, depth) for a in args[: RENDER_ITEMS * 2]]
    if len(args) > RENDER_ITEMS * 2:
        parts.append("...")
    parts += [f"{k}={_render(v, depth)}" for k, v in list(kwargs.items())[:RENDER_ITEMS]]
    return ", ".join(parts)


def _render_ref(ref: Ref, depth: int) -> str:
    if ref.origin is not None:
        return _render(ref.origin, depth)
    return ref.qualname if ref.module in ("builtins", "__builtin__") and ref.qualname else ref.full


def _render_call(call: CallResult, depth: int) -> str:
    callee = _render(call.callee, depth)
    if call.kind == "new":
        inner = _render_args((call.callee, *call.args), call.kwargs, depth)
        return f"{callee}.__new__({inner})"
    return f"{callee}({_render_args(call.args, call.kwargs, depth)})"


def _render_attr(attr: Attr, depth: int) -> str:
    if attr.origin is not None:
        return _render(attr.origin, depth)
    return f"{_render(attr.obj, depth)}.{attr.name}"


def _render_partial(part: Partial, depth: int) -> str:
    if part.origin is not None:
        return _render(part.origin, depth)
    return f"functools.partial({_render_args((part.func, *part.args), part.kwargs, depth)})"


def _render_seq(seq: Seq, depth: int) -> str:
    shown = [_render(v, depth) for v in seq.items[:RENDER_ITEMS]]
    if seq.count > len(shown):
        shown.append(f"...<{seq.count} items>")
    body = ", ".join(shown)
    if seq.kind == "tuple":
        return f"({body},)" if seq.count == 1 else f"({body})"
    if seq.kind == "list":
        return f"[{body}]"
    return f"{seq.kind}({{{body}}})"


def _render_map(mapping: Map, depth: int) -> str:
    shown = [f"{_render(k, depth)}: {_render(v, depth)}" for k, v in mapping.items[:RENDER_ITEMS]]
    if mapping.count > len(shown):
        shown.append(f"...<{mapping.count} items>")
    return "{" + ", ".join(shown) + "}"


_RENDERERS: dict[type, Callable[[Any, int], str]] = {
    Ref: _render_ref,
    CallResult: _render_call,
    Attr: _render_attr,
    Partial: _render_partial,
    Seq: _render_seq,
    Map: _render_map,
    Persistent: lambda v, d: f"persistent_load({_render(v.pid, d)})",
    Unknown: lambda v, d: f"<unknown: {v.reason}>",
    UnknownExtension: lambda v, d: f"<unknown extension {v.code}>",
    Blob: lambda v, d: f"<{v.kind} of {v.size} bytes>",
    Buffer: lambda v, d: "<out-of-band buffer>",
}
