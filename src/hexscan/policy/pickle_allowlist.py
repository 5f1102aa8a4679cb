"""The generated pickle allowlist (``pickle_allowlist.toml``): loading and validation.

The file is written by ``tools/policy/gen_pickle_allowlist.py`` from pickles of real objects of
the stdlib and the ML libraries, so that ordinary pickles are recognised by what their libraries
actually write rather than by a hand-kept list. Each name carries the uses hex's machine saw and
the library versions that produced it. It only ever *adds* allow entries: the policy applies its
dangerous entries before any allow entry, so a generated name can never silence a dangerous one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "ALLOWLIST_FILE",
    "GeneratedAllowlist",
    "GeneratedAllowlistError",
    "load_generated",
    "parse_generated",
]

ALLOWLIST_FILE = "pickle_allowlist.toml"
_USES = frozenset({"called", "constructed", "attribute", "referenced"})


class GeneratedAllowlistError(ValueError):
    """The generated allowlist does not have the shape the generator writes."""


@dataclass(frozen=True)
class GeneratedAllowlist:
    """Name -> allowed uses, and name -> provenance ("library version" strings)."""

    uses: Mapping[str, frozenset[str]]
    provenance: Mapping[str, tuple[str, ...]]
    sources: Mapping[str, Mapping[str, str]]
    """Record file -> the library versions it was collected with."""


def parse_generated(data: Mapping[str, Any], where: str = ALLOWLIST_FILE) -> GeneratedAllowlist:
    """Validate the parsed TOML; raise :class:`GeneratedAllowlistError` on any deviation."""
    if set(data) != {"version", "sources", "names"} or data["version"] != 1:
        raise GeneratedAllowlistError(f"{where}: expected version = 1, [sources] and [names]")
    sources = data["sources"]
    if not sources or not all(
        isinstance(v, Mapping) and all(isinstance(x, str) for x in v.values())
        for v in sources.values()
    ):
        raise GeneratedAllowlistError(f"{where}: [sources] must map record names to versions")
    uses: dict[str, frozenset[str]] = {}
    provenance: dict[str, tuple[str, ...]] = {}
    for name, entry in data["names"].items():
        _check_entry(name, entry, where)
        uses[name] = frozenset(entry["uses"])
        provenance[name] = tuple(entry["provenance"])
    return GeneratedAllowlist(uses, provenance, sources)


def _check_entry(name: str, entry: Any, where: str) -> None:
    if not name or " " in name or name.endswith("*") or name.startswith("."):
        raise GeneratedAllowlistError(f"{where}: invalid name {name!r}")
    if not isinstance(entry, Mapping) or set(entry) != {"uses", "provenance"}:
        raise GeneratedAllowlistError(f"{where}: {name}: expected uses and provenance")
    if not isinstance(entry["uses"], list) or not set(entry["uses"]) <= _USES:
        raise GeneratedAllowlistError(f"{where}: {name}: uses must be drawn from {sorted(_USES)}")
    provenance = entry["provenance"]
    if not (isinstance(provenance, list) and provenance
            and all(isinstance(p, str) and " " in p for p in provenance)):
        raise GeneratedAllowlistError(
            f"{where}: {name}: provenance must list 'library version' strings"
        )


@cache
def load_generated() -> GeneratedAllowlist:
    """The allowlist shipped with hex (read once per process)."""
    text = resources.files("hexscan.policy").joinpath(ALLOWLIST_FILE).read_text(encoding="utf-8")
    return parse_generated(tomllib.loads(text))
