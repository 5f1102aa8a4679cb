"""The Scanner protocol and the context a scanner receives.

A scanner knows one risk. It is told the artifact's identified format and reads bytes
through the artifact; it never walks containers, opens files by path or identifies
formats itself (the pipeline does all three).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.formats.identify import Identification
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.rules._rule import Rule


@dataclass(frozen=True)
class ScanContext:
    """What a scanner may know besides the artifact: its format, limits and options.

    ``options`` carries scan-wide settings a scanner may need (e.g. ``vulndb``: the
    vulnerability DB path, ``home``: HEX_HOME).

    ``file_state`` is shared by every artifact of one top-level file (the file and all its
    container members) and fresh for the next file: the engine owns that boundary, so a
    scanner that budgets work per file keeps its budget here, keyed by its name.
    """

    identification: Identification
    limits: ResourceLimits
    options: Mapping[str, Any] = field(default_factory=dict)
    file_state: dict[str, Any] = field(default_factory=dict)
    #: Facts this artifact's scanners recorded (see ``record``); the engine collects them.
    facts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Bytes inside this artifact that a loader reads as a file of their own (a torch zip
    #: given to ``torch.storage._load_from_bytes``): (name, bytes). The engine walks each
    #: like a container member, so every scanner sees it and findings stay in this file.
    embedded: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def format(self) -> Format:
        return self.identification.format

    def record(self, kind: str, **data: Any) -> None:
        """Note a fact that is not a finding (a dependency, a model card field...).

        The engine attaches the location; inventories such as the SBOM read them.
        """
        self.facts.append((kind, data))


@runtime_checkable
class Scanner(Protocol):
    """A check family. ``formats`` None means every artifact."""

    name: ClassVar[str]
    version: ClassVar[int]
    formats: ClassVar[frozenset[Format] | None]
    rules: ClassVar[tuple[Rule, ...]]

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterable[Finding]:
        """Yield findings for one artifact."""
        ...


class KindQuota:
    """How many findings of each kind one artifact may still report.

    A hostile model can repeat one bad node a million times; past the quota the rest of
    that kind add nothing a reader can act on, only report size.
    """

    def __init__(self, per_kind: int) -> None:
        self.per_kind = per_kind
        self.counts: dict[str, int] = {}

    def allow(self, kind: str) -> bool:
        """Count one more ``kind``; True while it is within the quota."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return self.counts[kind] <= self.per_kind


def applies(scanner: Scanner, fmt: Format) -> bool:
    """The cheap gate: does this scanner look at this format at all?"""
    return scanner.formats is None or fmt in scanner.formats
