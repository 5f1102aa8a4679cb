"""Severity counts, the security score and the exit code.

security_score = max(0, round(100 - sum of penalties)), one penalty per finding:
CRITICAL 40, HIGH 20, MEDIUM 8, LOW 2, INFO 0, each multiplied by the finding's
confidence (0..1). So one certain CRITICAL leaves 60, three leave 0; a clean scan is 100.
The score describes findings only; an incomplete scan is shown by the exit code (3).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from hexscan.model.finding import Finding
from hexscan.model.report import ScanReport
from hexscan.model.severity import Severity

PENALTY = {Severity.CRITICAL: 40.0, Severity.HIGH: 20.0, Severity.MEDIUM: 8.0,
           Severity.LOW: 2.0, Severity.INFO: 0.0}

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3


def security_score(findings: Iterable[Finding]) -> int:
    """The 0..100 score described in the module docstring."""
    penalty = sum(PENALTY[f.effective_severity] * f.confidence for f in findings)
    return max(0, round(100 - penalty))


def summary(report: ScanReport) -> dict[str, Any]:
    """The JSON ``summary`` object (over the findings that are shown)."""
    shown = report.visible_findings
    counts = Counter(f.effective_severity for f in shown)
    out: dict[str, Any] = {
        "total_issues": len(shown),
        "critical": counts[Severity.CRITICAL],
        "high": counts[Severity.HIGH],
        "medium": counts[Severity.MEDIUM],
        "low": counts[Severity.LOW],
        "info": counts[Severity.INFO],
        "security_score": security_score(shown),
    }
    out["suppressed"] = len(report.suppressed_findings)
    if report.history is not None:
        out["new"] = report.history.new
        out["existing"] = report.history.existing
        out["fixed"] = report.history.fixed
    return out


def exit_code(report: ScanReport) -> int:
    """0 clean, 1 findings at/above fail-on, 3 incomplete (and nothing at/above fail-on).

    Suppressed findings and findings present in the ``--baseline`` report never count.
    Findings at or above the threshold decide the code even when the scan is also
    incomplete: a CI job must fail on a known payload whatever else went wrong.
    """
    threshold = Severity[report.fail_on]
    if any(f.counts and f.effective_severity >= threshold for f in report.findings):
        return EXIT_FINDINGS
    if report.errors:
        return EXIT_INCOMPLETE
    return EXIT_CLEAN
