"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Plain dicts, one run for all scanners: GitHub rejects an upload holding two runs of one
tool and category, and keys alerts by ``ruleId`` plus our ``partialFingerprints`` (it
cannot hash lines of a binary model file itself, so without them every upload would
duplicate every alert).

Severity. GitHub ranks alerts by the rule's ``security-severity``, a string number
0.0-10.0 (>= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low). A finding with a
CVSS score uses its base score; any other finding uses :data:`SECURITY_SEVERITY`, chosen
in the middle of GitHub's band for the hex severity. GitHub reads the number from the rule
only, so a rule carries the highest score among its findings in this report; each result
also carries its own in ``properties``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from typing import Any

from hexscan.model.finding import Finding, Location
from hexscan.model.report import ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.post.score import exit_code, summary
from hexscan.report._paths import RootMap, uri_reference
from hexscan.rules._rule import Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/layerd/hex"
#: Where a rule without references of its own is documented.
RULES_URI = "https://github.com/layerd/hex#rules"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "hexFingerprint/v1"
BASE_TEXT = ("The directory artifact URIs are relative to: the scanned directory, a scanned "
             "file's directory, or the common parent of several scanned paths.")

#: hex severity -> SARIF result level.
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
         Severity.LOW: "note", Severity.INFO: "note"}

#: hex severity -> GitHub security-severity, for findings without a CVSS score.
SECURITY_SEVERITY = {Severity.CRITICAL: 9.5, Severity.HIGH: 8.0, Severity.MEDIUM: 5.5,
                     Severity.LOW: 3.0, Severity.INFO: 0.0}

#: history status -> SARIF baselineState.
BASELINE_STATE = {"new": "new", "existing": "unchanged"}

#: GitHub keeps at most 20 tags per rule and 1,000 locations per result.
MAX_TAGS = 20
MAX_RELATED = 1000

_CWE = re.compile(r"CWE-(\d+)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def render(report: ScanReport, color: bool = False) -> str:
    """The SARIF log as JSON text; ``color`` does not apply."""
    return json.dumps(sarif_log(report), indent=2, ensure_ascii=False) + "\n"


def sarif_log(report: ScanReport) -> dict[str, Any]:
    """The whole SARIF log as a JSON-ready dict."""
    log: dict[str, Any] = _clean({"$schema": SCHEMA_URI, "version": "2.1.0",
                                  "runs": [_run(report)]})
    return log


def reported_findings(report: ScanReport) -> tuple[Finding, ...]:
    """What SARIF lists: the findings hex shows, then the suppressed ones."""
    return report.visible_findings + report.suppressed_findings


def security_severity(finding: Finding) -> float:
    """The 0-10 score GitHub ranks by: the CVSS base score, else the severity's value."""
    if finding.cvss is not None:
        return float(finding.cvss.base_score)
    return SECURITY_SEVERITY[finding.effective_severity]


def _run(report: ScanReport) -> dict[str, Any]:
    findings = reported_findings(report)
    roots = RootMap(report.roots)
    rules = _rules_in(findings)
    index = {rule.id: i for i, rule in enumerate(rules)}
    fired: dict[str, list[Finding]] = {rule.id: [] for rule in rules}
    for f in findings:
        fired[f.rule.id].append(f)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "hex",
            "version": report.version,
            "semanticVersion": report.version,
            "informationUri": INFORMATION_URI,
            "rules": [_rule(rule, fired[rule.id]) for rule in rules],
        }},
        "automationDetails": {"id": f"hex/{report.scan_id}"},
        "invocations": [_invocation(report, roots)],
        "results": [_result(f, index[f.rule.id], roots) for f in findings],
        "columnKind": "unicodeCodePoints",
        "properties": _run_properties(report),
    }
    base = roots.base_uri()
    if base is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": base, "description": {"text": BASE_TEXT}}}
    return run


def _rules_in(findings: tuple[Finding, ...]) -> list[Rule]:
    """Every rule that fired, sorted by id so rule indexes do not depend on file order."""
    by_id = {f.rule.id: f.rule for f in findings}
    return [by_id[k] for k in sorted(by_id)]


def rule_name(title: str) -> str:
    """A CamelCase identifier from a rule title ("Pickle imports X" -> "PickleImportsX")."""
    return "".join(w[0].upper() + w[1:] for w in _WORD.findall(title))


def cwe_tag(cwe: str) -> str | None:
    """``CWE-502`` -> ``external/cwe/cwe-502`` (the tag GitHub shows as a CWE link)."""
    match = _CWE.fullmatch(cwe.strip())
    return f"external/cwe/cwe-{int(match.group(1))}" if match else None


def precision(findings: list[Finding]) -> str:
    """A rule's precision from its findings' confidence: the lowest, so it never overclaims."""
    lowest = min((f.confidence for f in findings), default=1.0)
    if lowest >= 0.9:
        return "very-high"
    if lowest >= 0.7:
        return "high"
    if lowest >= 0.4:
        return "medium"
    return "low"


def _rule(rule: Rule, findings: list[Finding]) -> dict[str, Any]:
    tags = ["security"]
    for cwe in [*rule.cwe, *(c for f in findings for c in f.effective_cwe)]:
        tag = cwe_tag(cwe)
        if tag is not None and tag not in tags:
            tags.append(tag)
    if rule.type not in tags:
        tags.append(rule.type)
    score = max((security_severity(f) for f in findings),
                default=SECURITY_SEVERITY[rule.severity])
    help_uri = rule.references[0] if rule.references else RULES_URI
    return {
        "id": rule.id,
        "name": rule_name(rule.title),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc},
        "help": {"text": f"{rule.doc}\n\nHow to fix: {rule.remediation}",
                 "markdown": _help_markdown(rule)},
        "helpUri": help_uri,
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "tags": tags[:MAX_TAGS],
            "precision": precision(findings),
            "security-severity": f"{score:.1f}",
            "severity": rule.severity.name,
        },
    }


def _help_markdown(rule: Rule) -> str:
    parts = [f"**{rule.title}** ({rule.id})", "", rule.doc, "", "**How to fix:** "
             + rule.remediation]
    if rule.references:
        parts += ["", "**References:**", ""] + [f"- <{ref}>" for ref in rule.references]
    return "\n".join(parts)


def _result(f: Finding, rule_index: int, roots: RootMap) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": f.rule.id,
        "ruleIndex": rule_index,
        "level": LEVEL[f.effective_severity],
        "message": {"text": f.message or f.rule.summary},
        "locations": [_location(f.file_path, f.rel_path, f.member, roots,
                                offset=f.offset, line=f.line_number)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": _result_properties(f),
    }
    related = [_location(loc.file_path, loc.rel_path, loc.member, roots, ident=i + 1,
                         note=_also_at(loc))
               for i, loc in enumerate(f.also_at[:MAX_RELATED])]
    if related:
        result["relatedLocations"] = related
    if f.suppression is not None:
        suppression: dict[str, Any] = {"kind": "external", "status": "accepted",
                                       "justification": f.suppression.reason,
                                       "properties": {"source": f.suppression.source}}
        if f.suppression.expires:
            suppression["properties"]["expires"] = f.suppression.expires
        result["suppressions"] = [suppression]
    if f.status in BASELINE_STATE:
        result["baselineState"] = BASELINE_STATE[f.status]
    return result


def _also_at(loc: Location) -> str:
    where = f"{loc.rel_path}!/{loc.member}" if loc.member else loc.rel_path
    return f"The same finding is also at {where}."


def _location(file_path: str, rel_path: str, member: str | None, roots: RootMap, *,
              offset: int | None = None, line: int | None = None, ident: int | None = None,
              note: str | None = None) -> dict[str, Any]:
    """A location in the top-level file; a container member is its logical location.

    A byte offset is meaningful only for the file itself: inside a member it counts from
    the member's start, so it stays in the result's properties instead.
    """
    rel = roots.relative(file_path, rel_path) or "."
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri_reference(rel),
                                                     "uriBaseId": SRCROOT}}
    if line is not None and line >= 1:
        physical["region"] = {"startLine": line}
    elif offset is not None and offset >= 0 and member is None:
        physical["region"] = {"byteOffset": offset}
    location: dict[str, Any] = {"physicalLocation": physical}
    if ident is not None:
        location["id"] = ident
    if member:
        location["logicalLocations"] = [{"name": member.rsplit("!/", 1)[-1].rsplit("/", 1)[-1],
                                         "fullyQualifiedName": f"{rel}!/{member}",
                                         "kind": "member"}]
    if note is not None:
        location["message"] = {"text": note}
    return location


def _result_properties(f: Finding) -> dict[str, Any]:
    props: dict[str, Any] = {
        "severity": f.effective_severity.name,
        "confidence": round(f.confidence, 3),
        "scanner": f.scanner,
        "security-severity": f"{security_severity(f):.1f}",
        "evidence": _json_safe(f.evidence),
        "vulnerability": _json_safe(dict(f.vulnerability)) if f.vulnerability else None,
        "cvss": f.cvss.to_json() if f.cvss else None,
        "cwe": list(f.effective_cwe),
        "remediation": f.effective_remediation,
    }
    if f.member:
        props["member"] = f.member
    if f.offset is not None:
        props["offset"] = f.offset
    if f.in_baseline:
        props["inBaseline"] = True
    if len(f.also_at) > MAX_RELATED:
        props["alsoAtTotal"] = len(f.also_at)
    return props


def _invocation(report: ScanReport, roots: RootMap) -> dict[str, Any]:
    notifications = [{
        "level": "error",
        "message": {"text": f"{err.kind}: {err.message}"},
        "descriptor": {"id": err.kind},
        "locations": [_location(err.path, "", err.member, roots)],
    } for err in report.errors]
    notifications += [{"level": "warning", "message": {"text": warning}}
                      for warning in report.warnings]
    invocation: dict[str, Any] = {
        "executionSuccessful": report.complete,
        "exitCode": exit_code(report),
        "toolExecutionNotifications": notifications,
    }
    start = _parse_time(report.timestamp)
    if start is not None:
        invocation["startTimeUtc"] = _format_time(start)
        invocation["endTimeUtc"] = _format_time(start + timedelta(seconds=report.duration_s))
    return invocation


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _format_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _run_properties(report: ScanReport) -> dict[str, Any]:
    props: dict[str, Any] = {
        "scanId": report.scan_id,
        "target": report.target,
        "summary": summary(report),
        "complete": report.complete,
        "failOn": report.fail_on,
        "durationSeconds": report.duration_s,
        "filesScanned": sum(1 for f in report.files if f.status is Status.SCANNED),
        "skipped": len(report.skipped),
    }
    if report.warnings:
        props["warnings"] = list(report.warnings)
    return props


def _json_safe(value: Any) -> Any:
    """Evidence as plain JSON: str keys, lists for tuples and sets, finite numbers, and
    anything else (bytes, objects) as its ``str``, as the JSON report does."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v) for v in items]
    return str(value)


def _clean(value: Any) -> Any:
    """Replace lone surrogates (from pickle strings or non-UTF-8 file names) so the log is
    valid UTF-8; the escape keeps the code point readable."""
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
