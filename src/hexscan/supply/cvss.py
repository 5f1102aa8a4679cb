"""CVSS scores for vulnerability findings, which vector to show, and the severity policy.

Scores come from the ``cvss`` library (Red Hat Product Security, LGPL-3.0-or-later,
imported unmodified): CVSS v4.0 is a lookup over macrovectors, not a formula, and v3.x
needs the specification's exact Roundup, so neither is re-implemented here. Upstream
records carry vector strings only (OSV has no numeric score), so hex computes every score.

Which vector a finding shows (``best``) — the first available in this order:

1. NVD primary CVSS v3.1
2. NVD primary CVSS v3.0
3. OSV (GHSA, PYSEC...) CVSS v3.x, v3.1 before v3.0
4. NVD secondary (CNA) CVSS v3.x, v3.1 before v3.0
5. CVSS v4.0 from any origin (NVD primary, then OSV, then NVD secondary)
6. CVSS v2 from any origin, in the same origin order

v3.x comes first because it is what the report's JSON shows and what most tools and
advisories still quote; NVD's own analysis is the reference scorer. A v4.0 vector is kept
when it is the only one, and v2 is a last resort for old CVEs. Vectors that do not parse
are skipped. Ties keep the input order.

Severity policy for a vulnerability finding (``finding_severity``):

- A malicious-package advisory (OSV ``MAL-``) is CRITICAL, whatever else is known.
- Otherwise the base is the CVSS band of the chosen vector: CRITICAL (9.0-10.0) ->
  critical, HIGH (7.0-8.9) -> high, MEDIUM (4.0-6.9) -> medium, LOW (0.1-3.9) -> low,
  NONE (0.0) -> info. No usable vector -> medium: unknown is not harmless.
- EPSS >= 0.1 (a 10 % or higher probability of exploitation activity in the next 30
  days, FIRST's model) raises it one level.
- Listed in CISA KEV (exploited in the wild) raises it one more level, to at least high.
- Raises stack (EPSS, then KEV) and stop at critical. EPSS and KEV never change the CVSS
  number itself; they only change the finding's severity.
"""

from __future__ import annotations

from collections.abc import Sequence

from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]

from hexscan.model.finding import Cvss
from hexscan.model.severity import Severity
from hexscan.supply.records import EpssScore, KevEntry, SeverityVector

#: EPSS probability (exploitation in the next 30 days) at which a finding is raised a level.
EPSS_RAISE_THRESHOLD = 0.1
#: Longer than any real vector (v4.0 with every optional metric is ~250 characters).
MAX_VECTOR = 512

_BANDS = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM,
          "LOW": Severity.LOW, "NONE": Severity.INFO}
#: Origin order inside one version group of ``best``; unknown origins come last.
_ORIGIN_RANK = {"nvd-primary": 0, "osv": 1, "nvd-secondary": 2}


def score(vector: str) -> Cvss | None:
    """The base score of a CVSS v4.0, v3.1, v3.0 or v2 vector; None when it is malformed.

    Never raises: a vector comes from an upstream feed, and one bad vector must not stop
    a scan. v2 vectors (no ``CVSS:`` prefix) get NVD's v2 bands (LOW/MEDIUM/HIGH, no
    CRITICAL), with 0.0 read as NONE like the later versions.
    """
    if not isinstance(vector, str):
        return None
    text = vector.strip()
    if not text or len(text) > MAX_VECTOR:
        return None
    try:
        return _score(text)
    except Exception:  # a third-party parser on upstream input: never raise
        return None


def _score(text: str) -> Cvss | None:
    if text.startswith("CVSS:4.0/"):
        v4 = float(CVSS4(text).base_score)
        return Cvss("4.0", text, v4, band(v4))
    if text.startswith(("CVSS:3.1/", "CVSS:3.0/")):
        v3 = float(CVSS3(text).base_score)
        return Cvss(text[5:8], text, v3, band(v3))
    if text.startswith("CVSS:"):
        return None
    v2 = float(CVSS2(text).base_score)
    return Cvss("2.0", text, v2, band_v2(v2))


def band(base_score: float) -> str:
    """The v3.x / v4.0 qualitative rating of a base score (specification section 5)."""
    if base_score >= 9.0:
        return "CRITICAL"
    if base_score >= 7.0:
        return "HIGH"
    if base_score >= 4.0:
        return "MEDIUM"
    if base_score > 0.0:
        return "LOW"
    return "NONE"


def band_v2(base_score: float) -> str:
    """NVD's v2 rating: the v3 bands without CRITICAL (0.0 read as NONE like v3)."""
    rating = band(base_score)
    return "HIGH" if rating == "CRITICAL" else rating


def best(vectors: Sequence[SeverityVector]) -> Cvss | None:
    """The score of the preferred vector (order in the module docstring), or None."""
    ranked = []
    for index, vector in enumerate(vectors):
        scored = score(vector.vector)
        if scored is not None:
            ranked.append((_rank(scored.version, vector.origin), index, scored))
    if not ranked:
        return None
    return min(ranked, key=lambda item: (item[0], item[1]))[2]


def _rank(version: str, origin: str) -> tuple[int, int, int]:
    """(version group, origin, version inside the group): smaller is preferred."""
    origin_rank = _ORIGIN_RANK.get(origin, len(_ORIGIN_RANK))
    if version in ("3.1", "3.0"):
        minor = 0 if version == "3.1" else 1
        if origin == "nvd-primary":
            return (0, minor, 0)
        return (1, origin_rank, minor)
    if version == "4.0":
        return (2, origin_rank, 0)
    return (3, origin_rank, 0)


def finding_severity(cvss: Cvss | None, epss: EpssScore | None, kev: KevEntry | None,
                     malicious: bool) -> Severity:
    """The severity of a vulnerability finding under the policy in the module docstring."""
    if malicious:
        return Severity.CRITICAL
    level = Severity.MEDIUM if cvss is None else _BANDS.get(cvss.base_severity.upper(),
                                                            Severity.MEDIUM)
    if epss is not None and epss.epss >= EPSS_RAISE_THRESHOLD:
        level = _raise(level)
    if kev is not None:
        level = max(Severity.HIGH, _raise(level))
    return level


def _raise(level: Severity) -> Severity:
    return Severity(min(level + 1, Severity.CRITICAL))
