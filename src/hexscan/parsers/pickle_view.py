"""What the symbolic pickle machine reports: limits, per-global uses and the frozen view.

These records are the contract between the machine (``pickle_machine``) and the policy
(``policy.pickle_policy``): the machine fills a :class:`_Records` per stream, and the run
ends in one immutable :class:`PickleView` that the policy judges.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

USES = ("called", "constructed", "attribute", "referenced", "mutated", "resolved")
"""How a global is used. ``mutated``: BUILD/SETITEM/APPEND/setattr change a module or class.
``resolved``: a lookup function (``getattr``) called on a global and a constant name, so what it
reaches is known statically and recorded (as ``attribute``) and judged on its own."""

@dataclass(frozen=True)
class PickleLimits:
    """Bounds on one analysis. Hitting one is recorded in the view, never raised."""

    max_opcodes: int = 100_000_000
    max_memo_entries: int = 2_000_000
    max_stack_depth: int = 2_000_000
    max_nesting: int = 10_000
    """Depth of MARK nesting (metastack)."""
    max_value_bytes: int = 16 << 20
    """Larger str/bytes values are skipped; only their first ``kept_head_bytes`` are kept."""
    kept_head_bytes: int = 4096
    max_seconds: float = 120.0
    max_kept_items: int = 256
    """Items kept per list/tuple/dict/set (the count is always exact)."""
    max_globals: int = 100_000
    """Distinct (global, use) records."""
    max_nested_depth: int = 3
    max_nested_pickles: int = 64
    min_nested_bytes: int = 12


@dataclass(frozen=True)
class GlobalUse:
    """One global and one way the pickle uses it (first occurrence; ``count`` in all)."""

    module: str
    qualname: str
    use: str
    offset: int
    expression: str
    canonical: str
    """``module.qualname`` after Python-2 name mapping (``__builtin__``: ``builtins``)."""
    opcode: str
    stream: int
    count: int = 1

    @property
    def full(self) -> str:
        return f"{self.module}.{self.qualname}" if self.qualname else self.module


@dataclass(frozen=True)
class Malformation:
    offset: int
    message: str
    stream: int


@dataclass(frozen=True)
class LimitHit:
    limit: str
    offset: int
    message: str


@dataclass(frozen=True)
class ExtensionUse:
    offset: int
    code: int
    module: str | None
    name: str | None


@dataclass(frozen=True)
class PersistentRef:
    offset: int
    expression: str


@dataclass(frozen=True)
class StreamInfo:
    index: int
    start: int
    end: int
    protocol: int
    opcodes: int
    complete: bool
    """Reached STOP."""
    result: str
    """Rendered top-level value."""


@dataclass(frozen=True)
class TrailingData:
    offset: int
    length: int


@dataclass(frozen=True)
class NestedPickle:
    offset: int
    """Offset (in the enclosing stream) of the opcode that produced the str/bytes value."""
    encoding: str
    """``raw``, ``base64`` or ``hex``."""
    depth: int
    view: PickleView


@dataclass(frozen=True)
class EmbeddedContainer:
    """Bytes handed to a loader that reads them as a file (a torch zip), to walk as one."""

    offset: int
    """Offset (in the enclosing stream) of the opcode that produced the bytes."""
    kind: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class PickleView:
    """Everything the machine saw. Offsets are relative to where the input started."""

    streams: tuple[StreamInfo, ...] = ()
    globals: tuple[GlobalUse, ...] = ()
    extensions: tuple[ExtensionUse, ...] = ()
    persistent_ids: tuple[PersistentRef, ...] = ()
    persistent_id_count: int = 0
    malformations: tuple[Malformation, ...] = ()
    limit_hits: tuple[LimitHit, ...] = ()
    trailing: tuple[TrailingData, ...] = ()
    nested: tuple[NestedPickle, ...] = ()
    containers: tuple[EmbeddedContainer, ...] = ()
    opcode_count: int = 0
    bytes_read: int = 0
    truncated_values: int = 0

    def global_names(self, *, nested: bool = True) -> set[str]:
        """Every global named or reached (``module.qualname`` and canonical forms)."""
        names = {g.full for g in self.globals} | {g.canonical for g in self.globals}
        if nested:
            for inner in self.nested:
                names |= inner.view.global_names()
        return names


@dataclass
class _Records:
    """What one stream (or, merged, the whole run) recorded."""

    uses: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    """(module, qualname, use[, stream]) -> [first GlobalUse, count]."""
    malformations: list[Malformation] = field(default_factory=list)
    limits: list[LimitHit] = field(default_factory=list)
    extensions: list[ExtensionUse] = field(default_factory=list)
    persistent: list[PersistentRef] = field(default_factory=list)
    persistent_count: int = 0
    candidates: list[tuple[int, str, bytes]] = field(default_factory=list)
    containers: list[EmbeddedContainer] = field(default_factory=list)
    streams: list[StreamInfo] = field(default_factory=list)
    trailing: list[TrailingData] = field(default_factory=list)

    def saw_code(self) -> bool:
        """Did this stream name a global, extension or persistent id (a pickle, not junk)?"""
        return bool(self.uses or self.extensions or self.persistent_count)

    def merge(self, other: _Records) -> None:
        for key, (record, count) in other.uses.items():
            key = (*key, record.stream)
            if key in self.uses:
                self.uses[key][1] += count
            else:
                self.uses[key] = [record, count]
        self.malformations += other.malformations
        self.limits += other.limits
        self.extensions += other.extensions
        self.persistent += other.persistent[: max(16 - len(self.persistent), 0)]
        self.persistent_count += other.persistent_count
        self.candidates += other.candidates

    def use_records(self) -> list[GlobalUse]:
        return [_with_count(record, count) for record, count in self.uses.values()]


def _with_count(record: GlobalUse, count: int) -> GlobalUse:
    return record if record.count == count else dataclasses.replace(record, count=count)
