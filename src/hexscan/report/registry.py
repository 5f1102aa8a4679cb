"""Output format name -> renderer module. Adding a format is one module and one line here.

Modules are imported only when their format is asked for, so ``hex scan`` does not pay for
cyclonedx-python-lib or the HTML template unless it writes them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from hexscan.model.report import ScanReport

Renderer = Callable[[ScanReport, bool], str]

#: format name -> module under hexscan.report with ``render(report, color) -> str``.
RENDERERS: dict[str, str] = {
    "text": "text",
    "json": "json",
    "table": "table",
    "sarif": "sarif",
    "junit": "junit",
    "xml": "junit",
    "cyclonedx": "cyclonedx",
    "html": "html",
}


def renderer(name: str) -> Renderer:
    module = importlib.import_module(f"hexscan.report.{RENDERERS[name]}")
    fn: Renderer = module.render
    return fn


def render(name: str, report: ScanReport, color: bool) -> str:
    return renderer(name)(report, color)
