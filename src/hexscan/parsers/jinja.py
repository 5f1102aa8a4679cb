"""Jinja2 templates as a static view: what a template would read, name, build and load.

The template is parsed with Jinja2's own lexer and parser (``Environment.parse``); it is
never compiled or rendered. The walk records:

* every attribute or item read (``x.a``, ``x['a']``, ``x|attr('a')``, ``getattr(x, 'a')``,
  ``'{0.a}'.format(x)``, ``map(attribute='a')`` ...) with the name when it can be resolved,
  whether the name was computed, and the free variable at the root of the chain;
* every free variable (names the template uses but does not bind itself);
* every string the template computes from constants (``~``, ``+``, ``join``, ``format``,
  ``%``, ``replace``, ``chr()``, slicing, ``{% set %}`` aliases), folded here with bounded
  size, and every literal spelled with backslash escapes;
* ``range`` bounds, repetitions and powers; ``include``/``import``/``extends`` tags.

Judging what is dangerous is the scanner's job (policy/templates.toml). Nothing here
raises on any input: a syntax error or a bound becomes ``error`` / ``limit`` in the view.
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

#: Filters whose keyword ``attribute`` (or a positional argument) names an attribute path.
_ATTRIBUTE_FILTERS = {
    "map": None, "selectattr": 0, "rejectattr": 0, "groupby": 0, "sort": None,
    "sum": None, "unique": None, "min": None, "max": None, "dictsort": None,
}
_STR_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "swapcase",
    "replace", "removeprefix", "removesuffix", "join", "format",
})
_STR_FILTERS = frozenset({
    "join", "format", "lower", "upper", "reverse", "replace", "string", "trim", "first",
    "last", "list", "capitalize", "title", "safe", "e", "escape",
})
_PERCENT_SPEC = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")
_MAX_WIDTH = 1000
_UNFOLDED = object()


@dataclass(frozen=True, slots=True)
class Access:
    """One attribute/item read. ``name`` None: the name could not be resolved."""

    name: str | None
    via: str
    """``getattr`` (x.a), ``getitem`` (x['a']), ``attr-filter``, ``getattr-call``,
    ``format-field``, ``attribute-arg`` (map/selectattr/sort ... attribute names)."""
    computed: bool
    root: str | None
    """The free variable the chain starts from ('' for a literal), None when unknown."""
    called: bool
    lineno: int


@dataclass(frozen=True, slots=True)
class NameUse:
    name: str
    lineno: int
    attribute: bool
    """An attribute or item of the name is read."""
    called: bool


@dataclass(frozen=True, slots=True)
class Built:
    """A string computed from constants (not written as one literal), or an escaped literal."""

    value: str
    how: str
    lineno: int


@dataclass(frozen=True, slots=True)
class Bound:
    kind: str
    """``range``, ``repeat`` or ``power``."""
    value: int
    lineno: int


@dataclass(frozen=True)
class TemplateView:
    accesses: tuple[Access, ...] = ()
    names: tuple[NameUse, ...] = ()
    built: tuple[Built, ...] = ()
    literals: tuple[tuple[str, int], ...] = ()
    bounds: tuple[Bound, ...] = ()
    loads: tuple[tuple[str, int], ...] = ()
    error: str | None = None
    error_line: int | None = None
    limit: str | None = None
    node_count: int = 0


@dataclass(frozen=True)
class JinjaLimits:
    max_source_chars: int = 1 << 20
    max_nodes: int = 200_000
    max_fold_depth: int = 32
    max_string: int = 10_000
    max_items: int = 1_000
    max_records: int = 5_000


class _Generation(Extension):
    """transformers' ``{% generation %}...{% endgeneration %}`` block (parse only)."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> list[nodes.Node]:
        next(parser.stream)
        body: list[nodes.Node] = parser.parse_statements(("name:endgeneration",),
                                                         drop_needle=True)
        return body


_ENV: Environment | None = None


def _environment() -> Environment:
    """The environment used to parse: the syntax transformers and llama.cpp accept."""
    global _ENV
    if _ENV is None:
        # Parse only: nothing is ever rendered, so autoescaping is irrelevant.
        _ENV = Environment(extensions=[_Generation, "jinja2.ext.loopcontrols",  # noqa: S701
                                       "jinja2.ext.do"])
    return _ENV


def analyze_template(source: str, limits: JinjaLimits | None = None) -> TemplateView:
    """Parse ``source`` (never render it) and return what it would access."""
    limits = limits or JinjaLimits()
    if len(source) > limits.max_source_chars:
        return TemplateView(limit=f"template of {len(source)} characters is larger than "
                            f"the {limits.max_source_chars} analysed")
    env = _environment()
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" in string literals
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = env.parse(source)
    except RecursionError:
        return TemplateView(limit="template nesting is deeper than the parser can follow")
    except Exception as exc:  # noqa: BLE001 - any parser failure means "does not parse"
        return TemplateView(error=f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
                            [:300], error_line=getattr(exc, "lineno", None))
    walker = _Walker(limits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        walker.escaped_literals(env, source)
    try:
        walker.walk(tree)
    except RecursionError:
        walker.limit = "template nesting is deeper than hex analyses"
    return walker.view()


def _decode_literal(raw: str) -> str:
    """A lexer string token as Jinja2 decodes it (quotes removed, escapes applied)."""
    body = raw[1:-1]
    try:
        return body.encode("ascii", "backslashreplace").decode("unicode-escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return body


@dataclass
class _Walker:
    limits: JinjaLimits
    accesses: list[Access] = field(default_factory=list)
    names: list[NameUse] = field(default_factory=list)
    built: list[Built] = field(default_factory=list)
    literals: list[tuple[str, int]] = field(default_factory=list)
    bounds: list[Bound] = field(default_factory=list)
    loads: list[tuple[str, int]] = field(default_factory=list)
    limit: str | None = None
    count: int = 0
    bound_names: set[str] = field(default_factory=set)
    aliases: dict[str, list[nodes.Node]] = field(default_factory=dict)
    folded: dict[int, Any] = field(default_factory=dict)
    resolving: set[str] = field(default_factory=set)
    called: set[int] = field(default_factory=set)
    attr_bases: set[int] = field(default_factory=set)

    def view(self) -> TemplateView:
        return TemplateView(tuple(self.accesses), tuple(self.names), tuple(self.built),
                            tuple(self.literals), tuple(self.bounds), tuple(self.loads),
                            limit=self.limit, node_count=self.count)

    def _record(self, bucket: list[Any], item: Any) -> None:
        if len(bucket) < self.limits.max_records:
            bucket.append(item)

    # ------------------------------------------------------------------ passes

    def escaped_literals(self, env: Environment, source: str) -> None:
        """String literals written with backslash escapes (\\x5f, \\u005f, octal ...)."""
        try:
            for lineno, kind, value in env.lex(source):
                if kind == "string" and "\\" in value:
                    self._record(self.built, Built(_decode_literal(value), "escapes", lineno))
        except Exception:  # noqa: BLE001,S110 - the parse succeeded; lexing again cannot fail
            pass

    def walk(self, tree: nodes.Template) -> None:
        all_nodes = list(self._iter(tree))  # on a limit: the nodes up to it
        for node in all_nodes:
            self._bind(node)
        for node in all_nodes:
            if isinstance(node, nodes.Call):
                self.called.add(id(node.node))
            elif isinstance(node, (nodes.Getattr, nodes.Getitem)) or \
                    isinstance(node, nodes.Filter) and node.name == "attr":
                self.attr_bases.add(id(node.node))
        for node in all_nodes:
            self._visit(node)

    def _iter(self, tree: nodes.Node) -> Iterator[nodes.Node]:
        stack: list[nodes.Node] = [tree]
        while stack:
            node = stack.pop()
            self.count += 1
            if self.count > self.limits.max_nodes:
                self.limit = f"template has more than {self.limits.max_nodes} syntax nodes"
                return
            yield node
            stack.extend(reversed(list(node.iter_child_nodes())))

    def _bind(self, node: nodes.Node) -> None:
        """Names the template binds itself, and the expressions {% set %} gives them."""
        if isinstance(node, nodes.Assign):
            for target in _targets(node.target):
                self.aliases.setdefault(target, []).append(node.node)
        if isinstance(node, (nodes.Assign, nodes.AssignBlock, nodes.For)):
            self.bound_names.update(_targets(node.target))
        elif isinstance(node, nodes.With):
            for item in node.targets:
                self.bound_names.update(_targets(item))
        elif isinstance(node, (nodes.Macro, nodes.CallBlock)):
            self.bound_names.update(arg.name for arg in node.args)
            self.bound_names.update(("varargs", "kwargs", "caller"))
            if isinstance(node, nodes.Macro):
                self.bound_names.add(node.name)
        elif isinstance(node, nodes.Import):
            self.bound_names.add(node.target)
        elif isinstance(node, nodes.FromImport):
            for imported in node.names:
                self.bound_names.add(imported[1] if isinstance(imported, tuple) else imported)

    def _visit(self, node: nodes.Node) -> None:
        lineno = node.lineno or 0
        if isinstance(node, nodes.Getattr):
            self._access(node.attr, "getattr", False, node.node, node, lineno)
        elif isinstance(node, nodes.Getitem):
            self._getitem(node, lineno)
        elif isinstance(node, nodes.Filter):
            self._filter(node, lineno)
        elif isinstance(node, nodes.Call):
            self._call(node, lineno)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            self._name(node, lineno)
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            self._record(self.loads, (type(node).__name__.lower(), lineno))
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            if len(node.value) <= 200:
                self._record(self.literals, (node.value, lineno))
        if isinstance(node, (nodes.Concat, nodes.Add, nodes.Mod, nodes.Mul, nodes.Pow,
                             nodes.Filter, nodes.Call, nodes.Getitem)):
            value = self.fold(node)
            if isinstance(value, str) and value:
                self._record(self.built, Built(value, type(node).__name__.lower(), lineno))

    # ------------------------------------------------------------------ accesses

    def _access(self, name: str | None, via: str, computed: bool, base: nodes.Node,
                node: nodes.Node, lineno: int) -> None:
        root = self.root(base)
        self._record(self.accesses, Access(name, via, computed, root, id(node) in self.called,
                                           lineno))

    def _names_of(self, expr: nodes.Node) -> tuple[list[str] | None, bool]:
        """Candidate string values of ``expr`` and whether they were computed."""
        if isinstance(expr, nodes.Const):
            return ([expr.value] if isinstance(expr.value, str) else []), False
        if isinstance(expr, nodes.Name) and expr.name in self.aliases:
            values = [self.fold(e) for e in self.aliases[expr.name]]
            found = [v for v in values if isinstance(v, str)]
            return (found or None), True
        value = self.fold(expr)
        if value is _UNFOLDED:
            return None, True
        return ([value] if isinstance(value, str) else []), True

    def _getitem(self, node: nodes.Getitem, lineno: int) -> None:
        if isinstance(node.arg, nodes.Slice):
            return
        names, computed = self._names_of(node.arg)
        for name in names or ():
            self._access(name, "getitem", computed, node.node, node, lineno)

    def _filter(self, node: nodes.Filter, lineno: int) -> None:
        base = node.node if node.node is not None else node
        if node.name == "attr":
            if not node.args:
                return
            names, computed = self._names_of(node.args[0])
            if names is None:
                self._access(None, "attr-filter", True, base, node, lineno)
            for name in names or ():
                self._access(name, "attr-filter", computed, base, node, lineno)
            return
        if node.name not in _ATTRIBUTE_FILTERS:
            return
        exprs = [kw.value for kw in node.kwargs if kw.key == "attribute"]
        position = _ATTRIBUTE_FILTERS[node.name]
        if position is not None and len(node.args) > position:
            exprs.append(node.args[position])
        if node.name == "map" and node.args and self.fold(node.args[0]) == "attr" and \
                len(node.args) > 1:
            exprs.append(node.args[1])
        for expr in exprs:
            names, computed = self._names_of(expr)
            if names is None:
                self._access(None, "attribute-arg", True, base, node, lineno)
            for name in names or ():
                for part in str(name).split("."):
                    self._access(part, "attribute-arg", computed, base, node, lineno)

    def _call(self, node: nodes.Call, lineno: int) -> None:
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name == "getattr" and len(node.args) > 1:
            names, computed = self._names_of(node.args[1])
            if names is None:
                self._access(None, "getattr-call", True, node.args[0], node, lineno)
            for name in names or ():
                self._access(name, "getattr-call", computed, node.args[0], node, lineno)
        elif isinstance(callee, nodes.Name) and callee.name == "range":
            stop = self.fold(node.args[-1]) if node.args else None
            start = self.fold(node.args[0]) if len(node.args) > 1 else 0
            if isinstance(stop, int) and isinstance(start, int) and stop - start > 0:
                self._record(self.bounds, Bound("range", stop - start, lineno))
        elif isinstance(callee, nodes.Getattr) and callee.attr in ("format", "format_map"):
            fmt = self.fold(callee.node)
            if isinstance(fmt, str):
                for name in _format_fields(fmt):
                    self._access(name, "format-field", False, callee.node, node, lineno)

    def _name(self, node: nodes.Name, lineno: int) -> None:
        if node.name in self.bound_names or node.name == "loop":
            return
        self._record(self.names, NameUse(node.name, lineno, id(node) in self.attr_bases,
                                         id(node) in self.called))

    def root(self, node: nodes.Node) -> str | None:
        """The free variable a chain of attribute reads, calls and filters starts from."""
        seen: set[str] = set()
        for _ in range(64):
            inner = getattr(node, "node", None)
            if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter,
                                 nodes.Test)) and isinstance(inner, nodes.Node):
                node = inner
            elif isinstance(node, nodes.Name):
                if node.name in self.aliases and node.name not in seen:
                    seen.add(node.name)
                    node = self.aliases[node.name][-1]
                    continue
                return None if node.name in self.bound_names else node.name
            elif isinstance(node, (nodes.Const, nodes.List, nodes.Tuple, nodes.Dict)):
                return ""
            else:
                return None
        return None

    # ------------------------------------------------------------------ folding

    def fold(self, node: nodes.Node, depth: int = 0) -> Any:
        """The constant value of ``node``, or ``_UNFOLDED``; results are size-bounded."""
        key = id(node)
        if key in self.folded:
            return self.folded[key]
        if depth > self.limits.max_fold_depth:
            return _UNFOLDED
        value = self._fold(node, depth + 1)
        if isinstance(value, str) and len(value) > self.limits.max_string:
            value = _UNFOLDED
        if isinstance(value, list) and len(value) > self.limits.max_items:
            value = _UNFOLDED
        self.folded[key] = value
        return value

    def _fold(self, node: nodes.Node, depth: int) -> Any:
        if isinstance(node, (nodes.Const, nodes.TemplateData)):
            return node.data if isinstance(node, nodes.TemplateData) else node.value
        if isinstance(node, nodes.Name):
            return self._fold_name(node, depth)
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.fold(item, depth) for item in node.items[:self.limits.max_items + 1]]
            return _UNFOLDED if any(i is _UNFOLDED for i in items) else items
        if isinstance(node, nodes.Concat):
            parts = [self.fold(item, depth) for item in node.nodes]
            if any(p is _UNFOLDED for p in parts):
                return _UNFOLDED
            return "".join(_text(p) for p in parts)
        if isinstance(node, nodes.BinExpr):
            return self._fold_binary(node, depth)
        if isinstance(node, nodes.Neg):
            value = self.fold(node.node, depth)
            return -value if _number(value) else _UNFOLDED
        if isinstance(node, nodes.Getitem):
            return self._fold_getitem(node, depth)
        if isinstance(node, nodes.Filter):
            return self._fold_filter(node, depth)
        if isinstance(node, nodes.Call):
            return self._fold_call(node, depth)
        return _UNFOLDED

    def _fold_name(self, node: nodes.Name, depth: int) -> Any:
        exprs = self.aliases.get(node.name)
        if not exprs or node.name in self.resolving:
            return _UNFOLDED
        self.resolving.add(node.name)
        try:
            return self.fold(exprs[-1], depth)
        finally:
            self.resolving.discard(node.name)

    def _fold_binary(self, node: nodes.BinExpr, depth: int) -> Any:
        left, right = self.fold(node.left, depth), self.fold(node.right, depth)
        if left is _UNFOLDED or right is _UNFOLDED:
            if isinstance(node, nodes.Mul) and (_number(left) or _number(right)):
                self._repeat_bound(left, right, node)
            return _UNFOLDED
        lineno = node.lineno or 0
        if isinstance(node, nodes.Add):
            if isinstance(left, str) and isinstance(right, str) or \
                    isinstance(left, list) and isinstance(right, list) or \
                    _number(left) and _number(right):
                return left + right
        elif isinstance(node, nodes.Mul):
            return self._fold_mul(left, right, node)
        elif isinstance(node, nodes.Pow) and _number(left) and _number(right):
            if abs(left) > 1 and right > 0 and right * math.log2(abs(left)) > 64:
                self._record(self.bounds, Bound("power", int(min(right, 1 << 62)), lineno))
                return _UNFOLDED
            try:
                return left ** right
            except (OverflowError, ZeroDivisionError, ValueError, TypeError):
                return _UNFOLDED
        elif isinstance(node, nodes.Mod) and isinstance(left, str):
            return _percent(left, right, self.limits.max_string)
        elif isinstance(node, nodes.Sub) and _number(left) and _number(right):
            return left - right
        return _UNFOLDED

    def _repeat_bound(self, left: Any, right: Any, node: nodes.Node) -> None:
        count = left if _number(left) else right
        if isinstance(count, int) and count > self.limits.max_string * 100:
            self._record(self.bounds, Bound("repeat", count, node.lineno or 0))

    def _fold_mul(self, left: Any, right: Any, node: nodes.Mul) -> Any:
        if _number(left) and _number(right):
            return left * right
        text, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(text, (str, list)) and isinstance(count, int) and \
                not isinstance(count, bool):
            if count > 0 and len(text) * count > self.limits.max_string:
                if count > self.limits.max_string * 100 or \
                        len(text) * count > self.limits.max_string * 100:
                    self._record(self.bounds, Bound("repeat", len(text) * count,
                                                    node.lineno or 0))
                return _UNFOLDED
            return text * count
        return _UNFOLDED

    def _fold_getitem(self, node: nodes.Getitem, depth: int) -> Any:
        base = self.fold(node.node, depth)
        if not isinstance(base, (str, list)):
            return _UNFOLDED
        if isinstance(node.arg, nodes.Slice):
            parts = [None if p is None else self.fold(p, depth)
                     for p in (node.arg.start, node.arg.stop, node.arg.step)]
            if any(p is not None and not isinstance(p, int) for p in parts) or parts[2] == 0:
                return _UNFOLDED
            return base[slice(*parts)]
        index = self.fold(node.arg, depth)
        if isinstance(index, int) and not isinstance(index, bool) and \
                -len(base) <= index < len(base):
            return base[index]
        return _UNFOLDED

    def _fold_filter(self, node: nodes.Filter, depth: int) -> Any:
        if node.name not in _STR_FILTERS or node.node is None or node.kwargs or \
                node.dyn_args or node.dyn_kwargs:
            return _UNFOLDED
        value = self.fold(node.node, depth)
        args = [self.fold(a, depth) for a in node.args]
        if value is _UNFOLDED or any(a is _UNFOLDED for a in args):
            return _UNFOLDED
        return _apply_filter(node.name, value, args, self.limits.max_string)

    def _fold_call(self, node: nodes.Call, depth: int) -> Any:
        callee = node.node
        args = [self.fold(a, depth) for a in node.args]
        if any(a is _UNFOLDED for a in args) or node.kwargs or node.dyn_args:
            return _UNFOLDED
        if isinstance(callee, nodes.Name) and callee.name == "chr" and len(args) == 1:
            code = args[0]
            return chr(code) if isinstance(code, int) and 0 <= code < 0x110000 else _UNFOLDED
        if isinstance(callee, nodes.Getattr) and callee.attr in _STR_METHODS:
            base = self.fold(callee.node, depth)
            if isinstance(base, str):
                return _str_method(base, callee.attr, args, self.limits.max_string)
        return _UNFOLDED


def _targets(node: nodes.Node) -> list[str]:
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, (nodes.Tuple, nodes.List)):
        return [name for item in node.items for name in _targets(item)]
    return []


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return str(value)[:10_000]
    return "" if value is None else str(value)


_FIELD_PART = re.compile(r"\.([^.\[\]{}]+)|\[([^\]{}]+)\]")


def _format_fields(fmt: str) -> list[str]:
    """Attribute and index names in the replacement fields of a str.format string."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return []
    names: list[str] = []
    for _, field_name, spec, _ in parsed:
        for text in (field_name, spec):
            for attr, item in _FIELD_PART.findall(text or ""):
                names.append(attr or item)
    return names


def _percent(fmt: str, args: Any, cap: int) -> Any:
    """``fmt % args`` for constant strings, refusing widths that would allocate."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*" or (group is not None and int(group) > _MAX_WIDTH):
                return _UNFOLDED
    values = tuple(args) if isinstance(args, list) else args
    try:
        result = fmt % values
    except (TypeError, ValueError, KeyError, OverflowError):
        return _UNFOLDED
    return result if len(result) <= cap else _UNFOLDED


def _apply_filter(name: str, value: Any, args: list[Any], cap: int) -> Any:
    if name == "join":
        sep = args[0] if args and isinstance(args[0], str) else ""
        items = value if isinstance(value, (list, str)) else None
        if items is None or sum(len(_text(i)) for i in items) + len(sep) * len(items) > cap:
            return _UNFOLDED
        return sep.join(_text(i) for i in items)
    if name == "format":
        return _percent(value, args if len(args) != 1 else args[0], cap) \
            if isinstance(value, str) else _UNFOLDED
    if name == "reverse":
        return value[::-1] if isinstance(value, (str, list)) else _UNFOLDED
    if name == "list":
        return list(value) if isinstance(value, (str, list)) else _UNFOLDED
    if name in ("first", "last"):
        return (value[0] if name == "first" else value[-1]) \
            if isinstance(value, (str, list)) and value else _UNFOLDED
    if name in ("string", "safe", "e", "escape"):
        return _text(value)
    if not isinstance(value, str):
        return _UNFOLDED
    method = {"trim": "strip"}.get(name, name)
    return _str_method(value, method, args, cap)


def _str_method(base: str, method: str, args: list[Any], cap: int) -> Any:
    if method == "join":
        if len(args) != 1 or not isinstance(args[0], (list, str)):
            return _UNFOLDED
        return _apply_filter("join", args[0], [base], cap)
    if method == "format":
        if _format_fields(base):
            return _UNFOLDED
        texts = [_text(a) for a in args]
        if len(base) + sum(len(t) for t in texts) * max(1, base.count("{")) > cap:
            return _UNFOLDED
        try:
            return base.format(*texts) if not re.search(r"\{[^}]*:", base) else _UNFOLDED
        except (IndexError, KeyError, ValueError):
            return _UNFOLDED
    if method == "replace":
        if len(args) < 2 or not all(isinstance(a, str) for a in args[:2]):
            return _UNFOLDED
        if (base.count(args[0]) + (1 if not args[0] else 0) * len(base)) * len(args[1]) + \
                len(base) > cap:
            return _UNFOLDED
        return base.replace(args[0], args[1])
    if not all(isinstance(a, str) for a in args) or len(args) > 1:
        return _UNFOLDED
    try:
        result = getattr(str, method)(base, *args)
    except (TypeError, ValueError):
        return _UNFOLDED
    return result if isinstance(result, str) else _UNFOLDED
