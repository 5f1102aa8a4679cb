"""Output format name -> renderer. Adding a format is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from hexscan.model.report import ScanReport
from hexscan.report import json as json_report
from hexscan.report import table, text

Renderer = Callable[[ScanReport, bool], str]

RENDERERS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_report.render,
    "table": table.render,
}


def render(name: str, report: ScanReport, color: bool) -> str:
    return RENDERERS[name](report, color)
