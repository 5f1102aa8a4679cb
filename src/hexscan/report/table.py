"""The table report (rich)."""

from __future__ import annotations

import io

from rich.markup import escape
from rich.table import Table

from hexscan.model.report import ScanReport
from hexscan.post.score import summary
from hexscan.report.text import STYLE, console_for


def render(report: ScanReport, color: bool = False) -> str:
    buffer = io.StringIO()
    out = console_for(buffer, color, width=160)
    table = Table(title=f"hex {report.version}: {escape(report.target)}")
    with_status = report.history is not None
    columns = ("Severity", "Rule", "File", "Member", "Finding") + (("Status",) if with_status
                                                                   else ())
    for column in columns:
        table.add_column(column, overflow="fold")
    for f in report.visible_findings:
        sev = f.effective_severity.name
        status = [f"{f.status or ''}{' (baseline)' if f.in_baseline else ''}"]
        table.add_row(f"[{STYLE[sev]}]{sev}[/]", f.rule.id, escape(f.file_path),
                      escape(f.member or ""), escape(f.message),
                      *(status if with_status else []))
    out.print(table)
    s = summary(report)
    out.print(f"Issues: {s['total_issues']}   errors: {len(report.errors)}   "
              f"security score: {s['security_score']}/100   suppressed: {s['suppressed']}")
    if report.history is not None:
        out.print(f"Since the last scan: new {s['new']}, existing {s['existing']}, "
                  f"fixed {s['fixed']}")
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    return buffer.getvalue()

