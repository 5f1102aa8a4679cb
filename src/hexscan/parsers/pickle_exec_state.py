"""Library classes whose own ``__setstate__`` executes code taken from the pickled state.

SciPy's distributions (``scipy.stats`` ``rv_generic`` and its subclasses) pickle their
``_parse_arg_template`` attribute, and ``rv_generic.__setstate__`` runs
``exec(self._parse_arg_template, ns)`` to rebuild three argument-parsing methods. A pickle that
constructs any distribution class and hands BUILD another template runs that code on load,
whatever the policy says about the class. A benign pickle carries scipy's own template: three
``def`` statements (``_parse_args``, ``_parse_args_rvs``, ``_parse_args_stats``) whose
parameters are identifiers with constant defaults and whose bodies return a tuple of names or
call ``self._argcheck_rvs`` with names. :func:`foreign_exec_state` accepts exactly that shape,
parsed with ``ast`` (never executed); anything else is reported as the ``exec`` call it is.
"""

from __future__ import annotations

import ast
from typing import Any

_TEMPLATE_KEY = "_parse_arg_template"
_TEMPLATE_OWNERS = ("scipy.stats.",)
_METHODS = frozenset({"_parse_args", "_parse_args_rvs", "_parse_args_stats"})
_MAX_TEMPLATE = 4096


def foreign_exec_state(class_name: str, state_items: list[tuple[Any, Any]]) -> Any | None:
    """The state value the class's ``__setstate__`` would ``exec`` when it is not the library's
    own template; None when there is none or it is the library's own."""
    if not class_name.startswith(_TEMPLATE_OWNERS):
        return None
    for key, value in state_items:
        if key == _TEMPLATE_KEY:
            return None if isinstance(value, str) and scipy_template(value) else value
    return None


def scipy_template(text: str) -> bool:
    """True when ``text`` is scipy's argument-parser template (any shapes, loc/scale forms)."""
    if len(text) > _MAX_TEMPLATE:
        return False
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    return (len(tree.body) == 3 and sorted(names) == sorted(_METHODS)
            and all(_plain_def(node) for node in tree.body))


def _plain_def(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef) or node.decorator_list or node.returns:
        return False
    args = node.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        return False
    if any(a.annotation for a in args.args) or not all(
            isinstance(d, ast.Constant) for d in args.defaults):
        return False
    if len(node.body) != 1 or not isinstance(node.body[0], ast.Return):
        return False
    value = node.body[0].value
    if isinstance(value, ast.Tuple):
        return all(_leaf(e) or (isinstance(e, ast.Tuple) and all(_leaf(x) for x in e.elts))
                   for e in value.elts)
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "self"
            and value.func.attr == "_argcheck_rvs" and all(_leaf(a) for a in value.args)
            and all(kw.arg == "size" and _leaf(kw.value) for kw in value.keywords))


def _leaf(node: ast.expr) -> bool:
    return isinstance(node, (ast.Name, ast.Constant))
