"""``--baseline FILE``: findings already known from an earlier JSON report stop failing CI.

This lets a team adopt hex on a tree with known findings and fail only on new ones. The
baseline is a hex JSON report (``hex scan --json -o baseline.json``); a finding whose
fingerprint appears in its ``results`` or ``suppressed`` lists gets ``in_baseline``. It is
still shown, but does not count for ``--fail-on``. Fingerprints leave out offsets and the
scanned root, so a baseline taken in another checkout still applies.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hexscan.errors import ConfigError
from hexscan.model.report import ScanReport

#: A JSON report of a very large tree is tens of MB; far beyond that is not a report.
_MAX_BYTES = 512 * 1024 * 1024


def load_fingerprints(path: str) -> frozenset[str]:
    """The fingerprints of a previous report; ConfigError when it is not a hex report."""
    try:
        if Path(path).stat().st_size > _MAX_BYTES:
            raise ConfigError(f"baseline {path}: larger than {_MAX_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            data: Any = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ConfigError(f"baseline {path}: not a hex JSON report (no results list); "
                          "write one with `hex scan --json -o FILE`")
    found: set[str] = set()
    for section in ("results", "suppressed"):
        items = data.get(section) or []
        if not isinstance(items, list):
            raise ConfigError(f"baseline {path}: {section!r} is not a list")
        for n, item in enumerate(items):
            fingerprint = item.get("fingerprint") if isinstance(item, dict) else None
            if not isinstance(fingerprint, str) or not fingerprint:
                raise ConfigError(f"baseline {path}: {section}[{n}] has no fingerprint")
            found.add(fingerprint)
    return frozenset(found)


def apply(report: ScanReport, path: str | None) -> ScanReport:
    """Mark the findings present in the baseline report."""
    if path is None:
        return report
    known = load_fingerprints(path)
    return replace(report, findings=tuple(
        replace(f, in_baseline=True) if f.fingerprint in known else f
        for f in report.findings))
