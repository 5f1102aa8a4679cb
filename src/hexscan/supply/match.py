"""Join what the model needs with the vulnerability DB: the supply-chain findings.

Scanners only *record* dependencies (facts: a manifest pin, a lock entry, a framework
version written into a model config). Matching happens here, once per scan in the main
process, so the DB is opened once, read-only, and a dependency seen in ten files is looked
up once. This step also checks file hashes against the compromised-model feed and warns
when the vulnerability data is older than ``vulndb_max_age_days``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from packaging.version import InvalidVersion, Version

from hexscan.config import ScanConfig
from hexscan.model.finding import Finding
from hexscan.model.report import Fact, FileEntry, ScanReport
from hexscan.model.severity import Severity
from hexscan.rules import supply as rules
from hexscan.supply import versions
from hexscan.supply.cvss import best, finding_severity
from hexscan.supply.db import VulnDB
from hexscan.supply.records import Advisory, Affected, Dependency, NvdCve, SeverityVector

SCANNER = "dependencies"
#: Sources that are versions recorded inside model files, not installable pins.
MODEL_SOURCES = frozenset({"model-config", "onnx-producer", "keras-metadata"})
_HASH_CHUNK = 1 << 20


def apply(report: ScanReport, config: ScanConfig) -> ScanReport:
    """Add dependency, malicious-package and compromised-model findings, and DB warnings."""
    if SCANNER in config.skip:
        return report
    db = VulnDB.open(config.home)
    deps = [f for f in report.facts if f.kind == "dependency"]
    found = list(_dependency_findings(db, deps))
    found += list(_model_hash_findings(db, report.files, config.hash))
    warnings = list(report.warnings)
    warnings += list(db.warnings)  # a corrupt or foreign DB: the embedded set was used
    if deps:
        warnings += _freshness(db, config.vulndb_max_age_days)
    if not found and warnings == list(report.warnings):
        return report
    findings = sorted((*report.findings, *found), key=lambda f: f.report_order)
    return replace(report, findings=tuple(findings), warnings=tuple(warnings))


def _dependency(fact: Fact) -> Dependency:
    d = fact.data
    return Dependency(ecosystem=str(d.get("ecosystem", "PyPI")), name=str(d.get("name", "")),
                      version=d.get("version"), spec=str(d.get("spec", "")),
                      source=str(d.get("source", "")), line=d.get("line"),
                      extra=dict(d.get("extra") or {}))


def _dependency_findings(db: VulnDB, facts: Iterable[Fact]) -> Iterator[Finding]:
    cache: dict[tuple[str, str], list[Advisory]] = {}
    for fact in facts:
        dep = _dependency(fact)
        if not dep.name:
            continue
        advisories: list[Advisory] = []
        for key in versions.lookup_keys(dep):  # a conda package is also its PyPI project
            if key not in cache:
                cache[key] = db.advisories_for(*key)
            advisories += cache[key]
        if not advisories:
            continue
        if dep.version is None or not versions.valid(dep.version):
            hits = [a for a in advisories if a.is_malicious and not a.withdrawn
                    and _every_version(a, dep)]
        else:
            hits = versions.matching(advisories, dep)
        groups = versions.group_aliases(hits)
        if dep.source in MODEL_SOURCES:
            if groups:
                yield _framework_finding(db, fact, dep, groups)
            continue
        for group in groups:
            yield _vulnerability_finding(db, fact, dep, group)


def _version_key(text: str) -> tuple[int, Any]:
    """Sort fixed versions by PEP 440 order; unparseable ones last, by text."""
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


def _describe(aff: Affected) -> str:
    """One affected entry as text: '>=0, <2.6.0' per range, or the explicit versions."""
    parts: list[str] = []
    for rng in aff.ranges:
        if rng.type == "GIT":
            continue
        bounds = []
        for event in rng.events:
            op = {"introduced": ">=", "fixed": "<", "last_affected": "<=",
                  "limit": "<"}.get(event.kind, "?")
            bounds.append(f"{op}{event.version}")
        parts.append(", ".join(bounds))
    if aff.versions and not parts:
        listed = ", ".join(aff.versions[:10])
        parts.append(f"=={listed}{' ...' if len(aff.versions) > 10 else ''}")
    return "; ".join(parts)


def _about(aff: Affected, keys: set[tuple[str, str]]) -> bool:
    """Is this affected entry about the dependency (one of its lookup keys)?"""
    return (aff.ecosystem, versions.normalise(aff.ecosystem, aff.name)) in keys


def _every_version(adv: Advisory, dep: Dependency) -> bool:
    """A MAL- advisory that affects every version (introduced 0, never fixed)."""
    keys = set(versions.lookup_keys(dep))
    for aff in adv.affected:
        if not _about(aff, keys):
            continue
        if aff.versions and not aff.ranges:
            return True
        for rng in aff.ranges:
            kinds = {e.kind for e in rng.events}
            if "introduced" in kinds and not kinds & {"fixed", "last_affected", "limit"}:
                return True
    return False


def _nvd_records(db: VulnDB, group: list[Advisory]) -> list[NvdCve]:
    """The NVD records of the group's CVEs, looked up once for vectors and CWEs alike."""
    found = (db.nvd(cve) for cve in sorted({a.cve for a in group if a.cve}))
    return [rec for rec in found if rec is not None]


def _vectors(group: list[Advisory], nvd: list[NvdCve]) -> list[SeverityVector]:
    return [v for rec in nvd for v in rec.vectors] + [v for a in group for v in a.severity]


def _cwes(group: list[Advisory], nvd: list[NvdCve]) -> tuple[str, ...]:
    cwes = {c for a in group for c in a.cwes} | {c for rec in nvd for c in rec.cwes}
    return tuple(sorted(cwes, key=lambda c: (len(c), c)))


def _facts(db: VulnDB, group: list[Advisory], dep: Dependency) -> dict[str, Any]:
    """The shared part of a finding about one advisory group: ids, scores, fixes."""
    primary = versions.primary_id(group)
    aliases = sorted({i for a in group for i in (a.id, *a.aliases)} - {primary})
    cve = next((a.cve for a in group if a.cve), None)
    epss = db.epss(cve) if cve else None
    kev = db.kev(cve) if cve else None
    nvd = _nvd_records(db, group)
    cvss = best(_vectors(group, nvd))
    names = {name for _, name in versions.lookup_keys(dep)}
    fixed = sorted({v for a in group for n in names for v in versions.fixed_versions(a, n)},
                   key=_version_key)
    malicious = any(a.is_malicious for a in group)
    summary = next((a.summary for a in group if a.summary), "")
    refs = tuple(dict.fromkeys(r for a in group for r in a.references))
    return {
        "primary": primary, "aliases": aliases, "cve": cve, "epss": epss, "kev": kev,
        "cvss": cvss, "fixed": fixed, "malicious": malicious, "summary": summary,
        "references": refs[:10], "cwes": _cwes(group, nvd),
        "published": min((a.published for a in group if a.published), default=None),
        "severity": finding_severity(cvss, epss, kev, malicious),
    }


def _vulnerability_json(dep: Dependency, info: Mapping[str, Any],
                        group: list[Advisory]) -> dict[str, Any]:
    epss, kev = info["epss"], info["kev"]
    keys = set(versions.lookup_keys(dep))
    return {
        "id": info["primary"],
        "aliases": info["aliases"],
        "package": dep.name,
        "ecosystem": dep.ecosystem,
        "version": dep.version or dep.spec,
        "affected": sorted({_describe(aff) for a in group for aff in a.affected
                            if _about(aff, keys)}),
        "fixed": info["fixed"],
        "summary": info["summary"],
        "published": info["published"],
        "malicious": info["malicious"],
        "epss": None if epss is None else {
            "score": epss.epss, "percentile": epss.percentile, "date": epss.score_date,
            "model_version": epss.model_version},
        "kev": None if kev is None else {
            "date_added": kev.date_added, "due_date": kev.due_date,
            "ransomware": kev.ransomware},
        "source": dep.source,
        "line": dep.line,
    }


def _vulnerability_finding(db: VulnDB, fact: Fact, dep: Dependency,
                           group: list[Advisory]) -> Finding:
    info = _facts(db, group, dep)
    rule = rules.MALICIOUS_PACKAGE if info["malicious"] else rules.VULNERABLE_DEPENDENCY
    version = dep.version or dep.spec or "any version"
    also = f" ({', '.join(info['aliases'])})" if info["aliases"] else ""
    fixed = f" Fixed in {', '.join(info['fixed'])}." if info["fixed"] else " No fixed version."
    if info["malicious"]:
        message = (f"{dep.name} {version} is a known malicious package: {info['primary']}"
                   f"{also}. {info['summary']}").strip()
        remediation = rules.MALICIOUS_PACKAGE.remediation
    else:
        summary = info["summary"].rstrip(". ")
        message = f"{dep.name} {version} is affected by {info['primary']}{also}: " \
                  f"{summary}.{fixed}"
        remediation = (f"Upgrade {dep.name} to {info['fixed'][0]} or later "
                       f"(fixed versions: {', '.join(info['fixed'])}) and regenerate the lock "
                       "file." if info["fixed"] else
                       f"No fixed release of {dep.name} is known: avoid the affected API or "
                       "replace the package.")
    return Finding(
        rule, message, key=f"{versions.normalise(dep.ecosystem, dep.name)}=={version}:"
                           f"{info['primary']}",
        severity=Severity.CRITICAL if info["malicious"] else info["severity"],
        evidence={"package": dep.name, "version": version, "source": dep.source,
                  "line": dep.line, "spec": dep.spec},
        line_number=dep.line if isinstance(dep.line, int) and dep.line > 0 else None,
        file_path=fact.path, rel_path=fact.rel_path, member=fact.member, scanner=SCANNER,
        cvss=info["cvss"], cwe=info["cwes"] or None, remediation=remediation,
        references=info["references"] or None,
        vulnerability=_vulnerability_json(dep, info, group))


def _framework_finding(db: VulnDB, fact: Fact, dep: Dependency,
                       groups: list[list[Advisory]]) -> Finding:
    infos = [_facts(db, g, dep) for g in groups]
    ids = [i["primary"] for i in infos]
    fixed = sorted({v for i in infos for v in i["fixed"]}, key=_version_key)
    newest = fixed[-1] if fixed else None
    message = (f"The model records {dep.name} {dep.version} ({dep.source}), which is affected "
               f"by {len(ids)} advisor{'y' if len(ids) == 1 else 'ies'}: "
               f"{', '.join(ids[:8])}{' ...' if len(ids) > 8 else ''}.")
    remediation = (f"Load the model with {dep.name} {newest} or later, not the recorded "
                   f"{dep.version}." if newest else rules.VULNERABLE_FRAMEWORK.remediation)
    return Finding(
        rules.VULNERABLE_FRAMEWORK, message,
        key=f"{versions.normalise(dep.ecosystem, dep.name)}=={dep.version}",
        evidence={"package": dep.name, "version": dep.version, "source": dep.source,
                  "advisories": [{"id": i["primary"], "aliases": i["aliases"],
                                  "fixed": i["fixed"],
                                  "cvss": i["cvss"].to_json() if i["cvss"] else None}
                                 for i in infos]},
        file_path=fact.path, rel_path=fact.rel_path, member=fact.member, scanner=SCANNER,
        remediation=remediation)


def _model_hash_findings(db: VulnDB, files: Iterable[FileEntry],
                         hash_all: bool) -> Iterator[Finding]:
    sizes, unsized = db.model_hash_sizes()
    if not sizes and not unsized:
        return
    for entry in files:
        digest = entry.sha256
        if digest is None and entry.member is None and entry.size is not None and (
                entry.size in sizes or (unsized and hash_all)):
            digest = _sha256(entry.path)
        if digest is None:
            continue
        known = db.model_hash(digest)
        if known is None:
            continue
        where = f"{entry.path}!/{entry.member}" if entry.member else entry.path
        yield Finding(
            rules.COMPROMISED_MODEL,
            f"{where} is a known-malicious model file ({known.name or 'unnamed'}): "
            f"{known.reason or 'listed in the compromised-model feed'}",
            key=digest, evidence={"sha256": digest, "size": entry.size, "name": known.name,
                                  "reason": known.reason, "added": known.added},
            file_path=entry.path, rel_path=entry.rel_path, member=entry.member,
            scanner=SCANNER,
            references=(known.reference,) if known.reference else None)


def _sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _freshness(db: VulnDB, max_age_days: float) -> list[str]:
    """A warning when the data the matches came from is older than the configured age."""
    built = db.built_at()
    label = "vulnerability DB" if built else "embedded advisory snapshot"
    stamp = built or db.embedded_generated()
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return [f"the {label} has no valid date; run `hex vulnfetch fetch`"]
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - when).total_seconds() / 86400
    if age <= max_age_days:
        return []
    return [f"the {label} is {age:.0f} days old (limit {max_age_days:g}); "
            "run `hex vulnfetch fetch` for current advisories"]
