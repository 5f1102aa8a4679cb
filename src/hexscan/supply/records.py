"""The records the vulnerability DB stores and the matcher reads, as typed values.

Feeds parse their upstream JSON/CSV into these; the DB stores and returns them; the matcher
and the dependency scanner only ever see these. OSV field names are kept (see the OSV
schema) so a record reads the same as its upstream JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RecordError(ValueError):
    """An upstream record does not have the shape its schema requires."""


@dataclass(frozen=True, slots=True)
class Event:
    """One OSV range event: exactly one of introduced / fixed / last_affected / limit."""

    kind: str  # "introduced" | "fixed" | "last_affected" | "limit"
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    type: str  # "ECOSYSTEM" | "SEMVER" | "GIT"
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Affected:
    """One ``affected[]`` entry: a package, its ranges and its explicit versions."""

    ecosystem: str
    name: str
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    purl: str | None = None


@dataclass(frozen=True, slots=True)
class SeverityVector:
    """A CVSS vector string from OSV (``severity[]``) or NVD, with where it came from."""

    type: str  # "CVSS_V2" | "CVSS_V3" | "CVSS_V4"
    vector: str
    origin: str = "osv"  # "osv" | "nvd-primary" | "nvd-secondary"


@dataclass(frozen=True, slots=True)
class Advisory:
    """One OSV advisory (GHSA, PYSEC, MAL, CVE...)."""

    id: str
    modified: str
    published: str | None = None
    withdrawn: str | None = None
    aliases: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    affected: tuple[Affected, ...] = ()
    severity: tuple[SeverityVector, ...] = ()
    references: tuple[str, ...] = ()
    cwes: tuple[str, ...] = ()

    @property
    def is_malicious(self) -> bool:
        """OSV's malicious-package advisories carry the MAL- prefix."""
        return self.id.startswith("MAL-")

    @property
    def cve(self) -> str | None:
        """The CVE id of this advisory: its own id or its first CVE alias."""
        for ident in (self.id, *self.aliases):
            if ident.startswith("CVE-"):
                return ident
        return None


@dataclass(frozen=True, slots=True)
class NvdCve:
    """What hex keeps of an NVD CVE record: vectors, CWEs, dates, status."""

    cve: str
    last_modified: str
    published: str | None = None
    vuln_status: str | None = None
    description: str = ""
    vectors: tuple[SeverityVector, ...] = ()
    cwes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EpssScore:
    cve: str
    epss: float
    percentile: float
    score_date: str
    model_version: str


@dataclass(frozen=True, slots=True)
class KevEntry:
    cve: str
    date_added: str
    due_date: str | None = None
    ransomware: str | None = None  # "Known" | "Unknown"
    vendor: str | None = None
    product: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ModelHash:
    """A known-malicious or compromised model file, by SHA-256 (and size when known)."""

    sha256: str
    size: int | None = None
    name: str = ""
    reason: str = ""
    reference: str | None = None
    added: str | None = None


@dataclass(frozen=True, slots=True)
class Dependency:
    """A (package, version) the model needs, and where that was read.

    ``version`` is an exact version (a pin or a lock entry); ``spec`` is the requirement
    text when no exact version is known (then nothing is matched against ranges).
    """

    ecosystem: str
    name: str
    version: str | None
    spec: str = ""
    source: str = ""  # the manifest kind: requirements, poetry.lock, config.json...
    line: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
