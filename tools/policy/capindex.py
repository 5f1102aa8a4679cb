"""Index Python source trees with ``ast`` for the capability map (nothing is imported or run).

:func:`index_tree` parses every ``.py`` file into a :class:`ModuleInfo` (its top-level bindings:
``def``, ``class``, ``import a.b as c``, ``from x import y as z`` with relative levels,
``from x import *``, ``name = other.name`` aliases, also inside ``if``/``try``) and a
:class:`DefInfo` per function, method and class, with the call sites of each callable.
``capgraph.py`` resolves those into a call graph. What is not resolved is listed there.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BUILTIN_NAMES = frozenset(dir(builtins))
_INSPECTING_BUILTINS = frozenset({
    "isinstance", "issubclass", "hasattr", "getattr", "setattr", "callable", "id", "type",
    "repr", "str", "print", "len", "bool", "super", "vars", "dir", "hash",
})
"""Builtins that look at their arguments without calling them."""


@dataclass(frozen=True)
class CallSite:
    """A call inside a callable.

    ``kind`` is ``name`` (``target`` is a binding, see :class:`ModuleInfo`, and ``tail`` the
    attributes read from it), ``self`` or ``super`` (``target`` is ``<class>:<method>``).
    """

    kind: str
    target: str
    tail: tuple[str, ...]
    constant_args: bool


@dataclass
class DefInfo:
    """A function, method or class found in the source."""

    name: str
    kind: str
    """``function`` or ``class``."""
    module: str
    calls: list[CallSite] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)
    methods: dict[str, str] = field(default_factory=dict)


@dataclass
class ModuleInfo:
    name: str
    bindings: dict[str, str] = field(default_factory=dict)
    """Local name -> a binding: ``def:<full name>``, ``mod:<module>`` (``import a.b as c``),
    ``from:<module>:<name>`` (``from m import n``: the attribute, else the submodule) or
    ``alias:<module>:<dotted>`` (``x = y.z``: resolved through ``<module>``'s own bindings)."""
    star: list[str] = field(default_factory=list)


def module_name(root: Path, path: Path, prefix: str = "") -> tuple[str, bool]:
    """``(dotted module name, is package)`` of ``path`` under the source root ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    name = ".".join(parts)
    return (f"{prefix}.{name}" if prefix and name else prefix or name), is_package


def iter_sources(root: Path, packages: Iterable[str]) -> Iterator[tuple[str, bool, Path]]:
    """Every ``.py`` file of the top-level ``packages`` (dirs or single modules) under ``root``."""
    for top in sorted(packages):
        directory, single = root / top, root / f"{top}.py"
        if directory.is_dir():
            for path in sorted(directory.rglob("*.py")):
                rel = path.relative_to(root).parts
                if any(not p.isidentifier() for p in rel[:-1]):
                    continue  # not importable (tests data, vendored trees with dashes)
                name, is_package = module_name(root, path)
                yield name, is_package, path
        elif single.is_file():
            yield top, False, single


def index_tree(root: Path, packages: Iterable[str], defs: dict[str, DefInfo],
               modules: dict[str, ModuleInfo]) -> int:
    """Parse the packages under ``root`` into ``defs``/``modules``; returns files that failed."""
    failed = 0
    for name, is_package, path in iter_sources(root, packages):
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
            failed += 1
            continue
        modules[name] = _Indexer(name, is_package, defs).module(tree)
    return failed


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target or ""
    parts = module.split(".")
    keep = len(parts) - level + (1 if is_package else 0)
    base = ".".join(parts[:max(keep, 0)])
    return f"{base}.{target}" if target and base else (target or base)


class _Indexer:
    def __init__(self, module: str, is_package: bool, defs: dict[str, DefInfo]) -> None:
        self.name, self.is_package, self.defs = module, is_package, defs

    def module(self, tree: ast.Module) -> ModuleInfo:
        info = ModuleInfo(self.name)
        self._body(tree.body, info.bindings, info, prefix=self.name)
        return info

    def _body(self, body: list[ast.stmt], bindings: dict[str, str], info: ModuleInfo | None,
              prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                full = f"{prefix}.{node.name}"
                bindings[node.name] = f"def:{full}"
                self._function(node, full, None)
            elif isinstance(node, ast.ClassDef):
                full = f"{prefix}.{node.name}"
                bindings[node.name] = f"def:{full}"
                self._class(node, full, bindings)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                self._imports(node, bindings, info)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], _dotted(node.value)
                if isinstance(target, ast.Name) and value and value != target.id:
                    bindings[target.id] = f"alias:{self.name}:{value}"
            elif isinstance(node, ast.If | ast.Try):  # guarded imports and definitions
                for block in _blocks(node):
                    self._body(block, bindings, info, prefix)

    def _imports(self, node: ast.Import | ast.ImportFrom, bindings: dict[str, str],
                 info: ModuleInfo | None) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bindings[alias.asname] = f"mod:{alias.name}"
                else:
                    head = alias.name.split(".")[0]
                    bindings[head] = f"mod:{head}"
            return
        source = _absolute(self.name, self.is_package, node.level, node.module)
        for alias in node.names:
            if alias.name == "*":
                if info is not None:
                    info.star.append(source)
                continue
            bindings[alias.asname or alias.name] = f"from:{source}:{alias.name}"

    def _class(self, node: ast.ClassDef, full: str, outer: dict[str, str]) -> None:
        info = DefInfo(full, "class", self.name)
        info.bases = [f"alias:{self.name}:{d}" for b in node.bases if (d := _dotted(b))]
        self.defs[full] = info
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                method = f"{full}.{item.name}"
                info.methods[item.name] = method
                self._function(item, method, full)
            elif isinstance(item, ast.ClassDef):
                self._class(item, f"{full}.{item.name}", outer)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, full: str,
                  owner: str | None) -> None:
        info = DefInfo(full, "function", self.name)
        self.defs[full] = info
        local_imports: dict[str, str] = {}
        shadowed = {a.arg for a in (*node.args.posonlyargs, *node.args.args,
                                    *node.args.kwonlyargs)}
        shadowed |= {a.arg for a in (node.args.vararg, node.args.kwarg) if a}
        selfname = next(iter(node.args.posonlyargs + node.args.args), None)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import | ast.ImportFrom):
                self._imports(sub, local_imports, None)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                shadowed.add(sub.id)
        shadowed -= set(local_imports)
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Call):
                continue
            # A function passed as an argument (``retry(...)(urlopen)``, ``map(eval, xs)``,
            # ``pool.submit(os.system, cmd)``) is taken to be called by the callee.
            inspects = isinstance(sub.func, ast.Name) and sub.func.id in _INSPECTING_BUILTINS
            passed = [] if inspects else [
                ast.Call(func=a, args=[], keywords=[])
                for a in (*sub.args, *(k.value for k in sub.keywords))
                if isinstance(a, ast.Name | ast.Attribute)]
            for call in (sub, *passed):
                site = self._site(call, owner, selfname.arg if selfname else None,
                                  local_imports, shadowed)
                if site:
                    info.calls.append(site)

    def _site(self, call: ast.Call, owner: str | None, selfname: str | None,
              local_imports: Mapping[str, str], shadowed: set[str]) -> CallSite | None:
        constant = _all_constant(call)
        func = call.func
        if (owner and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super"):
            return CallSite("super", f"{owner}:{func.attr}", (), constant)
        dotted = _dotted(func)
        if (dotted is None and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and (maker := _dotted(func.value.func))):
            dotted = f"{maker}.{func.attr}"  # Maker(...).method(...): the class's method
        if not dotted:
            return None
        head, _, tail = dotted.partition(".")
        if owner and selfname and head == selfname and tail and "." not in tail:
            return CallSite("self", f"{owner}:{tail}", (), constant)
        rest = tuple(tail.split(".")) if tail else ()
        if head in local_imports:
            return CallSite("name", local_imports[head], rest, constant)
        if head in shadowed:
            return None
        return CallSite("name", f"alias:{self.name}:{head}", rest, constant)


def _blocks(node: ast.If | ast.Try) -> list[list[ast.stmt]]:
    if isinstance(node, ast.If):
        return [node.body, node.orelse]
    return [node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody]


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List):
        return all(_is_constant(e) for e in node.elts)
    return False


def _all_constant(call: ast.Call) -> bool:
    values = [*call.args, *(k.value for k in call.keywords)]
    return bool(values) and all(_is_constant(v) for v in values)


