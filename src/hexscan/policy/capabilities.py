"""The capability map: which library callables reach process, eval, network, file, nested
deserialisation or dynamic import, and through which calls.

Pickles reach gadgets inside trusted libraries (``pandas.read_pickle``, ``torch.hub`` helpers
re-exported as ``torch.utils.model_zoo.load_url``, ``sympy.sympify``...), often under an alias
module path that no hand-written list keeps up with. ``pickle_capabilities.json.gz`` is made
by ``tools/policy/gen_capabilities.py`` from the installed libraries' *source* (read with
``ast``, never imported; shipped gzip-compressed). This module loads it, validates it and
answers one question for the judge: does what a pickle does with a global (call it, or
construct it) reach a sink, and how?

Nothing here imports the libraries the map describes; the data is plain JSON read once.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hexscan.parsers.pickle_view import GlobalUse

__all__ = ["CRITICAL_CAPABILITIES", "CapabilityError", "CapabilityMap", "Gadget", "find_gadget",
           "load_capabilities"]

DATA_FILE = "pickle_capabilities.json.gz"
"""gzip-compressed JSON (deterministic: no name, mtime 0); about a tenth of the plain size."""
FORMAT = 1
KNOWN_CAPABILITIES = ("process", "eval", "deserialise", "import", "network", "file")
CRITICAL_CAPABILITIES = frozenset({"process", "eval", "deserialise", "import"})
"""Capabilities that run code of the attacker's choosing; network and file access are HIGH."""
_CLASS_ENTRY_POINTS = {"constructed": ("__new__", "__setstate__")}
"""What runs when a pickle only constructs a class (NEWOBJ, then BUILD)."""
_MAX_WALK = 32


class CapabilityError(ValueError):
    """The shipped capability data is malformed."""


@dataclass(frozen=True)
class Gadget:
    """A global whose use in a pickle reaches a sink."""

    use: GlobalUse
    capabilities: tuple[str, ...]
    chain: tuple[str, ...]
    """From the definition the pickle reaches to the sink, for the most severe capability."""

    @property
    def severity(self) -> str:
        return "CRITICAL" if CRITICAL_CAPABILITIES & set(self.capabilities) else "HIGH"

    @property
    def message(self) -> str:
        sink, through = self.chain[-1], self.chain[:-1]
        path = f" through {' -> '.join(through)}" if through else ""
        others = ", ".join(self.capabilities)
        verb = "is called" if self.use.use == "called" else "is constructed (__new__/__setstate__)"
        return (f"{self.use.full} reaches {sink}{path} ({others}; library gadget, see the "
                f"capability map); it {verb}: {self.use.expression}")


@dataclass(frozen=True)
class CapabilityMap:
    """Validated map. Build it with :func:`load_capabilities`."""

    capabilities: tuple[str, ...]
    sinks: tuple[str, ...]
    sink_bits: tuple[int, ...]
    nodes: Sequence[Sequence[Any]]
    """``[name, capability bits, next hop per capability present]`` (hop < 0: a sink)."""
    classes: Mapping[int, tuple[Sequence[int], Mapping[str, int | None]]]
    names: Mapping[str, Mapping[str, int]]
    versions: Mapping[str, str]

    def lookup(self, module: str, qualname: str) -> int | None:
        """The node (>= 0) or sink (< 0) ``find_class(module, qualname)`` reaches, if mapped.

        A dotted qualname is walked the way pickle walks it: through submodules bound as
        attributes (``torch`` + ``utils.model_zoo.load_url``), then class attributes.
        """
        parts = qualname.split(".")
        for cut in range(len(parts)):
            table = self.names.get(".".join([module, *parts[:cut]]))
            if table is not None and parts[cut] in table:
                return self._members(table[parts[cut]], parts[cut + 1:])
        return None

    def _members(self, ref: int, attrs: Sequence[str]) -> int | None:
        for attr in attrs:
            if ref not in self.classes:
                return None
            found = self.method(ref, attr)
            if found is None:
                return None
            ref = found
        return ref

    def method(self, cls: int, name: str, depth: int = 0) -> int | None:
        """A method of a mapped class (own first, then bases depth-first), if it reaches a sink."""
        bases, own = self.classes[cls]
        if name in own:
            return own[name]
        for base in bases:
            if depth < _MAX_WALK and (found := self.method(base, name, depth + 1)) is not None:
                return found
        return None

    def reach(self, ref: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(capabilities, chain to a sink for the most severe one)`` of a node or sink."""
        bits = self.sink_bits[-1 - ref] if ref < 0 else self.nodes[ref][1]
        caps = tuple(c for i, c in enumerate(self.capabilities) if bits >> i & 1)
        if ref < 0:
            return caps, (self.sinks[-1 - ref],)
        return caps, self.chain(ref, caps[0]) if caps else ()

    def chain(self, ref: int, capability: str) -> tuple[str, ...]:
        out: list[str] = []
        for _ in range(_MAX_WALK * 4):
            name, bits, hops = self.nodes[ref]
            out.append(name)
            present = [c for i, c in enumerate(self.capabilities) if bits >> i & 1]
            nxt = hops[present.index(capability)]
            if nxt < 0:
                out.append(self.sinks[-1 - nxt])
                break
            ref = nxt
        return tuple(out)

    def gadget(self, use: GlobalUse) -> Gadget | None:
        """The gadget ``use`` triggers, or None (only calls and constructions run anything)."""
        for module, qualname in _spellings(use):
            ref = self.lookup(module, qualname)
            if ref is None:
                continue
            if use.use == "called":
                found = self._gadget_of(use, ref)
            elif use.use == "constructed" and ref in self.classes:
                found = next((g for m in _CLASS_ENTRY_POINTS["constructed"]
                              if (r := self.method(ref, m)) is not None
                              and (g := self._gadget_of(use, r))), None)
            else:
                found = None
            if found:
                return found
        return None

    def _gadget_of(self, use: GlobalUse, ref: int) -> Gadget | None:
        caps, chain = self.reach(ref)
        return Gadget(use, caps, chain) if caps else None


def _spellings(use: GlobalUse) -> list[tuple[str, str]]:
    """``(module, qualname)`` as written, and as Python 3 imports it when that differs."""
    found = [(use.module, use.qualname)]
    suffix = f".{use.qualname}"
    if use.canonical != use.full and use.canonical.endswith(suffix):
        found.append((use.canonical[: -len(suffix)], use.qualname))
    return found


def find_gadget(uses: Iterable[GlobalUse]) -> Gadget | None:
    """The most severe gadget among the uses of one global (calls before constructions)."""
    found = [g for use in uses if use.use in ("called", "constructed")
             if (g := load_capabilities().gadget(use))]
    found.sort(key=lambda g: (g.severity != "CRITICAL", g.use.use != "called"))
    return found[0] if found else None


# ---------------------------------------------------------------------------- loading


@cache
def load_capabilities() -> CapabilityMap:
    """The shipped map (read and validated once per process)."""
    raw = resources.files("hexscan.policy").joinpath(DATA_FILE).read_bytes()
    try:
        data = json.loads(gzip.decompress(raw))
    except (OSError, EOFError, ValueError) as exc:
        raise CapabilityError(f"{DATA_FILE}: not gzip-compressed JSON ({exc})") from exc
    return parse_capabilities(data)


def parse_capabilities(data: Any) -> CapabilityMap:
    """Validate the data file's structure and build the map; :class:`CapabilityError` if bad."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CapabilityError(f"{DATA_FILE}: expected an object with format {FORMAT}")
    caps = data.get("capabilities")
    if not isinstance(caps, list) or not set(caps) <= set(KNOWN_CAPABILITIES) or not caps:
        raise CapabilityError(f"{DATA_FILE}: capabilities must be drawn from {KNOWN_CAPABILITIES}")
    sinks = _strings(data.get("sinks"), "sinks")
    sink_bits = data.get("sink_bits")
    if (not isinstance(sink_bits, list) or len(sink_bits) != len(sinks)
            or not all(isinstance(b, int) and 0 < b < 1 << len(caps) for b in sink_bits)):
        raise CapabilityError(f"{DATA_FILE}: sink_bits must give each sink's capabilities")
    nodes = _nodes(data.get("nodes"), len(sinks), len(caps))
    classes = _classes(data.get("classes"), len(nodes))
    names = _names(data.get("names"), len(nodes), len(sinks))
    versions = data.get("versions", {})
    if not isinstance(versions, dict):
        raise CapabilityError(f"{DATA_FILE}: versions must be an object")
    return CapabilityMap(tuple(caps), tuple(sinks), tuple(sink_bits), nodes, classes, names,
                         {str(k): str(v) for k, v in versions.items()})


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CapabilityError(f"{DATA_FILE}: {where} must be a list of names")
    return value


def _refs_in_range(refs: list[Any], nodes: int, sinks: int, where: str) -> None:
    """All of ``refs`` are ints in ``[-sinks, nodes)`` (checked in bulk: the map is large)."""
    if not refs:
        return
    if not all(type(r) is int for r in refs) or min(refs) < -sinks or max(refs) >= nodes:
        raise CapabilityError(f"{DATA_FILE}: {where}: reference out of range")


def _nodes(value: Any, sinks: int, ncaps: int) -> list[list[Any]]:
    if not isinstance(value, list):
        raise CapabilityError(f"{DATA_FILE}: nodes must be a list")
    limit = 1 << ncaps
    for i, node in enumerate(value):
        if (type(node) is not list or len(node) != 3 or type(node[0]) is not str
                or type(node[1]) is not int or not 0 <= node[1] < limit
                or type(node[2]) is not list or len(node[2]) != node[1].bit_count()):
            raise CapabilityError(f"{DATA_FILE}: node {i} is not [name, bits, hops]")
    _refs_in_range([h for node in value for h in node[2]], len(value), sinks, "nodes")
    return value


def _classes(value: Any, nodes: int) -> dict[int, tuple[list[int], dict[str, int | None]]]:
    if not isinstance(value, dict):
        raise CapabilityError(f"{DATA_FILE}: classes must be an object")
    out: dict[int, tuple[list[int], dict[str, int | None]]] = {}
    refs: list[Any] = []
    for key, entry in value.items():
        if (not key.isdigit() or int(key) >= nodes or type(entry) is not list or len(entry) != 2
                or type(entry[0]) is not list or type(entry[1]) is not dict):
            raise CapabilityError(f"{DATA_FILE}: class {key!r} is not [bases, methods]")
        refs += entry[0]
        refs += [r for r in entry[1].values() if r is not None]
        out[int(key)] = (entry[0], entry[1])
    if any(r < 0 for r in refs if type(r) is int):
        raise CapabilityError(f"{DATA_FILE}: classes: a base or method is a sink")
    _refs_in_range(refs, nodes, 0, "classes")
    return out


def _names(value: Any, nodes: int, sinks: int) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict) or not all(type(v) is dict for v in value.values()):
        raise CapabilityError(f"{DATA_FILE}: names must map modules to objects")
    _refs_in_range([r for table in value.values() for r in table.values()], nodes, sinks,
                   "names")
    return value
