"""JUnit XML (the Ant/Surefire shape) for Jenkins, GitLab ``reports:junit`` and the like.

There is no official JUnit schema; CI systems ingest this de-facto shape. One test case
per scanned top-level file (findings in its members roll up into it), so a dashboard shows
every file hex looked at, not only the bad ones:

* a ``<failure>`` per finding at or above ``--fail-on`` that counts (not suppressed, not in
  the baseline), so the JUnit verdict agrees with hex's exit code;
* findings below the threshold, suppressed and baselined ones in ``<system-out>``;
* a file that could not be scanned completely gets an ``<error>``; a file hex passed over,
  ``<skipped>``.

Suite ``failures``/``errors``/``skipped`` count the elements, as JUnit parsers do when they
recompute them. Times are not measured per file, so test cases report 0 and the suite the
whole scan's duration. Text goes through ElementTree's escaping, after the characters XML
1.0 cannot hold at all (most C0 controls, lone surrogates) are replaced by their escapes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hexscan.model.finding import Finding
from hexscan.model.report import ErrorEntry, FileEntry, ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.report._paths import RootMap

#: Everything outside XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with each character XML 1.0 forbids replaced by its Python escape (``\\x01``,
    ``\\ud800``): a file name keeps telling two files apart, and ElementTree escapes the rest.
    """
    return _NOT_XML.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass
class _Case:
    """What one top-level file contributes to the suite."""

    path: str
    entry: FileEntry | None = None
    failures: list[Finding] = field(default_factory=list)
    other: list[Finding] = field(default_factory=list)
    errors: list[ErrorEntry] = field(default_factory=list)


def render(report: ScanReport, color: bool = False) -> str:
    """The JUnit XML document; ``color`` does not apply."""
    roots = RootMap(report.roots)
    cases = _cases(report)
    suite = ET.Element("testsuite", name="hex scan")
    _properties(suite, report)
    totals = {"failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        _testcase(suite, case, roots, totals)
    counts = {"tests": str(len(cases)), **{k: str(v) for k, v in totals.items()},
              "time": f"{report.duration_s:.3f}", "timestamp": _timestamp(report.timestamp)}
    suite.attrib.update(counts)
    root = ET.Element("testsuites", name="hex")
    root.attrib.update(counts)
    root.append(suite)
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")


def _cases(report: ScanReport) -> list[_Case]:
    """One case per top-level file, plus one per path that only an error or finding names."""
    cases: dict[str, _Case] = {}
    for entry in report.files:
        if entry.member is None and entry.path not in cases:
            cases[entry.path] = _Case(entry.path, entry)
    threshold = Severity[report.fail_on]
    shown = set(report.shown)
    for f in report.findings:
        case = cases.setdefault(f.file_path, _Case(f.file_path))
        if f.counts and f.effective_severity >= threshold:
            case.failures.append(f)
        elif not f.counts or f.effective_severity.name in shown:
            case.other.append(f)
    for err in report.errors:
        cases.setdefault(err.path, _Case(err.path)).errors.append(err)
    return [cases[k] for k in sorted(cases)]


def _testcase(suite: ET.Element, case: _Case, roots: RootMap, totals: dict[str, int]) -> None:
    rel_path = case.entry.rel_path if case.entry is not None else ""
    rel_path = rel_path or next((f.rel_path for f in case.failures + case.other if f.rel_path),
                                "")
    name = xml_safe(roots.relative(case.path, rel_path))
    fmt = case.entry.format if case.entry is not None else "unknown"
    element = ET.SubElement(suite, "testcase", classname=xml_safe(f"hex.{fmt}"), name=name,
                            file=name, time="0")
    for f in _ordered(case.failures):
        failure = ET.SubElement(element, "failure", type=xml_safe(f.rule.id),
                                message=xml_safe(_headline(f)))
        failure.text = xml_safe(_details(f))
        totals["failures"] += 1
    errors = _error_lines(case)
    if errors:
        error = ET.SubElement(element, "error", type=_error_kind(case),
                              message=xml_safe(errors[0]))
        error.text = xml_safe("\n".join(errors))
        totals["errors"] += 1
    if (not case.failures and not errors and case.entry is not None
            and case.entry.status is Status.SKIPPED):
        ET.SubElement(element, "skipped", message=xml_safe(case.entry.reason or "skipped"))
        totals["skipped"] += 1
    if case.other:
        out = ET.SubElement(element, "system-out")
        out.text = xml_safe("\n\n".join(_details(f) for f in _ordered(case.other)))


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.effective_severity, f.member or "", f.rule.id,
                                           f.key))


def _headline(f: Finding) -> str:
    where = f" (in {f.member})" if f.member else ""
    return f"{f.effective_severity.name} {f.rule.id}: {f.message}{where}"


def _details(f: Finding) -> str:
    """The readable body of a failure or a system-out entry."""
    lines = [f"Severity: {f.effective_severity.name} (confidence {f.confidence:.2f})",
             f"Rule: {f.rule.id} {f.rule.title}"]
    if f.member:
        lines.append(f"Member: {f.member}")
    lines.append(f"Message: {f.message}")
    if f.cvss is not None:
        lines.append(f"CVSS: {f.cvss.base_score} {f.cvss.base_severity} "
                     f"({f.cvss.vector_string})")
    lines.append(f"Remediation: {f.effective_remediation}")
    if f.suppression is not None:
        lines.append(f"Suppressed: {f.suppression.reason} ({f.suppression.source})")
    if f.in_baseline:
        lines.append("In the baseline: does not fail the scan.")
    lines.append(f"Fingerprint: {f.fingerprint}")
    return "\n".join(lines)


def _error_lines(case: _Case) -> list[str]:
    lines = [f"{e.kind}: {e.message}" + (f" (in {e.member})" if e.member else "")
             for e in case.errors]
    if not lines and case.entry is not None and case.entry.status is Status.ERROR:
        lines.append(case.entry.reason or "error")
    return lines


def _error_kind(case: _Case) -> str:
    return xml_safe(case.errors[0].kind) if case.errors else "error"


def _properties(suite: ET.Element, report: ScanReport) -> None:
    props = ET.SubElement(suite, "properties")
    for name, value in (("scan_id", report.scan_id), ("target", report.target),
                        ("version", report.version), ("fail_on", report.fail_on),
                        ("complete", str(report.complete).lower())):
        ET.SubElement(props, "property", name=name, value=xml_safe(value))


def _timestamp(text: str) -> str:
    """ISO 8601 without the zone suffix, as the Ant schema's timestamp type wants (UTC)."""
    return text[:-1] if text.endswith("Z") else text
