"""The JSON report; its public contract is ``schemas/report.schema.json``."""

from __future__ import annotations

import json
from typing import Any

from hexscan.model.finding import Finding
from hexscan.model.report import ErrorEntry, Fact, FileEntry, ScanReport, Status
from hexscan.post.score import summary

SCHEMA_VERSION = "1.0"


def finding_json(f: Finding) -> dict[str, Any]:
    """One ``results[]`` entry."""
    fingerprint = f.fingerprint
    return {
        "id": f"{f.rule.id}:{fingerprint[:12]}",
        "type": f.rule.type,
        "severity": f.effective_severity.name,
        "title": f.rule.title,
        "description": f.message,
        "file_path": f.file_path,
        "line_number": f.line_number,
        "confidence": round(f.confidence, 3),
        "cvss": f.cvss.to_json() if f.cvss else None,
        "cwe": list(f.effective_cwe),
        "remediation": f.effective_remediation,
        "references": list(f.effective_references),
        "rule_id": f.rule.id,
        "member": f.member,
        "fingerprint": fingerprint,
        "scanner": f.scanner,
        "offset": f.offset,
        "evidence": f.evidence,
        "vulnerability": dict(f.vulnerability) if f.vulnerability is not None else None,
        "also_at": [loc.to_json() for loc in f.also_at],
        "status": f.status,
        "suppression": f.suppression.to_json() if f.suppression else None,
        "in_baseline": f.in_baseline,
    }


def file_json(entry: FileEntry) -> dict[str, Any]:
    return {"path": entry.path, "member": entry.member, "format": entry.format,
            "size": entry.size, "status": entry.status.value, "reason": entry.reason,
            "sha256": entry.sha256, "rel_path": entry.rel_path}


def error_json(entry: ErrorEntry) -> dict[str, Any]:
    return {"path": entry.path, "member": entry.member, "kind": entry.kind,
            "message": entry.message}


def report_json(report: ScanReport) -> dict[str, Any]:
    """The whole report as a JSON-ready dict."""
    return {
        "schema_version": SCHEMA_VERSION,
        "scan_id": report.scan_id,
        "timestamp": report.timestamp,
        "target": report.target,
        "version": report.version,
        "results": [finding_json(f) for f in report.visible_findings],
        "summary": summary(report),
        "files_scanned": sum(1 for f in report.files if f.status is Status.SCANNED),
        "complete": report.complete,
        "errors": [error_json(e) for e in report.errors],
        "skipped": [file_json(f) for f in report.skipped],
        "duration_s": report.duration_s,
        "files": [file_json(f) for f in report.files],
        "suppressed": [finding_json(f) for f in report.suppressed_findings],
        "warnings": list(report.warnings),
        "facts": [fact_json(x) for x in report.facts],
        "history": history_json(report),
    }


def fact_json(fact: Fact) -> dict[str, Any]:
    return {"kind": fact.kind, "path": fact.path, "rel_path": fact.rel_path,
            "member": fact.member, "data": dict(fact.data)}


def history_json(report: ScanReport) -> dict[str, Any] | None:
    h = report.history
    if h is None:
        return None
    return {"new": h.new, "existing": h.existing, "fixed": h.fixed,
            "previous_scan_id": h.previous_scan_id,
            "fixed_findings": [dict(x) for x in h.fixed_findings]}


def render(report: ScanReport, color: bool = False) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False,
                      default=str) + "\n"
