"""Symbolic values of the pickle machine, how they print, and the pure folds applied to them.

Nothing here imports or calls what a pickle names. A global is only ever a :class:`Ref` (module
and qualified name); calling something yields a :class:`CallResult` that remembers the call. The
few computations attackers use to build names at load time (``str.join``, ``operator.add``,
``codecs.decode``, base64 ...) are redone here with plain ``str``/``bytes`` operations on
constants, so that a name assembled at runtime is still recognised by the policy.

Containers keep only a bounded sample of their items plus an exact count: a 5-million-float
list costs a few hundred objects, not 5 million.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import operator
import zlib
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
FOLD_MAX_LEN = 1 << 20
"""Longer folded results are dropped: a decompression or ``*`` bomb must not cost memory."""


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

    __slots__ = ("items", "count")

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any]] = []
        self.count = 0

    def store(self, pairs: list[tuple[Any, Any]], cap: int) -> None:
        room = max(cap - len(self.items), 0)
        self.items.extend(pairs[:room])
        for key, value in pairs[room:]:  # past the cap, keep what the unpickler will call
            if isinstance(key, str) and key in PROTOCOL_METHODS:
                self.items.append((key, value))
                if len(self.items) > cap + 4 * len(PROTOCOL_METHODS):
                    self.items = self.items[:cap] + _last_per_key(self.items[cap:])
        self.count += len(pairs)

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

_MISSING = object()
CONST_TYPES = (str, bytes, int, float, complex, bool, type(None))


def is_const(value: Any) -> bool:
    return isinstance(value, CONST_TYPES)


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


# ---------------------------------------------------------------------------- names and attributes


def split_dotted(name: str) -> Ref:
    """``'os.system'`` / ``'os:system'`` -> Ref('os', 'system') (pydoc.locate, resolve_name)."""
    if ":" in name:
        module, _, qualname = name.partition(":")
        return Ref(module, qualname)
    module, _, qualname = name.rpartition(".")
    return Ref(module, qualname) if module else Ref(name)


def attribute(obj: Any, name: str, origin: Any = None) -> Any:
    """What ``getattr(obj, name)`` reaches, symbolically.

    A few attributes lead somewhere fixed and are followed: ``f.__self__`` of a module-level
    builtin function is its module, ``x.__builtins__`` is the builtins module, ``__globals__``
    and ``__dict__`` give the namespace (then subscripted via :func:`item`).
    """
    if isinstance(obj, Ref):
        return _ref_attribute(obj, name, origin)
    if isinstance(obj, Partial) and name == "func":
        return obj.func
    return Attr(obj, name, origin)


def _ref_attribute(ref: Ref, name: str, origin: Any) -> Any:
    if name == "__builtins__":
        return Ref("builtins", "", origin)
    if name == "__self__" and ref.qualname and "." not in ref.qualname:
        return Ref(ref.module, "", origin)
    if name == "__globals__" and ref.qualname:
        return Ref(ref.module, "__dict__", origin)
    if name == "__module__":
        return ref.module
    if name == "__call__":
        return Ref(ref.module, ref.qualname, origin)  # f.__call__(...) is f(...)
    return ref.child(name, origin)


def item(obj: Any, key: Any, origin: Any = None) -> Any:
    """What ``obj[key]`` reaches: namespace lookups become globals, constants are folded."""
    if isinstance(obj, Ref) and isinstance(key, str):
        if obj.full == "sys.modules":
            return Ref(key, "", origin)
        if obj.qualname == "__dict__" or obj.qualname.endswith(".__dict__"):
            base = obj.qualname[: -len("__dict__")].rstrip(".")
            return Ref(obj.module, f"{base}.{key}" if base else key, origin)
    if isinstance(obj, Map) and is_const(key):
        found = obj.lookup(key)
        if found is not _MISSING:
            return found
    folded = fold_call("operator.getitem", (obj, key), {})
    return folded if folded is not NOT_FOLDED else Unknown("item of a runtime value")


def imported_module(name: Any, fromlist: Any = None, origin: Any = None) -> Any:
    """What ``__import__(name, ..., fromlist)`` returns: the top package unless fromlist."""
    if not isinstance(name, str):
        return Unknown("import of a computed name")
    has_fromlist = bool(fromlist.count if isinstance(fromlist, Seq) else fromlist)
    return Ref(name if has_fromlist else name.split(".")[0], "", origin)


# ---------------------------------------------------------------------------- constant folding

NOT_FOLDED = object()


class _NotConst(Exception):
    """A value that cannot take part in a fold."""


def as_python(value: Any) -> Any:
    """The plain Python constant behind ``value``, or raise _NotConst."""
    if is_const(value):
        return value
    if isinstance(value, Seq) and value.complete and value.kind in ("list", "tuple"):
        items = [as_python(v) for v in value.items]
        return tuple(items) if value.kind == "tuple" else items
    if isinstance(value, Seq) and value.complete and value.kind in ("set", "frozenset"):
        return frozenset(as_python(v) for v in value.items)
    raise _NotConst


def from_python(value: Any) -> Any:
    """Back from a folded Python result to a machine value; oversized results are refused."""
    if isinstance(value, bytearray):
        value = bytes(value)
    if isinstance(value, (str, bytes)) and len(value) > FOLD_MAX_LEN:
        return NOT_FOLDED
    if is_const(value):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= FOLD_MAX_LEN:
        items = [from_python(v) for v in value]
        if any(v is NOT_FOLDED for v in items):
            return NOT_FOLDED
        return Seq("tuple" if isinstance(value, tuple) else "list", items)
    return NOT_FOLDED


SAFE_CODECS = frozenset(
    {
        "utf-8",
        "utf8",
        "utf_8",
        "latin1",
        "latin-1",
        "latin_1",
        "iso-8859-1",
        "iso8859-1",
        "ascii",
        "us-ascii",
        "cp1252",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "utf-32",
        "base64",
        "base_64",
        "base64_codec",
        "hex",
        "hex_codec",
        "rot13",
        "rot_13",
        "unicode_escape",
        "raw_unicode_escape",
        "bytes",
    }
)
"""Codecs that are pure and bounded (no zlib/bz2 through ``codecs``: unbounded output)."""


def _codec(data: Any, encoding: str = "utf-8", errors: str = "strict", *, decode: bool) -> Any:
    if not isinstance(encoding, str) or encoding.lower() not in SAFE_CODECS:
        raise _NotConst
    if encoding.lower() == "bytes":
        raise _NotConst
    return (
        codecs.decode(data, encoding, errors) if decode else codecs.encode(data, encoding, errors)
    )


def _bounded_inflate(data: bytes, *args: Any) -> bytes:
    inflater = zlib.decompressobj(*args)
    out = inflater.decompress(data, FOLD_MAX_LEN + 1)
    if len(out) > FOLD_MAX_LEN:
        raise _NotConst
    return out


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, (str, bytes, list, tuple)):
        a, b = b, a
    if isinstance(b, int) and hasattr(a, "__len__") and len(a) * max(b, 0) > FOLD_MAX_LEN:
        raise _NotConst
    return operator.mul(a, b)


def _to_str(obj: Any = "", encoding: str | None = None, errors: str = "strict") -> str:
    if encoding is None:
        if not isinstance(obj, (str, int, float)):
            raise _NotConst
        return str(obj)
    return str(_codec(obj, encoding, errors, decode=True))


def _to_bytes(obj: Any = b"", encoding: str | None = None, errors: str = "strict") -> bytes:
    if isinstance(obj, str):
        return bytes(_codec(obj, encoding or "utf-8", errors, decode=False))
    if isinstance(obj, int) and obj > FOLD_MAX_LEN:
        raise _NotConst
    return bytes(obj)


_FUNCTION_FOLDS: dict[str, Callable[..., Any]] = {
    "operator.add": operator.add,
    "operator.concat": operator.concat,
    "operator.mul": _mul,
    "operator.getitem": operator.getitem,
    "builtins.reversed": lambda seq: list(reversed(seq)),
    "builtins.chr": chr,
    "builtins.str": _to_str,
    "builtins.bytes": _to_bytes,
    "builtins.bytearray": _to_bytes,
    "builtins.bytes.fromhex": bytes.fromhex,
    "builtins.bytearray.fromhex": bytes.fromhex,
    "codecs.decode": lambda d, e="utf-8", r="strict": _codec(d, e, r, decode=True),
    "codecs.encode": lambda d, e="utf-8", r="strict": _codec(d, e, r, decode=False),
    "base64.b64decode": base64.b64decode,
    "base64.standard_b64decode": base64.standard_b64decode,
    "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.decodebytes": base64.decodebytes,
    "base64.b32decode": base64.b32decode,
    "base64.b16decode": base64.b16decode,
    "base64.b85decode": base64.b85decode,
    "base64.a85decode": base64.a85decode,
    "base64.b64encode": base64.b64encode,
    "binascii.unhexlify": binascii.unhexlify,
    "binascii.a2b_hex": binascii.a2b_hex,
    "binascii.a2b_base64": binascii.a2b_base64,
    "zlib.decompress": _bounded_inflate,
}
_ALIASES = {"_operator": "operator", "_codecs": "codecs", "__builtin__": "builtins"}

SAFE_METHODS = frozenset(
    {
        "join",
        "replace",
        "upper",
        "lower",
        "strip",
        "lstrip",
        "rstrip",
        "swapcase",
        "title",
        "capitalize",
        "casefold",
        "removeprefix",
        "removesuffix",
        "split",
        "rsplit",
        "partition",
        "rpartition",
        "zfill",
        "decode",
        "encode",
        "__add__",
        "__getitem__",
        "__mul__",
        "__mod__",
        "__radd__",
        "format",
    }
)
"""str/bytes methods that only compute a new value from their inputs."""


def fold_call(name: str, args: Args, kwargs: Kwargs) -> Any:
    """Redo the pure call ``name(*args, **kwargs)`` on constants, or return ``NOT_FOLDED``."""
    module, _, rest = name.partition(".")
    name = f"{_ALIASES.get(module, module)}.{rest}"
    func = _FUNCTION_FOLDS.get(name)
    if func is None:
        kind, _, method = rest.partition(".")
        if module in ("builtins", "__builtin__") and kind in ("str", "bytes") and args:
            return fold_method(args[0], method, args[1:], kwargs)
        return NOT_FOLDED
    return _apply_fold(func, args, kwargs)


def fold_method(obj: Any, method: str, args: Args, kwargs: Kwargs | None = None) -> Any:
    """Redo ``obj.method(*args)`` for a constant str/bytes ``obj`` and a pure method."""
    if method not in SAFE_METHODS or not isinstance(obj, (str, bytes)):
        return NOT_FOLDED
    if method == "format" and any(not is_const(a) for a in args):
        return NOT_FOLDED  # '{0.__class__}'.format(x) walks attributes of x
    if method == "__mul__":
        return _apply_fold(_mul, (obj, *args), kwargs or {})
    if method in ("encode", "decode"):
        return _apply_fold(
            lambda e="utf-8", r="strict": _codec(obj, e, r, decode=method == "decode"),
            args,
            kwargs or {},
        )
    return _apply_fold(getattr(obj, method), args, kwargs or {})


def _apply_fold(func: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
    try:
        plain_args = [as_python(a) for a in args]
        plain_kwargs = {k: as_python(v) for k, v in kwargs.items()}
        if any(isinstance(a, (str, bytes)) and len(a) > FOLD_MAX_LEN for a in plain_args):
            return NOT_FOLDED
        return from_python(func(*plain_args, **plain_kwargs))
    except Exception:  # noqa: BLE001 - any failure just means "not folded": the call stays symbolic
        return NOT_FOLDED
