"""In-scan deduplication: one finding per problem and top-level file, with every place it
was reached.

A zip that carries the same malicious pickle under two member names, or a checkpoint
that repeats one payload in several shards of the same archive, is one problem for the
person reading the report: the same rule fired for the same evidence key with the same
message. Listing it once, with the other members in ``also_at``, keeps the report short
without hiding anything.

Findings are merged only when rule id, key, message and top-level file are all equal, so
different files, rules or keys never collapse into one. The finding that is kept is the
one with the smallest member name (the file itself, with no member, comes first), which
makes the output, and so the kept fingerprint, the same on every run.
"""

from __future__ import annotations

from dataclasses import replace

from hexscan.model.finding import Finding, Location
from hexscan.model.report import ScanReport

GroupKey = tuple[str, str, str, str]


def _group_key(finding: Finding) -> GroupKey:
    return (finding.rule.id, finding.key, finding.message, finding.file_path)


def _order(finding: Finding) -> tuple[bool, str]:
    """The file itself (no member) first, then members by name."""
    return (finding.member is not None, finding.member or "")


def _location(finding: Finding) -> Location:
    return Location(finding.file_path, finding.rel_path, finding.member)


def merge(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The findings with every repeat folded into ``also_at`` of the kept one.

    The relative order of the kept findings is the order of the input.
    """
    groups: dict[GroupKey, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(_group_key(finding), []).append(finding)
    kept: dict[int, Finding] = {}
    for group in groups.values():
        if len(group) == 1:
            kept[id(group[0])] = group[0]
            continue
        ordered = sorted(group, key=_order)
        first = ordered[0]
        places: list[Location] = []
        seen = {_location(first), *first.also_at}
        for other in ordered[1:]:
            for loc in (_location(other), *other.also_at):
                if loc not in seen:
                    seen.add(loc)
                    places.append(loc)
        kept[id(first)] = replace(first, also_at=(*first.also_at, *places))
    return tuple(kept[id(f)] for f in findings if id(f) in kept)


def apply(report: ScanReport) -> ScanReport:
    """The report with deduplicated findings."""
    findings = merge(report.findings)
    if len(findings) == len(report.findings):
        return report
    return replace(report, findings=findings)
