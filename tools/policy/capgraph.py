"""Static call graph of Python source trees, read with ``ast`` (nothing is imported or run).

The capability map (``gen_capabilities.py``) asks one question of a library: which of its
callables can reach a dangerous sink (process, eval, network, file, nested deserialisation,
dynamic import) in a few calls? This module answers it for any set of source trees:

1. ``capindex.index_tree`` parses every ``.py`` file into a ``ModuleInfo``: its top-level
   bindings (``def``, ``class``, ``import a.b as c``, ``from x import y as z`` with relative
   levels, ``from x import *``, ``name = other.name``) and, per callable, its call sites.
2. :class:`Graph` resolves a name the way ``pickle.find_class`` reaches it (import the
   module, then walk attributes through bindings and re-exports) and turns call
   sites into edges: to another def, to a class (its ``__init__``/``__new__`` along the bases), to
   ``self.m``/``cls.m``/``super().m`` through the class's bases, or to a sink.
3. :func:`capabilities` runs a breadth-first search backwards from the sinks, bounded in depth,
   and keeps for every node and capability the next hop of one shortest chain.

Not resolved (documented in docs/capabilities.md): calls through local variables, parameters,
containers and return values (``f = pick(); f()``), ``getattr`` with computed names, module-level
``__getattr__`` forwarding, callbacks passed as values, decorators that replace a function, and
C extensions. A sink call whose arguments are all literals (``import_module("scipy.sparse")``,
``open("/proc/cpuinfo")``) cannot be steered by a pickle and is not an edge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from capindex import BUILTIN_NAMES, CallSite, DefInfo, ModuleInfo

_RESOLVE_BUDGET = 40
"""Alias hops one resolution may follow (re-export cycles end here)."""

# ------------------------------------------------------------------------------ resolution

SinkMatcher = Callable[[str], str | None]
"""Dotted name -> the sink it names (its canonical spelling), or None."""


class Graph:
    """Resolution of names and call sites over indexed modules and defs."""

    def __init__(self, defs: dict[str, DefInfo], modules: dict[str, ModuleInfo],
                 sink_of: SinkMatcher, barriers: Callable[[str], bool] = lambda _: False) -> None:
        self.defs, self.modules, self.sink_of, self.barrier = defs, modules, sink_of, barriers
        self._mro: dict[str, dict[str, str]] = {}
        self._bound: dict[tuple[str, str], str | None] = {}

    def resolve(self, module: str, qualname: str) -> str | None:
        """What ``find_class(module, qualname)`` reaches: import ``module``, then getattr.

        ``def:<name>``, ``sink:<name>``, ``module:<name>`` or None when it is not known.
        """
        return self._value(f"mod:{module}", qualname.split("."), _RESOLVE_BUDGET)

    def _value(self, binding: str, tail: list[str], budget: int) -> str | None:
        if budget <= 0:
            return None
        kind, _, rest = binding.partition(":")
        if kind == "def":
            return self._def_member(rest, tail)
        if kind == "mod":
            if not tail:
                return f"module:{rest}"
            return self._attribute(rest, tail[0], tail[1:], budget - 1)
        if kind == "from":
            module, _, name = rest.partition(":")
            return self._attribute(module, name, tail, budget - 1)
        if kind == "alias":
            module, _, dotted = rest.partition(":")
            head, *more = dotted.split(".")
            bound = self._binding(module, head, set())
            if bound is None and head in BUILTIN_NAMES:
                bound = f"from:builtins:{head}"
            return self._value(bound, more + tail, budget - 1) if bound else None
        return None

    def _attribute(self, module: str, name: str, tail: list[str], budget: int) -> str | None:
        sink = self.sink_of(".".join([module, name, *tail]))
        if sink:
            return f"sink:{sink}"
        if module not in self.modules:
            return None
        bound = self._binding(module, name, set())
        if (bound is None or bound == f"from:{module}:{name}") and (
                f"{module}.{name}" in self.modules):
            bound = f"mod:{module}.{name}"  # ``from . import sub`` in the package itself
        return self._value(bound, tail, budget) if bound else None

    def _def_member(self, name: str, tail: list[str]) -> str | None:
        sink = self.sink_of(".".join([name, *tail]))
        if sink:
            return f"sink:{sink}"
        node = self.defs.get(name)
        for attr in tail:
            if node is None or node.kind != "class":
                return None
            member = self.methods(node.name).get(attr)
            node = self.defs.get(member) if member else self.defs.get(f"{node.name}.{attr}")
        return f"def:{node.name}" if node else None

    def _binding(self, module: str, name: str, seen: set[str]) -> str | None:
        key = (module, name)
        if key not in self._bound:
            self._bound[key] = self._binding_uncached(module, name, seen)
        return self._bound[key]

    def _binding_uncached(self, module: str, name: str, seen: set[str]) -> str | None:
        info = self.modules.get(module)
        if info is None or module in seen:
            return None
        seen.add(module)
        if name in info.bindings:
            return info.bindings[name]
        if name.startswith("_"):
            return None  # ``from m import *`` skips private names (``__all__`` is not read)
        for source in info.star:
            found = self._binding(source, name, seen)
            if found:
                return found
        return None

    def names(self, module: str) -> set[str]:
        """Every name ``module`` binds, including public names pulled in by ``import *``."""
        found: set[str] = set()
        todo, seen = [module], set()
        while todo:
            current = todo.pop()
            if current in seen or current not in self.modules:
                continue
            seen.add(current)
            own = self.modules[current].bindings
            found |= set(own) if current == module else {n for n in own if not n.startswith("_")}
            todo.extend(self.modules[current].star)
        return found

    def methods(self, cls: str, depth: int = 0) -> dict[str, str]:
        """Method name -> def: own methods first, then the bases' (depth-first, simple MROs)."""
        if cls in self._mro:
            return self._mro[cls]
        self._mro[cls] = {}  # cycle guard
        info = self.defs[cls]
        merged: dict[str, str] = {}
        if depth < 30:
            for base in self._bases(info):
                for k, v in self.methods(base, depth + 1).items():
                    merged.setdefault(k, v)
        merged = {**merged, **info.methods}
        self._mro[cls] = merged
        return merged

    def _bases(self, info: DefInfo) -> list[str]:
        found = []
        for base in info.bases:
            resolved = self._value(base, [], _RESOLVE_BUDGET)
            if resolved and resolved.startswith("def:") and self.defs[resolved[4:]].kind == "class":
                found.append(resolved[4:])
        return found

    def edges(self, name: str) -> list[str]:
        """Targets (``def:`` / ``sink:``) that calling ``name`` may run, sorted."""
        info = self.defs[name]
        found: set[str] = set()
        if info.kind == "class":
            methods = self.methods(name)
            found.update(f"def:{methods[m]}" for m in ("__init__", "__new__") if m in methods)
            for base in info.bases:  # a subclass of a sink class (pickle.Unpickler) is one
                resolved = self._value(base, [], _RESOLVE_BUDGET)
                if resolved and resolved.startswith("sink:"):
                    found.add(resolved)
        for site in info.calls:
            target = self._site_target(site)
            if target is None or (target.startswith("sink:") and site.constant_args):
                continue
            if not self.barrier(target.split(":", 1)[1]):
                found.add(target)
        return sorted(found)

    def _site_target(self, site: CallSite) -> str | None:
        if site.kind == "name":
            resolved = self._value(site.target, list(site.tail), _RESOLVE_BUDGET)
            return resolved if resolved and not resolved.startswith("module:") else None
        owner, _, attr = site.target.partition(":")
        if owner not in self.defs:
            return None
        if site.kind == "self":
            method = self.methods(owner).get(attr)
        else:
            method = next((m for b in self._bases(self.defs[owner])
                           if (m := self.methods(b).get(attr))), None)
        return f"def:{method}" if method else None


@dataclass(frozen=True)
class Reach:
    """How one node reaches the sinks: per capability, the next hop of a shortest chain."""

    next_hop: Mapping[str, str]
    """capability -> ``def:<name>`` or ``sink:<name>``."""


def capabilities(graph: Graph, sink_caps: Callable[[str], Iterable[str]],
                 max_depth: Mapping[str, int]) -> dict[str, Reach]:
    """Every def that reaches a sink within ``max_depth[capability]`` calls, one chain each.

    A breadth-first search per capability over the reversed call graph: a def that calls a sink
    is at depth 1, its callers at depth 2, and so on. Ties are broken by name, so the output is
    deterministic.
    """
    reverse: dict[str, set[str]] = {}
    direct: dict[str, dict[str, str]] = {}
    for name in sorted(graph.defs):
        for target in graph.edges(name):
            if target.startswith("sink:"):
                for cap in sink_caps(target[5:]):
                    best = direct.setdefault(cap, {})
                    best[name] = min(best.get(name, target), target)
            else:
                reverse.setdefault(target[4:], set()).add(name)
    hops: dict[str, dict[str, str]] = {}
    for cap in sorted(direct):
        frontier = deque(sorted(direct[cap]))
        seen = dict.fromkeys(frontier, 1)
        for n in frontier:
            hops.setdefault(n, {})[cap] = direct[cap][n]
        while frontier:
            node = frontier.popleft()
            if seen[node] >= max_depth[cap]:
                continue
            for caller in sorted(reverse.get(node, ())):
                if caller not in seen:
                    seen[caller] = seen[node] + 1
                    hops.setdefault(caller, {})[cap] = f"def:{node}"
                    frontier.append(caller)
    return {name: Reach(dict(sorted(h.items()))) for name, h in sorted(hops.items())}


def chain(reach: Mapping[str, Reach], start: str, cap: str) -> list[str]:
    """``[start, ..., sink]`` for ``cap`` following the stored next hops."""
    out = [start]
    node = start
    while len(out) < 64:
        hop = reach[node].next_hop[cap]
        out.append(hop.split(":", 1)[1])
        if hop.startswith("sink:"):
            break
        node = hop[4:]
    return out
