"""What a subscript key or attribute name can be: its candidate values, and whether it is
built from pieces or taken from the render context.

A payload that hides ``__globals__`` from the folder (a piece from a context variable,
keyword formatting, a loop accumulating characters) still computes a string, and one that
reads the name from ``bos_token`` takes it from a value the model's config supplies. Loop
variables over data (``message[key]`` with ``key`` in ``message``) do neither, which is what
keeps real chat templates quiet. :class:`NameAnalysis` adds these questions to the folder.
"""

from __future__ import annotations

from jinja2 import nodes

from hexscan.parsers.jinja_fold import KEYWORD_OBJECTS, Folder, str_const
from hexscan.parsers.jinja_values import STR_FILTERS, STR_METHODS, UNFOLDED


class NameAnalysis(Folder):
    """Candidates, ``string_built`` and ``from_context`` over the folder's bindings."""

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
            return any(str_const(side) or built(side, depth + 1)
                       for side in (expr.left, expr.right))
        if isinstance(expr, nodes.Mod):
            return str_const(expr.left) or built(expr.left, depth + 1)
        if isinstance(expr, nodes.Filter):
            return expr.name in STR_FILTERS or expr.node is not None and \
                built(expr.node, depth + 1)
        if isinstance(expr, nodes.Call):
            callee = expr.node
            return isinstance(callee, nodes.Getattr) and callee.attr in STR_METHODS or \
                isinstance(callee, nodes.Name) and (
                    callee.name in self.macros or callee.name == "caller" or
                    callee.name in KEYWORD_OBJECTS)
        if isinstance(expr, nodes.Getitem):
            return isinstance(expr.arg, nodes.Slice) or built(expr.node, depth + 1)
        if isinstance(expr, nodes.CondExpr):
            return built(expr.expr1, depth + 1) or expr.expr2 is not None and \
                built(expr.expr2, depth + 1)
        return self._holder_built(expr, depth)

    def _holder_built(self, expr: nodes.Node, depth: int) -> bool:
        """Containers of built strings, and names or members whose value is built."""
        if isinstance(expr, (nodes.List, nodes.Tuple)):
            return any(str_const(i) or self.string_built(i, depth + 1) for i in expr.items)
        if isinstance(expr, nodes.Dict):
            return any(str_const(p.value) or self.string_built(p.value, depth + 1)
                       for p in expr.items)
        if isinstance(expr, nodes.Getattr) and isinstance(expr.node, nodes.Name):
            return self._name_built(f"{expr.node.name}.{expr.attr}", depth) or \
                self._name_built(expr.node.name, depth)
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
            return any(any(self.string_built(i, depth + 1) for i in s.items)
                       if isinstance(s, (nodes.List, nodes.Tuple)) else
                       self.string_built(s, depth + 1)
                       for s in self.loop_sources.get(name, []))
        finally:
            self.resolving.discard(name)

    def from_context(self, expr: nodes.Node, depth: int = 0) -> bool:
        """Whether ``expr`` is (an alias of) a variable of the render context, such as
        ``bos_token``: a value the model's own config can supply."""
        if depth > self.limits.max_fold_depth:
            return True
        if isinstance(expr, nodes.Filter) and expr.node is not None:
            return self.from_context(expr.node, depth + 1)
        if not isinstance(expr, nodes.Name) or expr.name in self.loop_sources or \
                expr.name in self.resolving:
            return False
        exprs = self.aliases.get(expr.name)
        if not exprs:
            return expr.name not in self.bound_names
        self.resolving.add(expr.name)
        try:
            return any(self.from_context(e, depth + 1) for e in exprs[:self.limits.max_items])
        finally:
            self.resolving.discard(expr.name)
