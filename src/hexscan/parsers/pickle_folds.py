"""Names, attributes and constant folding on the symbolic values of the pickle machine.

What ``getattr``/``obj[key]``/``__import__`` reach when a pickle computes a global, and the few
computations attackers use to build names at load time (``str.join``, ``operator.add``,
``codecs.decode``, base64 ...) redone with plain ``str``/``bytes`` operations on constants, so
that a name assembled at runtime is still recognised by the policy. Nothing here imports or
calls what a pickle names.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import operator
import zlib
from collections.abc import Callable
from typing import Any

from hexscan.parsers.pickle_values import (
    _MISSING,
    Args,
    Attr,
    Kwargs,
    Map,
    Partial,
    Ref,
    Seq,
    Unknown,
    is_const,
)

FOLD_MAX_LEN = 1 << 20
"""Longer folded results are dropped: a decompression or ``*`` bomb must not cost memory."""


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
