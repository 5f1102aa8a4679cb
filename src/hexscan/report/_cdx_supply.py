"""Dependencies and their vulnerabilities for the CycloneDX BOM.

``dependency`` facts (what requirements files, lock files and model configs say the model
needs) become ``library`` components with a purl; findings that carry a ``vulnerability``
mapping (hexscan.supply.match) become ``vulnerabilities[]`` entries whose ``affects``
points at the library component. hex's own findings about files never go here: they stay
properties of the file they are about, so the BOM remains an inventory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from cyclonedx.exception.model import InvalidUriException
from cyclonedx.model import Property, XsUri
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityAdvisory,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from packageurl import PackageURL

from hexscan.model.finding import Cvss, Finding

#: OSV ecosystem names -> purl types (purl-spec); anything else is ``generic``.
PURL_TYPES: dict[str, str] = {
    "pypi": "pypi", "npm": "npm", "crates.io": "cargo", "go": "golang", "maven": "maven",
    "nuget": "nuget", "rubygems": "gem", "packagist": "composer", "conda": "conda",
    "hex": "hex", "pub": "pub", "swifturl": "swift", "github actions": "github",
    "huggingface": "huggingface",
}

_CVSS_METHODS: dict[str, VulnerabilityScoreSource] = {
    "2.0": VulnerabilityScoreSource.CVSS_V2, "3.0": VulnerabilityScoreSource.CVSS_V3,
    "3.1": VulnerabilityScoreSource.CVSS_V3_1, "4.0": VulnerabilityScoreSource.CVSS_V4,
}
_SPEC_CHARS = re.compile(r"[<>=!~,*^ ]")
#: Characters a URI keeps as they are (RFC 3986 reserved and unreserved, and ``%``).
_URI_SAFE = ":/?#[]@!$&'()*+,;=%-._~"


def purl_type(ecosystem: str) -> str:
    return PURL_TYPES.get(ecosystem.strip().lower(), "generic")


def canonical(ecosystem: str, name: str) -> str:
    """A package name as the ecosystem compares it (PEP 503 for PyPI)."""
    if purl_type(ecosystem) == "pypi":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def make_purl(ecosystem: str, name: str, version: str | None) -> PackageURL | None:
    """The purl of a package; npm scopes, Maven groups and Go paths become the namespace.

    None when the name is not one a purl can carry (packageurl normalises some names
    away entirely, e.g. one made only of whitespace, and control characters do not
    round-trip).
    """
    kind = purl_type(ecosystem)
    namespace: str | None = None
    if kind == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif "/" in name and kind in ("npm", "golang", "composer", "github", "swift",
                                       "huggingface"):
        namespace, name = name.rsplit("/", 1)
    try:
        purl = PackageURL(type=kind, namespace=namespace or None, name=name,
                          version=version or None)
        text = purl.to_string()
        # a name with control characters does not survive a round trip (percent-escape
        # case differs); such a "package" is not one any installer would fetch
        if PackageURL.from_string(text).to_string() != text:
            return None
    except (ValueError, TypeError):
        return None
    return purl


@dataclass
class _Library:
    ecosystem: str
    name: str
    version: str | None
    purl: PackageURL | None
    ref: str
    where: list[tuple[str, str]] = field(default_factory=list)  # (property name, value)


class Libraries:
    """The library components of one BOM, deduplicated by purl."""

    def __init__(self) -> None:
        self._by_ref: dict[str, _Library] = {}
        self._index: dict[tuple[str, str, str], str] = {}

    def add(self, data: Mapping[str, Any], where: str) -> str | None:
        """Add one ``dependency`` fact found at ``where``; the component's bom-ref."""
        ecosystem = str(data.get("ecosystem") or "")
        name = str(data.get("name") or "").strip()
        if not name:
            return None
        version = data.get("version")
        version = str(version) if version not in (None, "") else None
        spec = str(data.get("spec") or "")
        lib = self._library(ecosystem, name, version)
        line = data.get("line")
        lib.where.append(("hex:manifest", f"{where}:{line}" if isinstance(line, int) else where))
        if data.get("source"):
            lib.where.append(("hex:source", str(data["source"])))
        if spec and not version:
            lib.where.append(("hex:spec", spec))
        key = (purl_type(ecosystem), canonical(ecosystem, name))
        self._index.setdefault((*key, version or spec), lib.ref)
        return lib.ref

    def _library(self, ecosystem: str, name: str, version: str | None) -> _Library:
        purl = make_purl(ecosystem, name, version)
        ref = purl.to_string() if purl is not None else \
            f"hex:package:{ecosystem}:{name}@{version or ''}"
        if ref not in self._by_ref:
            self._by_ref[ref] = _Library(ecosystem, name, version, purl, ref)
        return self._by_ref[ref]

    def find(self, ecosystem: str, name: str, version: str) -> str:
        """The bom-ref of the library a vulnerability is about; added when it is missing."""
        key = (purl_type(ecosystem), canonical(ecosystem, name), version)
        if key in self._index:
            return self._index[key]
        exact = version if version and not _SPEC_CHARS.search(version) else None
        lib = self._library(ecosystem, name, exact)
        if version and exact is None:
            lib.where.append(("hex:spec", version))
        self._index[key] = lib.ref
        return lib.ref

    def components(self) -> list[Component]:
        out = []
        for lib in self._by_ref.values():
            props = [Property(name=k, value=v) for k, v in dict.fromkeys(lib.where)]
            out.append(Component(name=lib.name, version=lib.version, type=ComponentType.LIBRARY,
                                 purl=lib.purl, bom_ref=lib.ref, properties=props))
        return out


def source_of(ident: str) -> VulnerabilitySource:
    """Who publishes an advisory id, with the page that shows it."""
    if ident.startswith("CVE-"):
        name, page = "NVD", "https://nvd.nist.gov/vuln/detail/"
    elif ident.startswith("GHSA-"):
        name, page = "GitHub Advisories", "https://github.com/advisories/"
    else:
        name, page = "OSV", "https://osv.dev/vulnerability/"
    return VulnerabilitySource(name=name, url=safe_uri(page + quote(ident, safe="")))


def safe_uri(text: str) -> XsUri | None:
    """A URI the 1.6 schema accepts (``iri-reference``): non-ASCII and controls
    percent-encoded; None when it is still not a URI."""
    try:
        return XsUri(quote(text, safe=_URI_SAFE))
    except InvalidUriException:
        return None


def rating(cvss: Cvss | None, finding: Finding, source: VulnerabilitySource
           ) -> VulnerabilityRating:
    """The CVSS rating of a finding; hex's own severity when no vector is known."""
    if cvss is None:
        return VulnerabilityRating(source=VulnerabilitySource(name="hex"),
                                   severity=_severity(finding.effective_severity.name),
                                   method=VulnerabilityScoreSource.OTHER)
    try:
        score: Decimal | None = Decimal(str(cvss.base_score))
    except InvalidOperation:
        score = None
    return VulnerabilityRating(source=source, score=score,
                               severity=_severity(cvss.base_severity),
                               method=_CVSS_METHODS.get(cvss.version,
                                                        VulnerabilityScoreSource.OTHER),
                               vector=cvss.vector_string or None)


def _severity(text: str) -> VulnerabilitySeverity:
    try:
        return VulnerabilitySeverity(text.strip().lower())
    except ValueError:
        return VulnerabilitySeverity.UNKNOWN


def vulnerabilities(findings: Iterable[Finding], libraries: Libraries) -> list[Vulnerability]:
    """One entry per advisory id; every affected library of the scan in its ``affects``."""
    grouped: dict[str, list[Finding]] = {}
    for f in findings:
        if f.vulnerability is not None and f.vulnerability.get("id"):
            grouped.setdefault(str(f.vulnerability["id"]), []).append(f)
    return [_vulnerability(ident, group, libraries) for ident, group in grouped.items()]


def _vulnerability(ident: str, group: list[Finding], libraries: Libraries) -> Vulnerability:
    first = group[0]
    info = first.vulnerability or {}
    source = source_of(ident)
    aliases = sorted({str(a) for f in group for a in (f.vulnerability or {}).get("aliases")
                      or ()} - {ident})
    targets: dict[str, list[BomTargetVersionRange]] = {}
    for f in group:
        v = f.vulnerability or {}
        ref = libraries.find(str(v.get("ecosystem") or ""), str(v.get("package") or ""),
                             str(v.get("version") or ""))
        ranges = targets.setdefault(ref, [])
        version = str(v.get("version") or "")
        if version and not _SPEC_CHARS.search(version):
            ranges.append(BomTargetVersionRange(version=version,
                                                status=ImpactAnalysisAffectedStatus.AFFECTED))
        ranges.extend(BomTargetVersionRange(version=str(fixed),
                                            status=ImpactAnalysisAffectedStatus.UNAFFECTED)
                      for fixed in v.get("fixed") or ())
    return Vulnerability(
        bom_ref=f"hex:vulnerability:{ident}", id=ident, source=source,
        references=[VulnerabilityReference(id=a, source=source_of(a)) for a in aliases],
        ratings=[rating(first.cvss, first, source)],
        cwes=_cwe_numbers(first.effective_cwe),
        description=str(info.get("summary") or first.message),
        detail=first.message if info.get("summary") else None,
        recommendation=first.effective_remediation or None,
        advisories=_advisories(first.effective_references),
        affects=[BomTarget(ref=ref, versions=ranges) for ref, ranges in targets.items()],
        properties=_vuln_properties(group))


def _cwe_numbers(cwes: Iterable[str]) -> list[int]:
    return sorted({int(c[4:]) for c in cwes if re.fullmatch(r"CWE-\d{1,6}", c)})


def _advisories(references: Iterable[str]) -> list[VulnerabilityAdvisory]:
    out = []
    for ref in dict.fromkeys(references):
        if not ref.startswith(("https://", "http://")):
            continue
        url = safe_uri(ref)
        if url is not None:
            out.append(VulnerabilityAdvisory(url=url))
    return out


def _vuln_properties(group: list[Finding]) -> list[Property]:
    """EPSS, KEV and hex's rule as properties (CycloneDX has no field for them)."""
    info = group[0].vulnerability or {}
    pairs: list[tuple[str, str]] = [("hex:rule", f.rule.id) for f in group]
    pairs += [("hex:severity", group[0].effective_severity.name)]
    epss = info.get("epss")
    if isinstance(epss, Mapping):
        for key in ("score", "percentile", "date", "model_version"):
            if epss.get(key) is not None:
                pairs.append((f"hex:epss:{key}", str(epss[key])))
    kev = info.get("kev")
    if isinstance(kev, Mapping):
        pairs.append(("hex:kev", "true"))
        for key in ("date_added", "due_date", "ransomware"):
            if kev.get(key) is not None:
                pairs.append((f"hex:kev:{key}", str(kev[key])))
    pairs += [("hex:affected", str(a)) for a in info.get("affected") or ()]
    if info.get("malicious"):
        pairs.append(("hex:malicious", "true"))
    return [Property(name=k, value=v) for k, v in dict.fromkeys(pairs)]
