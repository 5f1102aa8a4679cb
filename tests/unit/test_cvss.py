"""CVSS scoring, vector choice and the vulnerability severity policy.

Golden vectors are published (vector, base score) pairs from NVD and the GitHub Advisory
Database; every one is also checked against the ``cvss`` library's own number, so a
wrapper bug (wrong class, wrong rounding, wrong version label) cannot hide.
"""

from __future__ import annotations

import itertools

import pytest
from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from hexscan.model.finding import Cvss
from hexscan.model.severity import Severity
from hexscan.supply import cvss
from hexscan.supply.records import EpssScore, KevEntry, SeverityVector

# (where it was published, vector, published base score, band)
PUBLISHED = [
    ("CVE-2025-32434 NVD", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
    ("CVE-2025-32434 GHSA", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
     9.3, "CRITICAL"),
    ("CVE-2021-44228 NVD", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CRITICAL"),
    ("CVE-2020-27464 NVD", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8, "HIGH"),
    ("CVE-2021-4034 NVD", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "HIGH"),
    ("CVE-2023-44487 NVD", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "HIGH"),
    ("CVE-2024-6387 NVD", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, "HIGH"),
    ("CVE-2024-11443 NVD", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, "HIGH"),
    ("CVE-2024-53981 GHSA", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
     8.7, "HIGH"),
    ("CVE-2024-8309 GHSA", "CVSS:3.0/AV:L/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L", 4.9, "MEDIUM"),
    ("CVE-2024-8309 GHSA", "CVSS:4.0/AV:L/AC:L/AT:P/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
     2.1, "LOW"),
    ("CVE-2024-2965 GHSA", "CVSS:3.0/AV:P/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", 4.2, "MEDIUM"),
    ("CVE-2024-5206 GHSA", "CVSS:3.0/AV:N/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.3, "MEDIUM"),
]


@pytest.mark.parametrize(("source", "vector", "published", "severity"), PUBLISHED,
                         ids=[f"{row[0]} {row[1][:8]}" for row in PUBLISHED])
def test_published_scores(source: str, vector: str, published: float, severity: str) -> None:
    got = cvss.score(vector)
    library = CVSS4(vector).base_score if vector.startswith("CVSS:4.0/") \
        else CVSS3(vector).base_score
    assert got == Cvss(vector[5:8], vector, published, severity)
    assert got.base_score == float(library)
    assert isinstance(got.base_score, float)


def test_v2_vectors_use_the_v2_bands() -> None:
    shellshock = cvss.score("AV:N/AC:L/Au:N/C:C/I:C/A:C")  # CVE-2014-6271 NVD v2
    heartbleed = cvss.score("AV:N/AC:L/Au:N/C:P/I:N/A:N")  # CVE-2014-0160 NVD v2
    assert shellshock == Cvss("2.0", "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, "HIGH")
    assert heartbleed == Cvss("2.0", "AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0, "MEDIUM")
    assert heartbleed.base_score == float(CVSS2(heartbleed.vector_string).base_score)
    assert cvss.score("AV:N/AC:L/Au:N/C:N/I:N/A:N") == Cvss(
        "2.0", "AV:N/AC:L/Au:N/C:N/I:N/A:N", 0.0, "NONE")


# Real v3.1 vectors whose base score lands exactly on each band edge.
BOUNDARIES = [
    ("CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:L/A:L", 3.9, "LOW"),
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:L/I:N/A:N", 4.0, "MEDIUM"),
    ("CVSS:3.1/AV:N/AC:L/PR:H/UI:R/S:C/C:H/I:L/A:N", 6.9, "MEDIUM"),
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:L/A:L", 7.0, "HIGH"),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:L", 8.9, "HIGH"),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:H", 9.0, "CRITICAL"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "NONE"),
]


@pytest.mark.parametrize(("vector", "base", "severity"), BOUNDARIES)
def test_band_boundaries(vector: str, base: float, severity: str) -> None:
    got = cvss.score(vector)
    assert got is not None and (got.base_score, got.base_severity) == (base, severity)
    assert cvss.band(base) == severity


@pytest.mark.parametrize(("base", "v3", "v2"), [
    (0.0, "NONE", "NONE"), (0.1, "LOW", "LOW"), (3.9, "LOW", "LOW"), (4.0, "MEDIUM", "MEDIUM"),
    (6.9, "MEDIUM", "MEDIUM"), (7.0, "HIGH", "HIGH"), (8.9, "HIGH", "HIGH"),
    (9.0, "CRITICAL", "HIGH"), (10.0, "CRITICAL", "HIGH")])
def test_band_tables(base: float, v3: str, v2: str) -> None:
    assert (cvss.band(base), cvss.band_v2(base)) == (v3, v2)


def test_every_v31_base_vector_agrees_with_the_library() -> None:
    """All 2,592 v3.1 base vectors: our score and band equal the library's."""
    count = 0
    for values in itertools.product("NALP", "LH", "NLH", "NR", "UC", "HLN", "HLN", "HLN"):
        vector = "CVSS:3.1/AV:{}/AC:{}/PR:{}/UI:{}/S:{}/C:{}/I:{}/A:{}".format(*values)
        library = CVSS3(vector)
        got = cvss.score(vector)
        assert got is not None
        assert got.base_score == float(library.base_score)
        assert got.base_severity == library.severities()[0].upper()
        count += 1
    assert count == 2592


@pytest.mark.parametrize("vector", [
    "", "   ", "garbage", "CVSS:3.1/", "CVSS:3.1/AV:N",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
    "CVSS:3.1/AV:Z/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # unknown value
    "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # repeated metric
    "CVSS:9.9/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # unknown version
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H",  # subsequent metrics missing
    "CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # a v3 body under a v4 prefix
    "AV:N/AC:L/Au:N/C:P/I:P",  # v2 without A
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/" + "E:X/" * 200,  # absurdly long
])
def test_malformed_vectors_give_none(vector: str) -> None:
    assert cvss.score(vector) is None


def test_non_strings_give_none() -> None:
    for value in (None, 9.8, b"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", ["CVSS:3.1"]):
        assert cvss.score(value) is None  # type: ignore[arg-type]


METRIC_TOKENS = st.sampled_from([
    "CVSS:3.1", "CVSS:3.0", "CVSS:4.0", "AV:N", "AV:L", "AC:L", "AC:H", "AT:N", "AT:P",
    "PR:N", "PR:L", "UI:N", "UI:R", "UI:P", "S:U", "S:C", "C:H", "I:H", "A:H", "VC:H",
    "VI:L", "VA:N", "SC:N", "SI:N", "SA:N", "Au:N", "E:X", "E:A", "CR:H", "", "AV", ":",
    "MAV:N", "RL:O", "S:", "AV:X"])


@given(st.lists(METRIC_TOKENS, max_size=16).map("/".join))
def test_score_never_raises_on_vector_like_input(vector: str) -> None:
    result = cvss.score(vector)
    assert result is None or 0.0 <= result.base_score <= 10.0


@given(st.text(max_size=120))
def test_score_never_raises_on_any_text(vector: str) -> None:
    result = cvss.score(vector)
    assert result is None or 0.0 <= result.base_score <= 10.0


# --- best -----------------------------------------------------------------------------

V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V31_LOW = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N"  # 3.3
V30 = "CVSS:3.0/AV:N/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N"  # 5.3
V40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3
V2 = "AV:N/AC:L/Au:N/C:P/I:P/A:P"  # 7.5


def sv(vector: str, origin: str) -> SeverityVector:
    kind = {"4": "CVSS_V4", "3": "CVSS_V3"}.get(vector[5:6], "CVSS_V2") \
        if vector.startswith("CVSS:") else "CVSS_V2"
    return SeverityVector(kind, vector, origin)


@pytest.mark.parametrize(("vectors", "chosen"), [
    ([sv(V40, "nvd-primary"), sv(V30, "nvd-primary"), sv(V31_LOW, "nvd-primary")], V31_LOW),
    ([sv(V31, "osv"), sv(V30, "nvd-primary")], V30),
    ([sv(V31, "nvd-secondary"), sv(V30, "osv"), sv(V40, "nvd-primary")], V30),
    ([sv(V30, "osv"), sv(V31_LOW, "osv")], V31_LOW),
    ([sv(V2, "nvd-primary"), sv(V40, "osv"), sv(V31, "nvd-secondary")], V31),
    ([sv(V2, "nvd-primary"), sv(V40, "nvd-secondary")], V40),
    ([sv(V40, "nvd-secondary"), sv(V40.replace("VA:H", "VA:L"), "osv")],
     V40.replace("VA:H", "VA:L")),
    ([sv(V2, "osv")], V2),
    ([sv("CVSS:3.1/AV:N/broken", "nvd-primary"), sv(V31_LOW, "nvd-secondary")], V31_LOW),
    ([sv(V31, "ghsa"), sv(V31_LOW, "nvd-secondary")], V31_LOW),
])
def test_best_preference_order(vectors: list[SeverityVector], chosen: str) -> None:
    got = cvss.best(vectors)
    assert got is not None and got.vector_string == chosen


def test_best_keeps_v4_when_alone_and_none_when_nothing_scores() -> None:
    assert cvss.best([sv(V40, "osv")]) == Cvss("4.0", V40, 9.3, "CRITICAL")
    assert cvss.best([]) is None
    assert cvss.best([sv("not a vector", "osv")]) is None


# --- severity policy ------------------------------------------------------------------


def c(base: float) -> Cvss:
    return Cvss("3.1", "CVSS:3.1/...", base, cvss.band(base))


EPSS_HIGH = EpssScore("CVE-2023-44487", 0.944, 0.9999, "2026-05-18", "v2025.03.14")
EPSS_EDGE = EpssScore("CVE-2023-44487", cvss.EPSS_RAISE_THRESHOLD, 0.9, "2026-05-18", "v4")
EPSS_LOW = EpssScore("CVE-2024-5206", 0.099, 0.9, "2026-05-18", "v2025.03.14")
KEV = KevEntry("CVE-2023-44487", "2023-10-10", "2023-10-31", "Unknown")

D = Severity


@pytest.mark.parametrize(("score", "epss", "kev", "malicious", "expected"), [
    (c(9.8), None, None, False, D.CRITICAL),
    (c(7.5), None, None, False, D.HIGH),
    (c(5.3), None, None, False, D.MEDIUM),
    (c(3.3), None, None, False, D.LOW),
    (c(0.0), None, None, False, D.INFO),
    (None, None, None, False, D.MEDIUM),
    (c(5.3), EPSS_HIGH, None, False, D.HIGH),
    (c(5.3), EPSS_EDGE, None, False, D.HIGH),
    (c(5.3), EPSS_LOW, None, False, D.MEDIUM),
    (c(0.0), EPSS_HIGH, None, False, D.LOW),
    (c(9.8), EPSS_HIGH, None, False, D.CRITICAL),
    (None, EPSS_HIGH, None, False, D.HIGH),
    (c(3.3), None, KEV, False, D.HIGH),
    (c(0.0), None, KEV, False, D.HIGH),
    (c(5.3), None, KEV, False, D.HIGH),
    (c(7.5), None, KEV, False, D.CRITICAL),
    (None, None, KEV, False, D.HIGH),
    (c(5.3), EPSS_HIGH, KEV, False, D.CRITICAL),
    (c(3.3), EPSS_HIGH, KEV, False, D.HIGH),
    (c(0.0), None, None, True, D.CRITICAL),
    (None, None, None, True, D.CRITICAL),
    (Cvss("2.0", "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, "HIGH"), None, None, False, D.HIGH),
])
def test_severity_policy(score: Cvss | None, epss: EpssScore | None, kev: KevEntry | None,
                         malicious: bool, expected: Severity) -> None:
    assert cvss.finding_severity(score, epss, kev, malicious) is expected


def test_policy_threshold_is_ten_percent() -> None:
    assert cvss.EPSS_RAISE_THRESHOLD == 0.1
