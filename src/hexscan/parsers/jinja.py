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

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from hexscan.parsers.jinja_names import NameAnalysis
from hexscan.parsers.jinja_view import (
    Access,
    Bound,
    Built,
    JinjaLimits,
    NameUse,
    TemplateView,
)

__all__ = ["Access", "Bound", "Built", "JinjaLimits", "NameUse", "TemplateView",
           "analyze_template"]
from hexscan.parsers.jinja_values import format_fields

#: Filters whose keyword ``attribute`` (or a positional argument) names an attribute path.
_ATTRIBUTE_FILTERS = {
    "map": None, "selectattr": 0, "rejectattr": 0, "groupby": 0, "sort": None,
    "sum": None, "unique": None, "min": None, "max": None, "dictsort": None,
}


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
    if walker.folds > limits.max_folds and walker.limit is None:
        walker.limit = f"template needs more than {limits.max_folds} folding steps"
    return walker.view()


def _decode_literal(raw: str) -> str:
    """A lexer string token as Jinja2 decodes it (quotes removed, escapes applied)."""
    body = raw[1:-1]
    try:
        return body.encode("ascii", "backslashreplace").decode("unicode-escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return body


@dataclass
class _Walker(NameAnalysis):
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
    loop_sources: dict[str, list[nodes.Node]] = field(default_factory=dict)
    macros: dict[str, nodes.Macro] = field(default_factory=dict)
    scoped: int = 0
    folds: int = 0
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

    def add_bound(self, kind: str, value: int, lineno: int) -> None:
        self._record(self.bounds, Bound(kind, value, lineno))

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
        self.macros = {n.name: n for n in all_nodes if isinstance(n, nodes.Macro)}
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
        """The values the template gives its names: set, set blocks, loops, with, macros."""
        if isinstance(node, nodes.Assign):
            self._alias(node.target, node.node)
        elif isinstance(node, nodes.AssignBlock):
            self._alias(node.target, node)
        elif isinstance(node, nodes.For) and isinstance(node.target, nodes.Name):
            self.loop_sources.setdefault(node.target.name, []).append(node.iter)
        elif isinstance(node, nodes.With):
            for target, value in zip(node.targets, node.values, strict=False):
                self._alias(target, value)
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and \
                node.node.name in self.macros:
            self._bind_macro_call(self.macros[node.node.name], node)
        elif isinstance(node, nodes.Macro):
            params = [arg.name for arg in node.args]
            for name, default in zip(params[len(params) - len(node.defaults):], node.defaults,
                                     strict=True):
                self.aliases.setdefault(name, []).append(default)
        self._bind_names(node)

    def _bind_names(self, node: nodes.Node) -> None:
        """Names the template binds (they are not free variables)."""
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

    def _alias(self, target: nodes.Node, value: nodes.Node) -> None:
        """``{% set target = value %}``: a name, a namespace attribute, or a tuple of them."""
        if isinstance(target, nodes.NSRef):
            self.aliases.setdefault(f"{target.name}.{target.attr}", []).append(value)
        elif isinstance(target, nodes.Name):
            self.aliases.setdefault(target.name, []).append(value)
        elif isinstance(target, (nodes.Tuple, nodes.List)) and \
                isinstance(value, (nodes.Tuple, nodes.List)) and \
                len(target.items) == len(value.items):
            for item, part in zip(target.items, value.items, strict=True):
                self._alias(item, part)

    def _bind_macro_call(self, macro: nodes.Macro, call: nodes.Call) -> None:
        """A macro's parameters can take the values its call sites pass."""
        params = [arg.name for arg in macro.args]
        for name, value in zip(params, call.args, strict=False):
            self.aliases.setdefault(name, []).append(value)
        for kw in call.kwargs:
            if kw.key in params:
                self.aliases.setdefault(kw.key, []).append(kw.value)

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
            for keyword in node.kwargs:  # dict(__globals__=1)|first spells a name too
                self._record(self.literals, (keyword.key, lineno))
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

    def _getitem(self, node: nodes.Getitem, lineno: int) -> None:
        if isinstance(node.arg, nodes.Slice):
            return
        found, unknown = self.candidates(node.arg)
        computed = not isinstance(node.arg, nodes.Const)
        for name in found:
            self._access(name, "getitem", computed, node.node, node, lineno)
        if unknown and (self.string_built(node.arg) or self.from_context(node.arg)):
            # x[key] falls back to getattr(x, key) for a string key: a computed string key,
            # or one taken from the render context (bos_token, any value the model's config
            # supplies), is a computed attribute name. Loop variables over data are neither.
            self._access(None, "getitem", True, node.node, node, lineno)

    def _filter(self, node: nodes.Filter, lineno: int) -> None:
        base = node.node if node.node is not None else node
        if node.name == "attr":
            if not node.args:
                return
            found, unknown = self.candidates(node.args[0])
            computed = not isinstance(node.args[0], nodes.Const)
            if unknown:
                self._access(None, "attr-filter", True, base, node, lineno)
            for name in found:
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
            found, unknown = self.candidates(expr)
            computed = not isinstance(expr, nodes.Const)
            if unknown:
                self._access(None, "attribute-arg", True, base, node, lineno)
            for name in found:
                for part in str(name).split("."):
                    self._access(part, "attribute-arg", computed, base, node, lineno)

    def _call(self, node: nodes.Call, lineno: int) -> None:
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name == "getattr" and len(node.args) > 1:
            found, unknown = self.candidates(node.args[1])
            computed = not isinstance(node.args[1], nodes.Const)
            if unknown:
                self._access(None, "getattr-call", True, node.args[0], node, lineno)
            for name in found:
                self._access(name, "getattr-call", computed, node.args[0], node, lineno)
        elif isinstance(callee, nodes.Name) and callee.name == "range":
            stop = self.fold(node.args[-1]) if node.args else None
            start = self.fold(node.args[0]) if len(node.args) > 1 else 0
            if isinstance(stop, int) and isinstance(start, int) and stop - start > 0:
                self._record(self.bounds, Bound("range", stop - start, lineno))
        elif isinstance(callee, nodes.Getattr) and callee.attr in ("format", "format_map"):
            fmt = self.fold(callee.node)
            if isinstance(fmt, str):
                for name in format_fields(fmt):
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


def _targets(node: nodes.Node) -> list[str]:
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, (nodes.Tuple, nodes.List)):
        return [name for item in node.items for name in _targets(item)]
    return []
