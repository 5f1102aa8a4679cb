"""OSV version matching: range semantics, PEP 440 and SemVer ordering, names, alias groups.

Table-driven: each row is (events or versions, dependency version, expected). The advisories
are written here in the OSV shape the feeds produce (records.Advisory), the way GHSA, PYSEC
and CVE records for one torch bug really alias each other.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hexscan.supply import versions
from hexscan.supply.records import Advisory, Affected, Dependency, Event, Range


def ev(*pairs: str) -> tuple[Event, ...]:
    """ev("introduced=0", "fixed=2.6.0") -> events."""
    return tuple(Event(*pair.split("=", 1)) for pair in pairs)


def pypi(*pairs: str, versions_: tuple[str, ...] = (), name: str = "torch",
         range_type: str = "ECOSYSTEM") -> Affected:
    ranges = (Range(range_type, ev(*pairs)),) if pairs else ()
    return Affected("PyPI", name, ranges, versions_)


def advisory(ident: str, *affected: Affected, aliases: tuple[str, ...] = (),
             withdrawn: str | None = None) -> Advisory:
    return Advisory(ident, "2025-01-01T00:00:00Z", aliases=aliases, affected=affected,
                    withdrawn=withdrawn)


# --------------------------------------------------------------------------- ECOSYSTEM / PyPI

@pytest.mark.parametrize(("events", "version", "expected"), [
    # introduced "0" means every version
    (("introduced=0",), "0.0.1", True),
    (("introduced=0",), "99.0", True),
    (("introduced=0",), "1!0.1", True),
    # fixed is exclusive
    (("introduced=0", "fixed=2.6.0"), "2.5.1", True),
    (("introduced=0", "fixed=2.6.0"), "2.6.0", False),
    (("introduced=0", "fixed=2.6.0"), "2.6.1", False),
    # introduced is inclusive
    (("introduced=1.5", "fixed=2.0"), "1.5", True),
    (("introduced=1.5", "fixed=2.0"), "1.4.9", False),
    (("introduced=1.5", "fixed=2.0"), "1.5.0", True),  # PEP 440: 1.5 == 1.5.0
    # last_affected is inclusive
    (("introduced=0", "last_affected=2.1.214"), "2.1.214", True),
    (("introduced=0", "last_affected=2.1.214"), "2.1.215", False),
    (("introduced=0", "last_affected=2.1.214"), "2.1.214.post1", False),
    # pre-releases sort before their release
    (("introduced=0", "fixed=2.6.0"), "2.6.0rc1", True),
    (("introduced=0", "fixed=2.6.0"), "2.6.0a1", True),
    (("introduced=0", "fixed=2.6.0"), "2.6.0.dev20240101", True),
    (("introduced=0", "fixed=2.6.0rc2"), "2.6.0rc1", True),
    (("introduced=0", "fixed=2.6.0rc2"), "2.6.0rc2", False),
    (("introduced=2.6.0rc1", "fixed=2.6.1"), "2.6.0b3", False),
    # post and dev releases
    (("introduced=0", "fixed=1.0.post1"), "1.0", True),
    (("introduced=0", "fixed=1.0.post1"), "1.0.post1", False),
    (("introduced=0", "fixed=1.0"), "1.0.dev1", True),
    (("introduced=0", "fixed=1.0"), "1.0.post0.dev1", False),
    # epochs outrank everything without one
    (("introduced=0", "fixed=2.0"), "1!0.1", False),
    (("introduced=1!0", "fixed=1!0.5"), "1!0.1", True),
    (("introduced=1!0", "fixed=1!0.5"), "99.0", False),
    # local versions compare as their public version
    (("introduced=0", "fixed=2.6.0"), "2.5.1+cpu", True),
    (("introduced=0", "fixed=2.5.1"), "2.5.1+cu121", False),
    (("introduced=0", "last_affected=2.5.1"), "2.5.1+rocm6.1", True),
    (("introduced=2.5.1", "fixed=2.5.2"), "2.5.1+cpu", True),
    # several introduced/fixed pairs in one range
    (("introduced=1.0", "fixed=1.0.2", "introduced=3.0", "fixed=3.2.5"), "1.0.1", True),
    (("introduced=1.0", "fixed=1.0.2", "introduced=3.0", "fixed=3.2.5"), "2.0", False),
    (("introduced=1.0", "fixed=1.0.2", "introduced=3.0", "fixed=3.2.5"), "3.2.4", True),
    (("introduced=1.0", "fixed=1.0.2", "introduced=3.0", "fixed=3.2.5"), "3.2.5", False),
    (("introduced=1.0", "fixed=1.0.2", "introduced=3.0", "fixed=3.2.5"), "0.9", False),
    # events need not be written in order
    (("fixed=3.2.5", "introduced=3.0", "fixed=1.0.2", "introduced=1.0"), "3.1", True),
    (("fixed=3.2.5", "introduced=3.0", "fixed=1.0.2", "introduced=1.0"), "1.5", False),
    # limit bounds the whole range; "*" is infinity
    (("introduced=0", "limit=2.0"), "1.9", True),
    (("introduced=0", "limit=2.0"), "2.0", False),
    (("introduced=0", "limit=*"), "50.0", True),
    (("introduced=1.0", "limit=1.5", "limit=3.0"), "2.0", True),
    (("introduced=1.0", "fixed=1.2", "limit=3.0"), "1.3", False),
    # an introduced that never comes
    (("introduced=5.0",), "4.9", False),
    # unparseable advisory versions never match and never raise
    (("introduced=0", "fixed=not a version"), "1.0", False),
    (("introduced=banana",), "1.0", False),
    (("introduced=0", "limit=junk"), "1.0", False),
])
def test_pypi_ecosystem_ranges(events: tuple[str, ...], version: str, expected: bool) -> None:
    assert versions.affects(pypi(*events), version) is expected


@pytest.mark.parametrize(("listed", "version", "expected"), [
    (("2.5.0", "2.5.1"), "2.5.1", True),
    (("2.5.0", "2.5.1"), "2.5.2", False),
    (("2.5.0", "2.5.1"), "2.5.1+cpu", True),  # PEP 440: same public version
    (("1.0",), "1.0.0", True),
    (("weird-tag",), "weird-tag", True),      # exact string match needs no parsing
    (("weird-tag",), "1.0", False),
    ((), "1.0", False),
])
def test_explicit_versions(listed: tuple[str, ...], version: str, expected: bool) -> None:
    assert versions.affects(pypi(versions_=listed), version) is expected


def test_versions_list_or_range_either_matches() -> None:
    affected = pypi("introduced=0", "fixed=1.0", versions_=("1.5",))
    assert versions.affects(affected, "0.5") and versions.affects(affected, "1.5")
    assert not versions.affects(affected, "1.2")


def test_git_ranges_are_ignored() -> None:
    git = Affected("PyPI", "torch", (Range("GIT", ev("introduced=0")),))
    assert not versions.affects(git, "1.0")


def test_invalid_dependency_version() -> None:
    assert not versions.valid("2.5.1-custom-build!")
    assert versions.valid("2.5.1+cpu") and versions.valid("1!0.1.post2.dev3")
    assert not versions.affects(pypi("introduced=0"), "2.5.1-custom-build!")
    with pytest.raises(versions.InvalidVersion):
        versions.parse_pep440("not-a-version")
    assert not versions.valid("1" * 300)


def test_unknown_ecosystem_ranges_do_not_match() -> None:
    debian = Affected("Debian:12", "python3.11", (Range("ECOSYSTEM", ev("introduced=0")),))
    assert not versions.affects(debian, "3.11.2-6")
    assert versions.affects(Affected("Debian:12", "x", versions=("3.11.2-6",)), "3.11.2-6")


# --------------------------------------------------------------------------- SEMVER

@pytest.mark.parametrize(("lower", "higher"), [
    ("1.0.0", "2.0.0"), ("2.0.0", "2.1.0"), ("2.1.0", "2.1.1"),
    ("1.0.0-alpha", "1.0.0"),
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-alpha.beta", "1.0.0-beta"),
    ("1.0.0-beta", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0-9", "1.0.0-10"),
    ("1.0.0-10", "1.0.0-1a"),
    ("1.9.0", "1.10.0"),
    ("v1.2.3", "1.2.4"),
])
def test_semver_precedence(lower: str, higher: str) -> None:
    assert versions.parse_semver(lower) < versions.parse_semver(higher)


def test_semver_build_metadata_and_padding() -> None:
    assert versions.parse_semver("1.0.0+build.5") == versions.parse_semver("1.0.0")
    assert versions.parse_semver("1.2") == versions.parse_semver("1.2.0")
    for bad in ("1.0.0-", "1..0", "abc", "1.0.0-al..pha", "", "1.0.0.0"):
        with pytest.raises(ValueError):
            versions.parse_semver(bad)


@pytest.mark.parametrize(("events", "version", "expected"), [
    (("introduced=0", "fixed=1.0.2"), "1.0.2-rc.1", True),
    (("introduced=0", "fixed=1.0.2"), "1.0.2", False),
    (("introduced=1.0.0-beta.2", "fixed=1.0.0"), "1.0.0-beta.11", True),
    (("introduced=1.0.0-beta.2", "fixed=1.0.0"), "1.0.0-alpha", False),
    (("introduced=1.0.0", "last_affected=1.4.0"), "1.4.0+build7", True),
    (("introduced=0", "fixed=2.0.0"), "not.semver", False),
])
def test_semver_ranges(events: tuple[str, ...], version: str, expected: bool) -> None:
    affected = Affected("npm", "left-pad", (Range("SEMVER", ev(*events)),))
    assert versions.affects(affected, version) is expected


def test_go_ecosystem_ranges_use_semver() -> None:
    go = Affected("Go", "golang.org/x/net", (Range("ECOSYSTEM", ev("introduced=0",
                                                                     "fixed=0.23.0")),))
    assert versions.affects(go, "v0.22.0") and not versions.affects(go, "v0.23.0")


# --------------------------------------------------------------------------- names, matching

@pytest.mark.parametrize(("written", "normal"), [
    ("Pillow", "pillow"), ("scikit_learn", "scikit-learn"), ("Scikit.Learn", "scikit-learn"),
    ("huggingface__hub", "huggingface-hub"), ("sentence-transformers", "sentence-transformers"),
    ("  torch ", "torch"),
])
def test_pep503_normalisation(written: str, normal: str) -> None:
    assert versions.normalise("PyPI", written) == normal


def test_non_pypi_names_are_kept() -> None:
    assert versions.normalise("npm", "@Scope/Pkg_x") == "@Scope/Pkg_x"


TORCH_GHSA = advisory("GHSA-53q9-r3pm-6pq6", pypi("introduced=0", "fixed=2.6.0"),
                      aliases=("CVE-2025-32434",))
TORCH_PYSEC = advisory("PYSEC-2025-41", pypi("introduced=0", "fixed=2.6.0"),
                       aliases=("CVE-2025-32434", "GHSA-53q9-r3pm-6pq6"))
PILLOW = advisory("GHSA-pillow", Affected("PyPI", "Pillow", (Range("ECOSYSTEM", ev(
    "introduced=0", "fixed=10.3.0")),)))
SKLEARN = advisory("PYSEC-sklearn", Affected("PyPI", "scikit-learn", (Range("ECOSYSTEM", ev(
    "introduced=0", "fixed=1.5.0")),)))
WITHDRAWN = advisory("GHSA-gone", pypi("introduced=0"), withdrawn="2025-02-01T00:00:00Z")
NPM_TORCH = advisory("GHSA-npm", Affected("npm", "torch", (Range("SEMVER", ev(
    "introduced=0")),)))
ALL = [TORCH_GHSA, TORCH_PYSEC, PILLOW, SKLEARN, WITHDRAWN, NPM_TORCH]


@pytest.mark.parametrize(("dep", "expected"), [
    (Dependency("PyPI", "torch", "2.5.1"), ["GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"]),
    (Dependency("PyPI", "Torch", "2.5.1+cpu"), ["GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"]),
    (Dependency("PyPI", "torch", "2.6.0"), []),
    (Dependency("PyPI", "torch", None, spec=">=2.0"), []),  # no exact version, no match
    (Dependency("PyPI", "pillow", "10.2.0"), ["GHSA-pillow"]),
    (Dependency("PyPI", "PILLOW", "10.3.0"), []),
    (Dependency("PyPI", "scikit_learn", "1.4.2"), ["PYSEC-sklearn"]),
    (Dependency("PyPI", "Scikit.Learn", "1.4.2"), ["PYSEC-sklearn"]),
    (Dependency("npm", "torch", "1.0.0"), ["GHSA-npm"]),
    (Dependency("conda", "pytorch", "2.5.1", extra={"pypi_name": "torch"}),
     ["GHSA-53q9-r3pm-6pq6", "PYSEC-2025-41"]),
    (Dependency("conda", "pytorch", "2.5.1"), []),  # unmapped conda names stay conda
    (Dependency("PyPI", "torch", "garbage version"), []),
])
def test_matching(dep: Dependency, expected: list[str]) -> None:
    assert [a.id for a in versions.matching(ALL, dep)] == expected


def test_withdrawn_advisories_never_match() -> None:
    assert versions.matching([WITHDRAWN], Dependency("PyPI", "torch", "1.0")) == []


def test_lookup_keys() -> None:
    assert versions.lookup_keys(Dependency("conda", "pytorch", "2.5.1",
                                           extra={"pypi_name": "torch"})) == [
        ("conda", "pytorch"), ("PyPI", "torch")]
    assert versions.lookup_keys(Dependency("PyPI", "Scikit_Learn", None)) == [
        ("PyPI", "scikit-learn")]


# --------------------------------------------------------------------------- aliases, ids

def test_alias_grouping_is_transitive() -> None:
    cve = advisory("CVE-2025-32434", pypi("introduced=0"))
    ghsa = advisory("GHSA-aaaa", pypi("introduced=0"), aliases=("CVE-2025-32434",))
    pysec = advisory("PYSEC-2025-1", pypi("introduced=0"), aliases=("GHSA-aaaa",))
    other = advisory("GHSA-other", pypi("introduced=0"), aliases=("CVE-2024-1",))
    chained = advisory("PYSEC-2024-9", pypi("introduced=0"), aliases=("CVE-2024-1",))
    groups = versions.group_aliases([pysec, other, ghsa, cve, chained, ghsa])
    assert [[a.id for a in g] for g in groups] == [
        ["PYSEC-2025-1", "GHSA-aaaa", "CVE-2025-32434"], ["GHSA-other", "PYSEC-2024-9"]]


def test_alias_grouping_joins_through_an_alias_no_record_owns() -> None:
    a = advisory("GHSA-a", aliases=("CVE-1",))
    b = advisory("PYSEC-b", aliases=("CVE-1",))
    c = advisory("GHSA-c")
    assert [[x.id for x in g] for g in versions.group_aliases([a, c, b])] == [
        ["GHSA-a", "PYSEC-b"], ["GHSA-c"]]


@pytest.mark.parametrize(("group", "primary"), [
    ([advisory("PYSEC-1", aliases=("GHSA-x", "CVE-2025-1"))], "CVE-2025-1"),
    ([advisory("PYSEC-1", aliases=("GHSA-x",)), advisory("GHSA-x")], "GHSA-x"),
    ([advisory("PYSEC-1")], "PYSEC-1"),
    ([advisory("MAL-2025-7"), advisory("OSV-9", aliases=("MAL-2025-7",))], "MAL-2025-7"),
    ([advisory("GHSA-y", aliases=("CVE-2025-2",)), advisory("CVE-2025-2")], "CVE-2025-2"),
])
def test_primary_id(group: list[Advisory], primary: str) -> None:
    assert versions.primary_id(group) == primary


def test_primary_id_of_nothing() -> None:
    with pytest.raises(ValueError):
        versions.primary_id([])


def test_fixed_versions() -> None:
    adv = advisory(
        "GHSA-multi",
        Affected("PyPI", "Torch", (Range("ECOSYSTEM", ev("introduced=2.0", "fixed=2.10.0")),
                                   Range("ECOSYSTEM", ev("introduced=0", "fixed=1.13.1",
                                                         "introduced=1!0", "fixed=1!0.2")),
                                   Range("GIT", ev("introduced=0", "fixed=abc123")))),
        Affected("PyPI", "torchvision", (Range("ECOSYSTEM", ev("introduced=0",
                                                               "fixed=0.20.0")),)),
        Affected("PyPI", "torch", (Range("ECOSYSTEM", ev("introduced=0", "fixed=2.9.0rc1",
                                                         "fixed=odd")),)))
    assert versions.fixed_versions(adv, "torch") == ["1.13.1", "2.9.0rc1", "2.10.0", "1!0.2",
                                                     "odd"]
    assert versions.fixed_versions(adv, "TorchVision") == ["0.20.0"]
    assert versions.fixed_versions(adv, "numpy") == []


# --------------------------------------------------------------------------- fuzzing

_PEP440 = r"[0-9]{1,3}(\.[0-9]{1,3}){1,3}((a|b|rc)[0-9])?(\.post[0-9])?(\.dev[0-9])?"
_VERSION = st.one_of(st.from_regex(rf"\A([0-9]!)?{_PEP440}(\+[a-z0-9]{{1,5}})?\Z"),
                     st.text(max_size=30))
_EVENT = st.builds(Event, st.sampled_from(["introduced", "fixed", "last_affected", "limit",
                                           "bogus"]), _VERSION)


@settings(max_examples=400, deadline=None)
@given(st.lists(_EVENT, max_size=8), _VERSION,
       st.sampled_from(["ECOSYSTEM", "SEMVER", "GIT", "???"]),
       st.sampled_from(["PyPI", "npm", "Go", "Debian:12", ""]))
def test_fuzz_affects_never_raises(events: list[Event], version: str, range_type: str,
                                   ecosystem: str) -> None:
    affected = Affected(ecosystem, "p", (Range(range_type, tuple(events)),), (version[:3],))
    assert versions.affects(affected, version) in (True, False)
    versions.valid(version)
    versions.fixed_versions(advisory("X", affected), "p")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(rf"\A{_PEP440}\Z"), st.from_regex(rf"\A{_PEP440}\Z"))
def test_fuzz_single_pair_agrees_with_packaging(fixed: str, version: str) -> None:
    from packaging.version import Version

    expected = Version(version) < Version(fixed)
    assert versions.affects(pypi("introduced=0", f"fixed={fixed}"), version) is expected
