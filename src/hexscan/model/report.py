"""What a scan produces: per-file entries, errors, findings, and the whole report."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hexscan.model.finding import Finding


class Status(enum.StrEnum):
    """What happened to one file or member."""

    SCANNED = "scanned"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One scanned file or container member."""

    path: str
    member: str | None
    format: str
    size: int | None
    status: Status
    reason: str | None = None
    sha256: str | None = None
    #: The file's path relative to the scanned root (what fingerprints and SARIF use).
    rel_path: str = ""


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """Something that kept the scan from being complete.

    ``kind`` is one of: unreadable, malformed, limit, timeout, crash, scanner-error.
    """

    path: str
    member: str | None
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Fact:
    """Something a scanner learnt that is not a problem: a dependency, a model card field.

    Facts feed inventories (the SBOM, the supply-chain matcher); ``kind`` names the shape
    of ``data`` ("dependency", "model-card", "framework-version", ...).
    """

    kind: str
    data: Mapping[str, Any]
    path: str = ""
    rel_path: str = ""
    member: str | None = None


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """How this scan compares with the previous scan of the same target."""

    new: int
    existing: int
    fixed: int
    previous_scan_id: str | None = None
    #: The findings that were there last time and are gone now (fingerprint, rule, path).
    fixed_findings: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TaskResult:
    """Everything one top-level file produced (itself and its members)."""

    path: str
    findings: tuple[Finding, ...] = ()
    files: tuple[FileEntry, ...] = ()
    errors: tuple[ErrorEntry, ...] = ()
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class ScanReport:
    """The final report that every reporter renders, and nothing else."""

    scan_id: str
    timestamp: str
    target: str
    version: str
    findings: tuple[Finding, ...]
    files: tuple[FileEntry, ...]
    errors: tuple[ErrorEntry, ...]
    duration_s: float
    fail_on: str = "HIGH"
    shown: tuple[str, ...] = field(default=("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"))
    #: --verbose: human-readable reports also list every file and member with its status.
    verbose: bool = False
    facts: tuple[Fact, ...] = ()
    #: Report-level warnings that are not about one file (e.g. a stale vulnerability DB).
    warnings: tuple[str, ...] = ()
    history: HistorySummary | None = None
    #: The scanned paths as given, absolute; SARIF makes artifact URIs relative to them.
    roots: tuple[str, ...] = ()

    @property
    def skipped(self) -> tuple[FileEntry, ...]:
        return tuple(f for f in self.files if f.status is Status.SKIPPED)

    @property
    def visible_findings(self) -> tuple[Finding, ...]:
        """The unsuppressed findings that ``--severity`` lets through."""
        return tuple(f for f in self.findings
                     if f.suppression is None and f.effective_severity.name in self.shown)

    @property
    def suppressed_findings(self) -> tuple[Finding, ...]:
        """Findings a suppression matched: reported with their reason, never counted."""
        return tuple(f for f in self.findings if f.suppression is not None)

    @property
    def complete(self) -> bool:
        return not self.errors
