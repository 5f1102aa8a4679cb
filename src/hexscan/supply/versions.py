"""Is this dependency version affected by that advisory? OSV range semantics, done locally.

Implements the evaluation of https://ossf.github.io/osv-schema/#evaluation: a version is
affected when it is listed in ``affected[].versions`` or lies in one of the ``SEMVER`` /
``ECOSYSTEM`` ranges, where the events of a range, sorted by version, form a timeline
(``introduced`` opens, ``fixed`` closes exclusively, ``last_affected`` closes inclusively) and
``limit`` events bound the whole range. ``GIT`` ranges need a commit graph and are ignored.

PyPI ``ECOSYSTEM`` versions are PEP 440 (``packaging.version``), compared by their public part
so a local build ``2.5.1+cpu`` is 2.5.1. ``SEMVER`` ranges use the SemVer 2.0 precedence below.
An advisory or dependency version that does not parse never raises: that range does not
match, and :func:`valid` lets the caller report the dependency's bad version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

from hexscan.supply.records import Advisory, Affected, Dependency, Event

__all__ = [
    "InvalidVersion", "affects", "fixed_versions", "group_aliases", "lookup_keys", "matching",
    "normalise", "parse_pep440", "parse_semver", "primary_id", "valid",
]

_PEP503 = re.compile(r"[-_.]+")
_SEMVER = re.compile(
    r"^v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z", re.ASCII)
#: OSV ecosystems whose ECOSYSTEM ranges follow SemVer ordering closely enough to compare.
_SEMVER_ECOSYSTEMS = frozenset({"npm", "crates.io", "go", "hex", "pub", "nuget"})
_MAX_VERSION_CHARS = 200

SortKey = Any
Parser = Callable[[str], SortKey]


def ecosystem_key(ecosystem: str) -> str:
    """OSV ecosystem names compared without case ("PyPI" and "pypi" are one ecosystem)."""
    return ecosystem.strip().lower()


def normalise(ecosystem: str, name: str) -> str:
    """The name as OSV and the DB compare it: PEP 503 for PyPI, as written elsewhere."""
    if ecosystem_key(ecosystem) == "pypi":
        return _PEP503.sub("-", name.strip()).lower()
    return name.strip()


@lru_cache(maxsize=8192)
def parse_pep440(version: str) -> Version:
    """A PEP 440 version compared by its public part; raises :class:`InvalidVersion`."""
    if len(version) > _MAX_VERSION_CHARS:
        raise InvalidVersion(f"version of {len(version)} characters")
    parsed = Version(version.strip())
    return Version(parsed.public) if parsed.local is not None else parsed


@lru_cache(maxsize=8192)
def parse_semver(version: str) -> tuple[Any, ...]:
    """A SemVer 2.0 precedence key; raises ValueError for a version that is not SemVer.

    Missing minor/patch count as 0 and a leading ``v`` is allowed (Go writes one). Build
    metadata does not take part in precedence. A release sorts after its pre-releases;
    pre-release identifiers compare numerically when numeric, in ASCII order otherwise,
    numeric before alphanumeric, and a longer list after its own prefix.
    """
    match = _SEMVER.match(version.strip()) if len(version) <= _MAX_VERSION_CHARS else None
    if match is None:
        raise ValueError(f"not a SemVer version: {version[:80]!r}")
    release = tuple(int(match.group(part) or 0) for part in ("major", "minor", "patch"))
    pre = match.group("pre")
    if pre is None:
        return (*release, (1,))
    identifiers = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre.split("."))
    return (*release, (0, identifiers))


def valid(version: str, ecosystem: str = "PyPI") -> bool:
    """Whether a dependency version can be compared at all (PEP 440 for PyPI and conda)."""
    parser = _parser("ECOSYSTEM", ecosystem)
    if parser is None:
        return True
    try:
        parser(version)
    except ValueError:
        return False
    return True


def affects(affected: Affected, version: str) -> bool:
    """Whether ``version`` of the affected package is affected (OSV evaluation)."""
    if version in affected.versions or _listed(affected, version):
        return True
    for range_ in affected.ranges:
        parser = _parser(range_.type, affected.ecosystem)
        if parser is not None and _in_range(version, range_.events, parser):
            return True
    return False


def _listed(affected: Affected, version: str) -> bool:
    """Explicit versions compared as PEP 440 for PyPI (``2.5.1+cpu`` is ``2.5.1``)."""
    if affected.ecosystem.strip().lower() != "pypi" or not affected.versions:
        return False
    try:
        wanted = parse_pep440(version)
    except InvalidVersion:
        return False
    for listed in affected.versions:
        try:
            if parse_pep440(listed) == wanted:
                return True
        except InvalidVersion:
            continue
    return False


def _parser(range_type: str, ecosystem: str) -> Parser | None:
    kind = range_type.strip().upper()
    if kind == "SEMVER":
        return parse_semver
    if kind != "ECOSYSTEM":
        return None  # GIT and unknown range types
    eco = ecosystem.strip().split(":", 1)[0].lower()
    if eco in ("pypi", "conda"):
        return parse_pep440
    if eco in _SEMVER_ECOSYSTEMS:
        return parse_semver
    return None


def _in_range(version: str, events: Sequence[Event], parse: Parser) -> bool:
    """One range: limits first, then the sorted timeline of introduced/fixed/last_affected."""
    try:
        current = parse(version)
        timeline: list[tuple[tuple[int, Any], str]] = []
        limits: list[Any] = []
        for event in events:
            if event.kind == "limit":
                limits.append(None if "*" in event.version else parse(event.version))
            elif event.kind == "introduced" and event.version.strip() == "0":
                timeline.append(((0, None), event.kind))
            elif event.kind in ("introduced", "fixed", "last_affected"):
                timeline.append(((1, parse(event.version)), event.kind))
    except ValueError:
        return False  # InvalidVersion is a ValueError: an unparseable bound never matches
    if limits and not any(limit is None or current < limit for limit in limits):
        return False
    # A stable sort on the version alone: events at the same version keep their written order.
    timeline.sort(key=lambda item: item[0])
    affected = False
    for (_, bound), kind in timeline:
        if kind == "introduced" and (bound is None or current >= bound):
            affected = True
        elif kind == "fixed" and current >= bound:
            affected = False
        elif kind == "last_affected" and current > bound:
            affected = False
    return affected


def lookup_keys(dep: Dependency) -> list[tuple[str, str]]:
    """The (OSV ecosystem, normalised name) pairs a dependency is matched under.

    A conda package that is the same project as a PyPI package (``extra["pypi_name"]``) is
    matched as that PyPI package; OSV has no conda ecosystem of its own.
    """
    keys = [(dep.ecosystem, normalise(dep.ecosystem, dep.name))]
    pypi = dep.extra.get("pypi_name") if dep.extra else None
    if isinstance(pypi, str) and pypi:
        keys.append(("PyPI", normalise("PyPI", pypi)))
    return keys


def matching(advisories: Iterable[Advisory], dep: Dependency) -> list[Advisory]:
    """The advisories (not withdrawn) whose affected package and versions include ``dep``.

    A dependency without an exact version matches nothing: its range says what may be
    installed, not what is.
    """
    if not dep.version:
        return []
    keys = {(eco.lower(), name) for eco, name in lookup_keys(dep)}
    found: list[Advisory] = []
    for advisory in advisories:
        if advisory.withdrawn:
            continue
        for affected in advisory.affected:
            key = (affected.ecosystem.strip().lower(),
                   normalise(affected.ecosystem, affected.name))
            if key in keys and affects(affected, dep.version):
                found.append(advisory)
                break
    return found


def group_aliases(advisories: Iterable[Advisory]) -> list[list[Advisory]]:
    """Advisories that share an id or alias, transitively, as groups in first-seen order.

    GHSA-x aliasing CVE-y and PYSEC-z aliasing CVE-y describe one bug: one group. The same id
    seen twice is kept once.
    """
    unique: dict[str, Advisory] = {}
    for advisory in advisories:
        unique.setdefault(advisory.id, advisory)
    parent: dict[str, str] = {}

    def root(ident: str) -> str:
        parent.setdefault(ident, ident)
        while parent[ident] != ident:
            parent[ident] = parent[parent[ident]]
            ident = parent[ident]
        return ident

    for advisory in unique.values():
        for alias in advisory.aliases:
            a, b = root(advisory.id), root(alias)
            if a != b:
                parent[b] = a
    groups: dict[str, list[Advisory]] = {}
    for advisory in unique.values():
        groups.setdefault(root(advisory.id), []).append(advisory)
    return list(groups.values())


def primary_id(group: Sequence[Advisory]) -> str:
    """The id a group is reported under: a CVE, else a GHSA, else a PYSEC, else the first."""
    if not group:
        raise ValueError("an empty advisory group has no id")
    idents = [a.id for a in group] + [alias for a in group for alias in a.aliases]
    for prefix in ("CVE-", "GHSA-", "PYSEC-"):
        for ident in idents:
            if ident.startswith(prefix):
                return ident
    return group[0].id


def fixed_versions(advisory: Advisory, name: str) -> list[str]:
    """The ``fixed`` versions an advisory gives for package ``name``, lowest first."""
    found: dict[str, Parser | None] = {}
    for affected in advisory.affected:
        if normalise(affected.ecosystem, affected.name) != normalise(affected.ecosystem, name):
            continue
        for range_ in affected.ranges:
            if range_.type.strip().upper() == "GIT":
                continue
            parser = _parser(range_.type, affected.ecosystem)
            for event in range_.events:
                if event.kind == "fixed":
                    found.setdefault(event.version, parser)

    return sorted(found, key=lambda version: _order(version, found[version]))


def _order(version: str, parser: Parser | None) -> tuple[Any, ...]:
    """A sort key comparable across versions: parsed ones first (PEP 440 before SemVer keys,
    which never mix within one package), then unparseable ones by their text."""
    if parser is not None:
        try:
            return (0, parser is parse_semver, parser(version), version)
        except ValueError:
            pass
    return (1, False, 0, version)
