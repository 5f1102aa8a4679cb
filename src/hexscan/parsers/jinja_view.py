"""What the Jinja2 walker reports about a template (parsers/jinja), as frozen records."""

from __future__ import annotations

from dataclasses import dataclass


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
    max_folds: int = 300_000
    """Folding steps per template (macros are folded per call: nested calls multiply)."""
