"""Finding: one immutable value per problem found, with a position-free identity.

A scanner says *what* is wrong (rule, message, evidence, location inside the artifact);
the engine adds *where* (file path, member). The fingerprint leaves out offsets, times and
message wording so that the same problem has the same fingerprint across runs, file
order and small shifts inside a file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule


@dataclass(frozen=True, slots=True)
class Cvss:
    """A CVSS score as the JSON report shows it."""

    version: str
    vector_string: str
    base_score: float
    base_severity: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "vector_string": self.vector_string,
            "base_score": self.base_score,
            "base_severity": self.base_severity,
        }


@dataclass(frozen=True, slots=True)
class Location:
    """Another place where the same finding was reached (in-scan deduplication)."""

    file_path: str
    rel_path: str
    member: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"file_path": self.file_path, "rel_path": self.rel_path, "member": self.member}


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding is not counted: a .hexignore / config entry that matched it."""

    reason: str
    source: str
    expires: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "source": self.source, "expires": self.expires}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in one artifact.

    ``key`` is the evidence key that makes two findings of one rule in one file distinct
    (for example the dangerous global's name); it feeds the fingerprint, the offset does not.
    """

    rule: Rule
    message: str
    key: str = ""
    severity: Severity | None = None
    confidence: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict)
    offset: int | None = None
    line_number: int | None = None
    file_path: str = ""
    member: str | None = None
    rel_path: str = ""
    scanner: str = ""
    cvss: Cvss | None = None
    #: Per-finding overrides of the rule's text (a vulnerability has its own CWE, fix, links).
    cwe: tuple[str, ...] | None = None
    remediation: str | None = None
    references: tuple[str, ...] | None = None
    #: Advisory facts of a dependency finding: id, aliases, package, version, affected,
    #: fixed, epss, kev (see hexscan.supply); None for every other rule.
    vulnerability: Mapping[str, Any] | None = None
    #: Other places the same finding was reached in this scan (filled by post-processing).
    also_at: tuple[Location, ...] = ()
    #: History: "new" or "existing" against the previous scan of the target; None when the
    #: history is not consulted.
    status: str | None = None
    suppression: Suppression | None = None
    #: Present in the --baseline report, so it does not count for --fail-on.
    in_baseline: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, not {self.confidence}")

    @property
    def effective_cwe(self) -> tuple[str, ...]:
        return self.cwe if self.cwe is not None else self.rule.cwe

    @property
    def effective_remediation(self) -> str:
        return self.remediation if self.remediation is not None else self.rule.remediation

    @property
    def effective_references(self) -> tuple[str, ...]:
        return self.references if self.references is not None else self.rule.references

    @property
    def counts(self) -> bool:
        """Does this finding count for the score and --fail-on (not suppressed/baselined)?"""
        return self.suppression is None and not self.in_baseline

    @property
    def effective_severity(self) -> Severity:
        """The finding's own severity, or its rule's default."""
        return self.severity if self.severity is not None else self.rule.severity

    def located(self, *, file_path: str, rel_path: str, member: str | None,
                scanner: str) -> Finding:
        """Return a copy with the engine's location facts filled in."""
        return replace(self, file_path=file_path, rel_path=rel_path, member=member,
                       scanner=scanner)

    @property
    def report_order(self) -> tuple[int, str, str, str, str]:
        """How reports list findings: worst first, then by file, member, rule and key."""
        return (-self.effective_severity, self.file_path, self.member or "", self.rule.id,
                self.key)

    @property
    def fingerprint(self) -> str:
        """Stable identity: rule, root-relative path, member and evidence key."""
        parts = [self.rule.id, self.rel_path, self.member or "", self.key]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
