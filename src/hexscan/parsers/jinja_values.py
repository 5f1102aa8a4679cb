"""Constant values of Jinja2 expressions: the string operations hex folds without rendering.

Each helper reproduces what Jinja2's filter or Python's ``str`` method returns for constant
inputs, refusing (``UNFOLDED``) anything that would allocate past the caps: a template cannot
make the scanner build a huge string. Used by parsers/jinja_fold.
"""

from __future__ import annotations

import re
import string
from typing import Any

#: Marks an expression whose value hex could not compute.
UNFOLDED: Any = object()

STR_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "swapcase",
    "replace", "removeprefix", "removesuffix", "join", "format", "center", "ljust", "rjust",
    "casefold",
})
STR_FILTERS = frozenset({
    "join", "format", "lower", "upper", "reverse", "replace", "string", "trim", "first",
    "last", "list", "capitalize", "title", "safe", "e", "escape", "center", "sort", "unique",
    "map", "select", "reject",
})
#: The tests ``select``/``reject`` are folded for (the rest leave the value unfolded).
_EQUALITY_TESTS = {"eq": True, "equalto": True, "==": True, "sameas": True,
                   "ne": False, "!=": False}
_PERCENT_SPEC = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")
_MAX_WIDTH = 1000
_FIELD_PART = re.compile(r"\.([^.\[\]{}]+)|\[([^\]{}]+)\]")


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text(value: Any) -> str:
    if isinstance(value, list):
        return str(value)[:10_000]
    return "" if value is None else str(value)


def format_fields(fmt: str) -> list[str]:
    """Attribute and index names in the replacement fields of a str.format string."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return []
    names: list[str] = []
    for _, field_name, spec, _ in parsed:
        for part in (field_name, spec):
            for attr, item in _FIELD_PART.findall(part or ""):
                names.append(attr or item)
    return names


def percent(fmt: str, args: Any, cap: int) -> Any:
    """``fmt % args`` for constant strings, refusing widths that would allocate."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*" or (group is not None and int(group) > _MAX_WIDTH):
                return UNFOLDED
    values = tuple(args) if isinstance(args, list) else args
    try:
        result = fmt % values
    except (TypeError, ValueError, KeyError, OverflowError):
        return UNFOLDED
    return result if len(result) <= cap else UNFOLDED


def apply_filter(name: str, value: Any, args: list[Any], cap: int,
                 kwargs: dict[str, Any] | None = None) -> Any:
    """Jinja2's filter ``name`` on constant arguments (``UNFOLDED`` when not computable)."""
    kwargs = kwargs or {}
    if name == "format":
        if not isinstance(value, str) or args and kwargs:
            return UNFOLDED
        return percent(value, kwargs or (args if len(args) != 1 else args[0]), cap)
    if kwargs:
        return UNFOLDED
    if name in ("map", "select", "reject", "sort", "unique"):
        return _sequence_filter(name, value, args, cap)
    if name == "join":
        sep = args[0] if args and isinstance(args[0], str) else ""
        items = value if isinstance(value, (list, str)) else None
        if items is None or sum(len(text(i)) for i in items) + len(sep) * len(items) > cap:
            return UNFOLDED
        return sep.join(text(i) for i in items)
    if name == "reverse":
        return value[::-1] if isinstance(value, (str, list)) else UNFOLDED
    if name == "list":
        return list(value) if isinstance(value, (str, list)) else UNFOLDED
    if name in ("first", "last"):
        return (value[0] if name == "first" else value[-1]) \
            if isinstance(value, (str, list)) and value else UNFOLDED
    if name in ("string", "safe", "e", "escape"):
        return text(value)
    if not isinstance(value, str):
        return UNFOLDED
    method = {"trim": "strip"}.get(name, name)
    return str_method(value, method, args, cap)


def _sequence_filter(name: str, value: Any, args: list[Any], cap: int) -> Any:
    """``map('lower')``, ``select/reject('eq', x)``, ``sort``, ``unique`` on constant lists."""
    if not isinstance(value, (list, str)):
        return UNFOLDED
    items = list(value)
    if name == "sort":
        return sorted(items) if all(isinstance(i, str) for i in items) or \
            all(number(i) for i in items) else UNFOLDED
    if name == "unique":
        return list(dict.fromkeys(items)) if all(isinstance(i, (str, int)) for i in items) \
            else UNFOLDED
    if not args or not isinstance(args[0], str):
        return UNFOLDED
    if name == "map":
        mapped = [apply_filter(args[0], i, args[1:], cap) if args[0] in STR_FILTERS
                  else UNFOLDED for i in items]
        return UNFOLDED if any(m is UNFOLDED for m in mapped) else mapped
    keep_equal = _EQUALITY_TESTS.get(args[0])
    if keep_equal is None or len(args) != 2:
        return UNFOLDED
    wanted = (name == "select") == keep_equal
    return [i for i in items if (i == args[1]) == wanted]


def str_method(base: str, method: str, args: list[Any], cap: int,
               kwargs: dict[str, Any] | None = None) -> Any:
    """``base.method(*args)`` for the string methods in :data:`STR_METHODS`."""
    if method == "format":
        return _format(base, args, kwargs or {}, cap)
    if kwargs:
        return UNFOLDED
    if method == "join":
        if len(args) != 1 or not isinstance(args[0], (list, str)):
            return UNFOLDED
        return apply_filter("join", args[0], [base], cap)
    if method == "replace":
        if len(args) < 2 or not all(isinstance(a, str) for a in args[:2]):
            return UNFOLDED
        if (base.count(args[0]) + (1 if not args[0] else 0) * len(base)) * len(args[1]) + \
                len(base) > cap:
            return UNFOLDED
        return base.replace(args[0], args[1])
    if method in ("center", "ljust", "rjust"):
        if not args or not isinstance(args[0], int) or args[0] > _MAX_WIDTH or \
                not all(isinstance(a, str) for a in args[1:]):
            return UNFOLDED
    elif not all(isinstance(a, str) for a in args) or len(args) > 1:
        return UNFOLDED
    try:
        result = getattr(str, method)(base, *args)
    except (TypeError, ValueError, AttributeError):
        return UNFOLDED
    return result if isinstance(result, str) else UNFOLDED


def _format(base: str, args: list[Any], kwargs: dict[str, Any], cap: int) -> Any:
    if format_fields(base) or re.search(r"\{[^}]*:", base):
        return UNFOLDED
    texts = [text(a) for a in args]
    named = {k: text(v) for k, v in kwargs.items()}
    if len(base) + (sum(len(t) for t in texts) + sum(len(t) for t in named.values())) * \
            max(1, base.count("{")) > cap:
        return UNFOLDED
    try:
        return base.format(*texts, **named)
    except (IndexError, KeyError, ValueError):
        return UNFOLDED
