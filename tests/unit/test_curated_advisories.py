"""The embedded advisory set that ships with hex (src/hexscan/supply/data/curated.json).

It is what a fresh, offline install matches dependencies against, so a typo in a vector, a
version that does not parse or a duplicated alias would silently turn into a wrong or missing
finding. These checks read the packaged file itself (through importlib.resources, as hex does)
and validate it with the real parsers: the OSV parser of hex, ``cvss`` and ``packaging``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from importlib import resources
from typing import Any

import pytest
from cvss import CVSS3, CVSS4
from packaging.version import InvalidVersion, Version

from hexscan.supply.curated import parse_curated
from hexscan.supply.feeds.osv import parse_osv, parse_time

ID_RE = re.compile(r"^(GHSA|PYSEC|CVE|MAL)-")
CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
EVENT_KINDS = {"introduced", "fixed", "last_affected", "limit"}


@pytest.fixture(scope="module")
def raw() -> bytes:
    return resources.files("hexscan.supply").joinpath("data", "curated.json").read_bytes()


@pytest.fixture(scope="module")
def doc(raw: bytes) -> dict[str, Any]:
    return json.loads(raw)


@pytest.fixture(scope="module")
def advisories(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["advisories"]


def _events(adv: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(package name, event kind, version) for every ECOSYSTEM event of an advisory."""
    out = []
    for aff in adv["affected"]:
        for rng in aff.get("ranges", []):
            if rng["type"] != "ECOSYSTEM":
                continue
            for ev in rng["events"]:
                ((kind, version),) = ev.items()
                out.append((aff["package"]["name"], kind, version))
    return out


def test_top_level_shape(doc: dict[str, Any]) -> None:
    assert set(doc) >= {"generated", "note", "advisories", "kev", "model_hashes"}
    date.fromisoformat(doc["generated"])
    assert "hex vulnfetch fetch" in doc["note"]
    assert isinstance(doc["kev"], list) and isinstance(doc["model_hashes"], list)
    assert 30 <= len(doc["advisories"]) <= 60


def test_hex_parses_the_shipped_file(raw: bytes, advisories: list[dict[str, Any]]) -> None:
    curated = parse_curated(raw)
    assert len(curated.advisories) == len(advisories)
    assert ("pypi", "torch") in curated.by_package
    assert curated.by_alias["CVE-2025-32434"] == ("GHSA-53q9-r3pm-6pq6",)


def test_every_advisory_is_a_valid_osv_record(advisories: list[dict[str, Any]]) -> None:
    for adv in advisories:
        assert adv["schema_version"] == "1.6.0", adv["id"]
        assert ID_RE.match(adv["id"]), adv["id"]
        parse_time(adv["modified"], adv["id"])
        parse_time(adv["published"], adv["id"])
        assert adv["summary"].strip() and adv["details"].strip(), adv["id"]
        parsed = parse_osv(adv)
        assert parsed.affected, f"{adv['id']} has no affected package"


def test_every_affected_entry_is_pypi_with_a_range(advisories: list[dict[str, Any]]) -> None:
    for adv in advisories:
        for aff in adv["affected"]:
            pkg = aff["package"]
            assert pkg["ecosystem"] == "PyPI", adv["id"]
            assert pkg["purl"] == f"pkg:pypi/{pkg['name'].lower()}", adv["id"]
            assert aff.get("ranges") or aff.get("versions"), adv["id"]
            for rng in aff.get("ranges", []):
                assert rng["type"] == "ECOSYSTEM", adv["id"]
                kinds = [next(iter(ev)) for ev in rng["events"]]
                assert set(kinds) <= EVENT_KINDS, adv["id"]
                assert kinds[0] == "introduced", adv["id"]
                assert not {"fixed", "last_affected"} <= set(kinds), adv["id"]


def test_every_range_version_parses_and_ranges_are_ordered(
        advisories: list[dict[str, Any]]) -> None:
    for adv in advisories:
        for aff in adv["affected"]:
            for rng in aff.get("ranges", []):
                previous: Version | None = None
                for ev in rng["events"]:
                    ((kind, text),) = ev.items()
                    if kind == "introduced" and text == "0":
                        version = Version("0")
                    else:
                        try:
                            version = Version(text)
                        except InvalidVersion:
                            pytest.fail(f"{adv['id']}: {kind} {text!r} is not PEP 440")
                    if previous is not None:
                        assert version > previous, f"{adv['id']}: events out of order"
                    previous = version
            for text in aff.get("versions", []):
                Version(text)


def test_fixed_versions_parse(advisories: list[dict[str, Any]]) -> None:
    fixed = [(adv["id"], v) for adv in advisories for _, k, v in _events(adv) if k == "fixed"]
    assert len(fixed) >= 30
    for ident, text in fixed:
        try:
            Version(text)
        except InvalidVersion:
            pytest.fail(f"{ident}: fixed version {text!r} does not parse")


def test_every_severity_vector_parses_with_cvss(advisories: list[dict[str, Any]]) -> None:
    for adv in advisories:
        assert adv["severity"], f"{adv['id']} has no severity"
        for item in adv["severity"]:
            score = item["score"]
            if item["type"] == "CVSS_V3":
                assert score.startswith(("CVSS:3.0/", "CVSS:3.1/")), adv["id"]
                base = CVSS3(score).scores()[0]
            else:
                assert item["type"] == "CVSS_V4", adv["id"]
                base = CVSS4(score).base_score
            assert 0.0 < float(base) <= 10.0, adv["id"]


def test_cwes_and_references_are_well_formed(advisories: list[dict[str, Any]]) -> None:
    for adv in advisories:
        for cwe in adv["database_specific"]["cwe_ids"]:
            assert re.fullmatch(r"CWE-\d+", cwe), adv["id"]
        assert adv["references"], adv["id"]
        for ref in adv["references"]:
            assert ref["url"].startswith("https://"), adv["id"]


def test_ids_and_aliases_are_unique(advisories: list[dict[str, Any]]) -> None:
    ids = Counter(adv["id"] for adv in advisories)
    assert [i for i, n in ids.items() if n > 1] == []
    every_name: Counter[str] = Counter()
    for adv in advisories:
        aliases = adv["aliases"]
        assert len(aliases) == len(set(aliases)), adv["id"]
        assert adv["id"] not in aliases, adv["id"]
        for alias in aliases:
            assert ID_RE.match(alias), (adv["id"], alias)
        every_name.update([adv["id"], *aliases])
    # one vulnerability is one record: no id or alias may be claimed by two records
    assert [n for n, c in every_name.items() if c > 1] == []


def test_every_record_names_a_cve(advisories: list[dict[str, Any]]) -> None:
    for adv in advisories:
        cves = [i for i in (adv["id"], *adv["aliases"]) if i.startswith("CVE-")]
        assert len(cves) == 1 and CVE_RE.match(cves[0]), adv["id"]


def test_torch_weights_only_rce_is_present(advisories: list[dict[str, Any]]) -> None:
    (adv,) = [a for a in advisories if a["id"] == "GHSA-53q9-r3pm-6pq6"]
    assert "CVE-2025-32434" in adv["aliases"]
    assert ("torch", "fixed", "2.6.0") in _events(adv)
    assert ("torch", "introduced", "0") in _events(adv)
    vectors = {s["type"]: s["score"] for s in adv["severity"]}
    assert vectors["CVSS_V3"] == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert CVSS3(vectors["CVSS_V3"]).scores()[0] == pytest.approx(9.8)
    assert adv["database_specific"]["cwe_ids"] == ["CWE-502"]


def test_multi_line_fix_is_one_ordered_range(advisories: list[dict[str, Any]]) -> None:
    (adv,) = [a for a in advisories if "CVE-2021-37678" in a["aliases"]]
    (tf,) = [a for a in adv["affected"] if a["package"]["name"] == "tensorflow"]
    (rng,) = tf["ranges"]
    assert rng["events"] == [{"introduced": "0"}, {"fixed": "2.3.4"},
                             {"introduced": "2.4.0"}, {"fixed": "2.4.3"},
                             {"introduced": "2.5.0"}, {"fixed": "2.5.1"}]


def test_expected_ml_packages_are_covered(advisories: list[dict[str, Any]]) -> None:
    names = {aff["package"]["name"].lower() for adv in advisories for aff in adv["affected"]}
    assert names >= {"torch", "tensorflow", "keras", "transformers", "onnx", "llama-cpp-python",
                     "numpy", "joblib", "scikit-learn", "pyyaml", "pillow", "mlflow",
                     "langchain", "gradio", "ray", "langflow"}


def test_kev_entries_match_curated_cves(doc: dict[str, Any],
                                        advisories: list[dict[str, Any]]) -> None:
    cves = {i for adv in advisories for i in (adv["id"], *adv["aliases"]) if CVE_RE.match(i)}
    seen = set()
    for entry in doc["kev"]:
        assert set(entry) == {"cveID", "vendorProject", "product", "vulnerabilityName",
                              "dateAdded", "dueDate", "knownRansomwareCampaignUse"}
        assert entry["cveID"] in cves, entry["cveID"]
        assert entry["cveID"] not in seen
        seen.add(entry["cveID"])
        added = date.fromisoformat(entry["dateAdded"])
        assert date.fromisoformat(entry["dueDate"]) > added
        assert entry["knownRansomwareCampaignUse"] in {"Known", "Unknown"}
