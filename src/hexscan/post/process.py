"""After the scan, before the reporters: the steps that look at all findings at once.

Order matters and is written here once:
0. supply chain (hexscan.supply.match): match the scan's dependency facts against the
   vulnerability DB, check file hashes against the compromised-model feed, and warn when
   the DB is stale; first, so its findings can be deduplicated, suppressed and baselined
   like any other;
1. dedup: the same finding reached twice in one top-level file becomes one, with both
   locations;
2. suppressions (.hexignore and config): matching findings get a ``suppression`` (they are
   kept, listed apart and not counted);
3. baseline (--baseline): findings already in a previous report stop counting;
4. history: mark new / existing against the previous scan of the target and record this one.

Suppressions and baseline come before the history so that the store records which
findings were suppressed; the history comes last so that it records the final report.
Steps 2 and 3 raise ConfigError (exit 2) for a bad .hexignore, config entry or baseline.
"""

from __future__ import annotations

from hexscan.config import ScanConfig
from hexscan.model.report import ScanReport
from hexscan.post import baseline, dedup, history, suppress
from hexscan.supply import match


def finish(report: ScanReport, config: ScanConfig) -> ScanReport:
    """Apply every post-scan step in order; each returns a new report."""
    report = match.apply(report, config)
    report = dedup.apply(report)
    report = suppress.apply(report, config)
    report = baseline.apply(report, config.baseline)
    return history.apply(report, config)
