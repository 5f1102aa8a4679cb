"""The text report: a readable summary grouped by file, severities coloured."""

from __future__ import annotations

import io
from itertools import groupby

from rich.console import Console
from rich.markup import escape

from hexscan.model.report import ScanReport, Status
from hexscan.post.score import summary

STYLE = {"CRITICAL": "bold white on red", "HIGH": "bold red", "MEDIUM": "yellow",
         "LOW": "cyan", "INFO": "dim"}


def console_for(buffer: io.StringIO, color: bool, width: int = 100) -> Console:
    """A console writing to ``buffer``; colour only when asked (NO_COLOR is honoured)."""
    return Console(file=buffer, width=width, color_system="standard" if color else None,
                   force_terminal=color, no_color=not color, highlight=False,
                   soft_wrap=True)


def render(report: ScanReport, color: bool = False) -> str:
    buffer = io.StringIO()
    out = console_for(buffer, color)
    out.print(f"[bold]hex {report.version}[/] scanned {escape(report.target)} "
              f"in {report.duration_s:.2f} s")
    findings = sorted(report.visible_findings, key=lambda f: (f.file_path, f.member or ""))
    for path, group in groupby(findings, key=lambda f: f.file_path):
        out.print()
        out.print(f"[bold]{escape(path)}[/]")
        for f in group:
            sev = f.effective_severity.name
            where = "  " + escape(f"[{f.member}]") if f.member else ""  # not markup
            status = f" ({f.status})" if f.status else ""
            out.print(f"  [{STYLE[sev]}]{sev:<8}[/] {f.rule.id}  {escape(f.message)}{where}"
                      f"{status}")
            for loc in f.also_at:
                also = f"{loc.file_path}!/{loc.member}" if loc.member else loc.file_path
                out.print(f"           also at: {escape(also)}", style="dim")
            out.print(f"           fix: {escape(f.effective_remediation)}", style="dim")
    if report.verbose:
        _file_list(out, report)
    _footer(out, report)
    return buffer.getvalue()


def _file_list(out: Console, report: ScanReport) -> None:
    """--verbose: every file and member with its format and status, so nothing passes unseen."""
    out.print()
    out.print("[bold]Files[/]")
    for entry in report.files:
        name = f"{entry.path}!/{entry.member}" if entry.member else entry.path
        why = f" ({escape(entry.reason)})" if entry.reason else ""
        out.print(f"  {entry.status.value:<8} {entry.format:<16} {escape(name)}{why}")


def _footer(out: Console, report: ScanReport) -> None:
    s = summary(report)
    scanned = sum(1 for f in report.files if f.status is Status.SCANNED)
    out.print()
    out.print(f"Files scanned: {scanned}   skipped: {len(report.skipped)}   "
              f"errors: {len(report.errors)}")
    for err in report.errors:
        where = f"!/{err.member}" if err.member else ""
        out.print(f"  [red]error[/] {escape(err.path + where)}: {err.kind}: "
                  f"{escape(err.message)}")
    out.print(f"Issues: {s['total_issues']} (critical {s['critical']}, high {s['high']}, "
              f"medium {s['medium']}, low {s['low']})   security score: "
              f"{s['security_score']}/100")
    if report.history is not None:
        out.print(f"Since the last scan: new {s['new']}, existing {s['existing']}, "
                  f"fixed {s['fixed']}")
    for f in report.suppressed_findings:
        assert f.suppression is not None
        out.print(f"  [dim]suppressed[/] {f.rule.id} {escape(f.rel_path)}: "
                  f"{escape(f.suppression.reason)}")
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if not report.errors and not s["total_issues"]:
        out.print("[green]No issues found.[/]")
