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
    for column in ("Severity", "Rule", "File", "Member", "Finding"):
        table.add_column(column, overflow="fold")
    for f in report.visible_findings:
        sev = f.effective_severity.name
        table.add_row(f"[{STYLE[sev]}]{sev}[/]", f.rule.id, escape(f.file_path),
                      escape(f.member or ""), escape(f.message))
    out.print(table)
    s = summary(report)
    out.print(f"Issues: {s['total_issues']}   errors: {len(report.errors)}   "
              f"security score: {s['security_score']}/100")
    return buffer.getvalue()

