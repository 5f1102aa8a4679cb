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
_KEYWORD_OBJECTS = ("dict", "namespace")


class _Limits(Protocol):
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

    def add_bound(self, kind: str, value: int, lineno: int) -> None:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ candidates

    def candidates(self, expr: nodes.Node, depth: int = 0) -> tuple[list[str], bool]:
        """Every constant string ``expr`` can evaluate to, and whether some value is unknown."""
        if depth > self.limits.max_fold_depth:
            return [], True
        if isinstance(expr, nodes.Const):
            return ([expr.value] if isinstance(expr.value, str) else []), False
        if isinstance(expr, nodes.CondExpr):
            found, unknown = self.candidates(expr.expr1, depth + 1)
            if expr.expr2 is not None:
                more, unknown2 = self.candidates(expr.expr2, depth + 1)
                found, unknown = found + more, unknown or unknown2
            return found, unknown
        if isinstance(expr, nodes.Name):
            return self._name_candidates(expr.name, depth)
        value = self.fold(expr)
        if value is UNFOLDED:
            return [], True
        return ([value] if isinstance(value, str) else []), False

    def _name_candidates(self, name: str, depth: int) -> tuple[list[str], bool]:
        exprs = self.aliases.get(name, [])
        sources = self.loop_sources.get(name, [])
        if not exprs and not sources or name in self.resolving:
            return [], True
        self.resolving.add(name)
        try:
            found: list[str] = []
            unknown = False
            for expr in exprs[:self.limits.max_items]:
                more, more_unknown = self.candidates(expr, depth + 1)
                found.extend(more)
                unknown = unknown or more_unknown
            for source in sources:
                items = self.fold(source)
                if isinstance(items, (list, str)):
                    found.extend(i for i in items if isinstance(i, str))
                else:
                    unknown = True
            return found, unknown
        finally:
            self.resolving.discard(name)

    # ------------------------------------------------------------------ string_built

    def string_built(self, expr: nodes.Node, depth: int = 0) -> bool:
        """Whether ``expr`` computes a string from pieces (even pieces hex cannot fold)."""
        if depth > self.limits.max_fold_depth:
            return True
        built = self.string_built
        if isinstance(expr, nodes.Concat):
            return True
        if isinstance(expr, (nodes.Add, nodes.Mul)):
            return any(_str_const(side) or built(side, depth + 1)
                       for side in (expr.left, expr.right))
        if isinstance(expr, nodes.Mod):
            return _str_const(expr.left) or built(expr.left, depth + 1)
        if isinstance(expr, nodes.Filter):
            return expr.name in STR_FILTERS or expr.node is not None and \
                built(expr.node, depth + 1)
        if isinstance(expr, nodes.Call):
            callee = expr.node
            return isinstance(callee, nodes.Getattr) and callee.attr in STR_METHODS or \
                isinstance(callee, nodes.Name) and (
                    callee.name in self.macros or callee.name == "caller" or
                    callee.name in _KEYWORD_OBJECTS)
        if isinstance(expr, nodes.Getitem):
            return isinstance(expr.arg, nodes.Slice) or built(expr.node, depth + 1)
        if isinstance(expr, nodes.CondExpr):
            return built(expr.expr1, depth + 1) or expr.expr2 is not None and \
                built(expr.expr2, depth + 1)
        if isinstance(expr, nodes.Getattr) and isinstance(expr.node, nodes.Name):
            return self._name_built(f"{expr.node.name}.{expr.attr}", depth)
        if isinstance(expr, nodes.Name):
            return self._name_built(expr.name, depth)
        return False

    def _name_built(self, name: str, depth: int) -> bool:
        if name in self.resolving:
            return False
        self.resolving.add(name)
        try:
            if any(isinstance(e, nodes.AssignBlock) or self.string_built(e, depth + 1)
                   for e in self.aliases.get(name, [])[:self.limits.max_items]):
                return True
            # a loop over constant strings yields constants (followed by candidates): only
            # items built from pieces make the loop variable a built name
            return any(isinstance(s, (nodes.List, nodes.Tuple)) and
                       any(self.string_built(i, depth + 1) for i in s.items)
                       or self.string_built(s, depth + 1)
                       for s in self.loop_sources.get(name, []))
        finally:
            self.resolving.discard(name)

    # ------------------------------------------------------------------ folding

    def fold(self, node: nodes.Node, depth: int = 0) -> Any:
        """The constant value of ``node``, or ``UNFOLDED``; results are size-bounded."""
        key = id(node)
        if not self.scoped and key in self.folded:
            return self.folded[key]
        if depth > self.limits.max_fold_depth:
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
        for expr in reversed(self.aliases.get(node.node.name, [])):
            if isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.Name) and \
                    expr.node.name == "namespace":
                for kw in expr.kwargs:
                    if kw.key == node.attr:
                        return self.fold(kw.value, depth)
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


def _str_const(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str)
