"""Constant folding over a Jinja2 syntax tree, without rendering it.

Payloads hide the attribute names they need by computing them: ``'{}{}'.format(...)``,
``%``, ``~``, ``join``, ``replace``, slicing, case filters, ``{% set %}`` values and blocks,
macros, loops over constant lists, ``dict(__glo=1, bals__=1)|join``, namespace attributes.
:class:`Folder` computes such values the way Jinja2 would (bounded in depth and size, see
parsers/jinja_values), lists every value a name can take (``candidates``), and says whether an
expression builds a string at all (``string_built``) so that a name hex cannot compute is still
recognised as computed rather than as data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from jinja2 import nodes

from hexscan.parsers.jinja_values import (
    STR_FILTERS,
    STR_METHODS,
    UNFOLDED,
    apply_filter,
    number,
    percent,
    str_method,
    text,
)

#: Calls whose keyword arguments become the keys (``dict``) or attributes (``namespace``).
KEYWORD_OBJECTS = ("dict", "namespace")


class _Limits(Protocol):
    @property
    def max_folds(self) -> int: ...
    @property
    def max_fold_depth(self) -> int: ...
    @property
    def max_string(self) -> int: ...
    @property
    def max_items(self) -> int: ...


class Folder:
    """Folding state shared with the walker: aliases, loops and macros the template binds."""

    limits: _Limits
    aliases: dict[str, list[nodes.Node]]
    loop_sources: dict[str, list[nodes.Node]]
    macros: dict[str, nodes.Macro]
    folded: dict[int, Any]
    resolving: set[str]
    scoped: int
    folds: int
    bound_names: set[str]

    def add_bound(self, kind: str, value: int, lineno: int) -> None:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ folding

    def fold(self, node: nodes.Node, depth: int = 0) -> Any:
        """The constant value of ``node``, or ``UNFOLDED``; results are size-bounded."""
        key = id(node)
        if not self.scoped and key in self.folded:
            return self.folded[key]
        self.folds += 1
        if depth > self.limits.max_fold_depth or self.folds > self.limits.max_folds:
            return UNFOLDED
        value = self._fold(node, depth + 1)
        if isinstance(value, str) and len(value) > self.limits.max_string:
            value = UNFOLDED
        if isinstance(value, list) and len(value) > self.limits.max_items:
            value = UNFOLDED
        if not self.scoped:
            self.folded[key] = value
        return value

    def _fold(self, node: nodes.Node, depth: int) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.TemplateData):
            return node.data
        if isinstance(node, nodes.Name):
            return self._fold_key(node.name, depth)
        if isinstance(node, nodes.BinExpr):
            return self._fold_binary(node, depth)
        if isinstance(node, nodes.Neg):
            value = self.fold(node.node, depth)
            return -value if number(value) else UNFOLDED
        operations: dict[type[nodes.Node], Any] = {
            nodes.Getattr: self._fold_getattr, nodes.Getitem: self._fold_getitem,
            nodes.Filter: self._fold_filter, nodes.Call: self._fold_call}
        operation = operations.get(type(node))
        if operation is not None:
            return operation(node, depth)
        return self._fold_value(node, depth)

    def _fold_value(self, node: nodes.Node, depth: int) -> Any:
        """Literals of containers, concatenation and blocks of output."""
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.fold(item, depth) for item in node.items[:self.limits.max_items + 1]]
            return UNFOLDED if any(i is UNFOLDED for i in items) else items
        if isinstance(node, nodes.Dict):
            keys = [self.fold(pair.key, depth) for pair in node.items]
            return UNFOLDED if any(not isinstance(k, str) for k in keys) else keys
        if isinstance(node, nodes.Concat):
            return self._join([self.fold(item, depth) for item in node.nodes])
        if isinstance(node, (nodes.Output, nodes.AssignBlock)):
            if isinstance(node, nodes.AssignBlock) and node.filter is not None:
                return UNFOLDED
            return self._fold_body(node.nodes if isinstance(node, nodes.Output) else node.body,
                                   depth)
        return UNFOLDED

    def _join(self, parts: list[Any]) -> Any:
        if any(p is UNFOLDED for p in parts):
            return UNFOLDED
        return "".join(text(p) for p in parts)

    def _fold_body(self, body: Sequence[nodes.Node], depth: int) -> Any:
        """The output of a block made only of text and ``{{ }}`` (macro bodies, set blocks)."""
        return self._join([self.fold(item, depth) if isinstance(
            item, (nodes.Output, nodes.TemplateData)) or isinstance(item, nodes.Expr)
            else UNFOLDED for item in body])

    def _fold_key(self, name: str, depth: int) -> Any:
        exprs = self.aliases.get(name)
        if not exprs or name in self.resolving:
            return UNFOLDED
        self.resolving.add(name)
        try:
            return self.fold(exprs[-1], depth)
        finally:
            self.resolving.discard(name)

    def _fold_getattr(self, node: nodes.Getattr, depth: int) -> Any:
        """``ns.a`` of ``{% set ns.a = ... %}`` or of ``namespace(a=...)``."""
        if not isinstance(node.node, nodes.Name):
            return UNFOLDED
        key = f"{node.node.name}.{node.attr}"
        if key in self.aliases:
            return self._fold_key(key, depth)
        return self._member(node.node.name, node.attr, depth)

    def _member(self, name: str, key: Any, depth: int) -> Any:
        """``name.key`` / ``name[key]`` of a ``namespace(...)``, ``dict(...)`` or ``{...}``
        the template assigned to ``name``."""
        for expr in reversed(self.aliases.get(name, [])[-8:]):
            if isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.Name) and \
                    expr.node.name in KEYWORD_OBJECTS:
                for kw in expr.kwargs:
                    if kw.key == key:
                        return self.fold(kw.value, depth)
            elif isinstance(expr, nodes.Dict):
                for pair in expr.items:
                    if self.fold(pair.key, depth) == key:
                        return self.fold(pair.value, depth)
        return UNFOLDED

    def _fold_binary(self, node: nodes.BinExpr, depth: int) -> Any:
        left, right = self.fold(node.left, depth), self.fold(node.right, depth)
        if left is UNFOLDED or right is UNFOLDED:
            if isinstance(node, nodes.Mul) and (number(left) or number(right)):
                self._repeat_bound(left, right, node)
            return UNFOLDED
        lineno = node.lineno or 0
        if isinstance(node, nodes.Add):
            if isinstance(left, str) and isinstance(right, str) or \
                    isinstance(left, list) and isinstance(right, list) or \
                    number(left) and number(right):
                return left + right
        elif isinstance(node, nodes.Mul):
            return self._fold_mul(left, right, node)
        elif isinstance(node, nodes.Pow) and number(left) and number(right):
            if abs(left) > 1 and right > 0 and right * math.log2(abs(left)) > 64:
                self.add_bound("power", int(min(right, 1 << 62)), lineno)
                return UNFOLDED
            try:
                return left ** right
            except (OverflowError, ZeroDivisionError, ValueError, TypeError):
                return UNFOLDED
        elif isinstance(node, nodes.Mod) and isinstance(left, str):
            return percent(left, right, self.limits.max_string)
        elif isinstance(node, nodes.Sub) and number(left) and number(right):
            return left - right
        return UNFOLDED

    def _repeat_bound(self, left: Any, right: Any, node: nodes.Node) -> None:
        count = left if number(left) else right
        if isinstance(count, int) and count > self.limits.max_string * 100:
            self.add_bound("repeat", count, node.lineno or 0)

    def _fold_mul(self, left: Any, right: Any, node: nodes.Mul) -> Any:
        if number(left) and number(right):
            return left * right
        value, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(value, (str, list)) and isinstance(count, int) and \
                not isinstance(count, bool):
            cap = self.limits.max_string
            if count > 0 and len(value) * count > cap:
                if count > cap * 100 or len(value) * count > cap * 100:
                    self.add_bound("repeat", len(value) * count, node.lineno or 0)
                return UNFOLDED
            return value * count
        return UNFOLDED

    def _fold_getitem(self, node: nodes.Getitem, depth: int) -> Any:
        if isinstance(node.node, nodes.Name) and not isinstance(node.arg, nodes.Slice):
            key = self.fold(node.arg, depth)
            if isinstance(key, str):
                return self._member(node.node.name, key, depth)
        base = self.fold(node.node, depth)
        if not isinstance(base, (str, list)):
            return UNFOLDED
        if isinstance(node.arg, nodes.Slice):
            parts = [None if p is None else self.fold(p, depth)
                     for p in (node.arg.start, node.arg.stop, node.arg.step)]
            if any(p is not None and not isinstance(p, int) for p in parts) or parts[2] == 0:
                return UNFOLDED
            return base[slice(*parts)]
        index = self.fold(node.arg, depth)
        if isinstance(index, int) and not isinstance(index, bool) and \
                -len(base) <= index < len(base):
            return base[index]
        return UNFOLDED

    def _keywords(self, pairs: Sequence[Any], depth: int) -> dict[str, Any] | None:
        values = {kw.key: self.fold(kw.value, depth) for kw in pairs}
        return None if any(v is UNFOLDED for v in values.values()) else values

    def _fold_filter(self, node: nodes.Filter, depth: int) -> Any:
        if node.name not in STR_FILTERS or node.node is None or node.dyn_args or \
                node.dyn_kwargs:
            return UNFOLDED
        value = self.fold(node.node, depth)
        args = [self.fold(a, depth) for a in node.args]
        kwargs = self._keywords(node.kwargs, depth)
        if value is UNFOLDED or any(a is UNFOLDED for a in args) or kwargs is None:
            return UNFOLDED
        return apply_filter(node.name, value, args, self.limits.max_string, kwargs)

    def _fold_call(self, node: nodes.Call, depth: int) -> Any:
        callee = node.node
        if node.dyn_args or node.dyn_kwargs:
            return UNFOLDED
        if isinstance(callee, nodes.Name) and callee.name in self.macros:
            return self._fold_macro(self.macros[callee.name], node, depth)
        if isinstance(callee, nodes.Name) and callee.name == "dict" and not node.args:
            return [kw.key for kw in node.kwargs]  # iterating a dict yields its keys
        args = [self.fold(a, depth) for a in node.args]
        kwargs = self._keywords(node.kwargs, depth)
        if any(a is UNFOLDED for a in args) or kwargs is None:
            return UNFOLDED
        if isinstance(callee, nodes.Name) and callee.name == "chr" and len(args) == 1:
            code = args[0]
            return chr(code) if isinstance(code, int) and 0 <= code < 0x110000 else UNFOLDED
        if isinstance(callee, nodes.Getattr) and callee.attr in STR_METHODS:
            base = self.fold(callee.node, depth)
            if isinstance(base, str):
                return str_method(base, callee.attr, args, self.limits.max_string, kwargs)
        return UNFOLDED

    def _fold_macro(self, macro: nodes.Macro, call: nodes.Call, depth: int) -> Any:
        """A macro's output for constant arguments (parameters bound while its body folds)."""
        params = [arg.name for arg in macro.args]
        if len(call.args) > len(params) or macro.name in self.resolving:
            return UNFOLDED
        bound: dict[str, nodes.Node] = dict(zip(params[len(params) - len(macro.defaults):],
                                                macro.defaults, strict=True))
        bound.update(zip(params, call.args, strict=False))
        bound.update((kw.key, kw.value) for kw in call.kwargs)
        saved = {name: self.aliases.get(name) for name in bound}
        self.resolving.add(macro.name)
        self.scoped += 1
        try:
            for name, value in bound.items():
                self.aliases[name] = [value]
            return self._fold_body(macro.body, depth)
        finally:
            self.scoped -= 1
            self.resolving.discard(macro.name)
            for name, old in saved.items():
                if old is None:
                    self.aliases.pop(name, None)
                else:
                    self.aliases[name] = old


def str_const(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str)
