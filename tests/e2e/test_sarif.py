"""SARIF 2.1.0 output: OASIS schema validity and what GitHub code scanning requires.

Every SARIF log produced here is validated against the OASIS schema (JSON Schema
draft-04) in ``../shared/schemas`` and checked for GitHub's ingestion rules: one run,
every ``ruleId`` present in ``driver.rules`` at ``ruleIndex``, ``security-severity`` a
numeric string within 0-10, a ``security`` tag, our own ``partialFingerprints`` (GitHub
cannot hash lines of a binary model), and artifact URIs relative to ``%SRCROOT%``.

Scans run ``hex`` as a subprocess on real files: malicious pickles written as an attacker
would (by the pickle assembler), torch checkpoints by torch, safetensors by safetensors.
Findings hex cannot produce on its own yet (CVSS scores, suppressions, history states,
errors) are rendered in-process from a ScanReport built of real Finding objects.
"""

from __future__ import annotations

import json
import math
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run_hex
from regression.pickle_asm import os_system
from regression.samples import _torch_members, zip_of

from hexscan.model.finding import Cvss, Finding, Location, Suppression
from hexscan.model.report import ErrorEntry, FileEntry, ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.report import sarif
from hexscan.rules import pickle as pickle_rules
from hexscan.rules._rule import Rule

SARIF_SCHEMA = REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
LEVELS = {"none", "note", "warning", "error"}
#: GitHub's security-severity bands for the hex severities (inclusive bounds).
BANDS = {"CRITICAL": (9.0, 10.0), "HIGH": (7.0, 8.9), "MEDIUM": (4.0, 6.9),
         "LOW": (0.1, 3.9), "INFO": (0.0, 0.0)}
EXIT_CLEAN, EXIT_FINDINGS = 0, 1


# ------------------------------------------------------------------------------ checks

@pytest.fixture(scope="session")
def validator() -> Any:
    """A draft-04 validator of the OASIS SARIF 2.1.0 schema (skips when it is absent)."""
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"the OASIS SARIF schema is not present at {SARIF_SCHEMA}")
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema,
                                      format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def check(text: str, validator: Any) -> dict[str, Any]:
    """Parse, schema-validate and apply GitHub's rules to one SARIF log; return the run."""
    text.encode("utf-8")  # strict: no lone surrogates reach the file
    log = json.loads(text)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    assert log["version"] == "2.1.0"
    assert log["$schema"] == sarif.SCHEMA_URI
    assert len(log["runs"]) == 1, "GitHub rejects several runs of one tool and category"
    run: dict[str, Any] = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "hex" and driver["version"] and driver["informationUri"]
    assert run["automationDetails"]["id"].startswith("hex/")
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    for rule in rules:
        _check_rule(rule)
    for result in run["results"]:
        _check_result(result, rules)
    base = run.get("originalUriBaseIds", {}).get("%SRCROOT%")
    if base is not None:
        assert base["uri"].startswith("file:///") and base["uri"].endswith("/")
    return run


def _check_rule(rule: dict[str, Any]) -> None:
    props = rule["properties"]
    score = props["security-severity"]
    assert isinstance(score, str), "GitHub wants security-severity as a string"
    assert 0.0 <= float(score) <= 10.0 and math.isfinite(float(score))
    assert "security" in props["tags"] and len(props["tags"]) <= 20
    assert all(t == t.lower() for t in props["tags"] if t.startswith("external/cwe/"))
    assert rule["name"].isalnum() and rule["name"][0].isupper()
    assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    assert rule["help"]["text"] and rule["help"]["markdown"] and rule["helpUri"]
    assert rule["defaultConfiguration"]["level"] in LEVELS


def _check_result(result: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert result["level"] in LEVELS and result["message"]["text"]
    fingerprint = result["partialFingerprints"]["hexFingerprint/v1"]
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert result["locations"], "GitHub rejects a result without locations"
    for loc in result["locations"] + result.get("relatedLocations", []):
        artifact = loc["physicalLocation"]["artifactLocation"]
        uri = artifact["uri"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert uri and not uri.startswith("/") and "://" not in uri, uri
        assert urllib.parse.quote(urllib.parse.unquote(uri), safe="/") == uri, uri
        region = loc["physicalLocation"].get("region", {})
        assert region.get("startLine", 1) >= 1
    own = float(result["properties"]["security-severity"])
    rule_score = float(rules[result["ruleIndex"]]["properties"]["security-severity"])
    assert rule_score >= own, "a rule carries the highest score of its results"
    if result["properties"]["cvss"] is None:
        low, high = BANDS[result["properties"]["severity"]]
        assert low <= own <= high


def hex_sarif(*args: str, cwd: Path | None = None, home: Path | None = None) -> Any:
    env = {"HEX_HOME": str(home)} if home is not None else None
    return run_hex("scan", *args, "--format", "sarif", "--workers", "0", cwd=cwd, env=env)


def uri_of(result: dict[str, Any]) -> str:
    return str(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])


# ---------------------------------------------------------------------------- fixtures

def write_safetensors(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.arange(4, dtype=np.float32).reshape(2, 2)}, str(path),
              metadata={"format": "pt"})


@pytest.fixture
def clean_tree(tmp_path: Path) -> Path:
    root = tmp_path / "clean"
    root.mkdir()
    write_safetensors(root / "model.safetensors")
    return root


@pytest.fixture
def plain_tree(tmp_path: Path) -> Path:
    """Malicious pickles in plain files, one in a directory whose name needs encoding."""
    root = tmp_path / "plain"
    (root / "sub dir#1").mkdir(parents=True)
    (root / "evil.pkl").write_bytes(os_system("echo pwned"))
    (root / "sub dir#1" / "evil 2.pkl").write_bytes(os_system("echo again", protocol=0))
    write_safetensors(root / "model.safetensors")
    return root


@pytest.fixture
def container_tree(tmp_path: Path) -> Path:
    """A torch checkpoint whose data.pkl is malicious, and a zip holding a bad pickle."""
    root = tmp_path / "containers"
    root.mkdir()
    (root / "model.pt").write_bytes(zip_of(_torch_members(os_system("echo torch"))))
    (root / "bundle.zip").write_bytes(zip_of([("README.txt", b"weights\n"),
                                              ("inner/evil.pkl", os_system("echo zip"))]))
    return root


# ----------------------------------------------------------------------- CLI: scans

def test_no_findings(clean_tree: Path, tmp_path: Path, validator: Any) -> None:
    run = hex_sarif(str(clean_tree))
    assert run.code == EXIT_CLEAN, run.stderr
    sarif_run = check(run.stdout, validator)
    assert sarif_run["results"] == [] and sarif_run["tool"]["driver"]["rules"] == []
    invocation = sarif_run["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert invocation["toolExecutionNotifications"] == []
    assert invocation["startTimeUtc"] <= invocation["endTimeUtc"]
    assert sarif_run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == clean_tree.as_uri() + "/"
    assert sarif_run["properties"]["summary"]["total_issues"] == 0


def test_findings_in_plain_files_match_the_json_report(plain_tree: Path, tmp_path: Path,
                                                       validator: Any) -> None:
    out = tmp_path / "out" / "hex.sarif"
    out.parent.mkdir()
    run = hex_sarif(str(plain_tree), "-o", str(out))
    assert run.code == EXIT_FINDINGS, run.stderr
    assert run.stdout == "", "-o writes the report to the file only"
    sarif_run = check(out.read_text(encoding="utf-8"), validator)
    report = run_hex("scan", str(plain_tree), "--json", "--workers", "0").json()
    assert report["results"], "the malicious pickles must be found"

    by_fp = {r["partialFingerprints"]["hexFingerprint/v1"]: r for r in sarif_run["results"]}
    assert set(by_fp) == {r["fingerprint"] for r in report["results"]}
    for expected in report["results"]:
        result = by_fp[expected["fingerprint"]]
        rel = Path(expected["file_path"]).relative_to(plain_tree).as_posix()
        assert uri_of(result) == urllib.parse.quote(rel)
        assert result["ruleId"] == expected["rule_id"]
        assert result["message"]["text"] == expected["description"]
        assert result["level"] == sarif.LEVEL[Severity[expected["severity"]]].lower()
        assert result["properties"]["evidence"] == expected["evidence"]
        region = result["locations"][0]["physicalLocation"].get("region")
        if expected["offset"] is not None:
            assert region == {"byteOffset": expected["offset"]}
    assert "sub%20dir%231/evil%202.pkl" in {uri_of(r) for r in sarif_run["results"]}
    pkl_rule = next(r for r in sarif_run["tool"]["driver"]["rules"] if r["id"] == "HEX-PKL-001")
    assert pkl_rule["properties"]["security-severity"] == "9.5"
    assert "external/cwe/cwe-502" in pkl_rule["properties"]["tags"]
    assert pkl_rule["name"] == "PickleImportsADangerousCallableOrModule"


def test_fingerprints_and_uris_survive_moving_the_tree(plain_tree: Path, tmp_path: Path,
                                                       validator: Any) -> None:
    """Alerts must not duplicate when the checkout lives at another path."""
    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(plain_tree, moved)
    first = check(hex_sarif(str(plain_tree)).stdout, validator)["results"]
    second = check(hex_sarif(str(moved)).stdout, validator)["results"]

    def keys(results: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(r["ruleId"], uri_of(r), r["partialFingerprints"]["hexFingerprint/v1"])
                for r in results}

    assert keys(first) == keys(second) and first


def test_members_of_containers_are_logical_locations(container_tree: Path,
                                                     validator: Any) -> None:
    run = hex_sarif(str(container_tree))
    assert run.code == EXIT_FINDINGS, run.stderr
    results = check(run.stdout, validator)["results"]
    members = {}
    for result in results:
        loc = result["locations"][0]
        logical = loc.get("logicalLocations")
        if logical is None:
            continue
        assert logical[0]["kind"] == "member"
        assert "region" not in loc["physicalLocation"], "member offsets are not file offsets"
        members[uri_of(result)] = logical[0]["fullyQualifiedName"]
        assert result["properties"]["member"] in logical[0]["fullyQualifiedName"]
    assert members.get("bundle.zip") == "bundle.zip!/inner/evil.pkl"
    assert members.get("model.pt", "").startswith("model.pt!/")
    assert members["model.pt"].endswith("/data.pkl")


def test_a_single_file_target_is_relative_to_its_directory(plain_tree: Path,
                                                           validator: Any) -> None:
    run = hex_sarif(str(plain_tree / "evil.pkl"))
    sarif_run = check(run.stdout, validator)
    assert [uri_of(r) for r in sarif_run["results"]] == ["evil.pkl"]
    assert sarif_run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == plain_tree.as_uri() + "/"


def test_several_roots_keep_equal_names_apart(tmp_path: Path, validator: Any) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "evil.pkl").write_bytes(os_system(f"echo {name}"))
    run = hex_sarif(str(tmp_path / "a"), str(tmp_path / "b"))
    sarif_run = check(run.stdout, validator)
    assert sorted(uri_of(r) for r in sarif_run["results"]) == ["a/evil.pkl", "b/evil.pkl"]
    assert sarif_run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"


def test_history_states_become_baseline_states(plain_tree: Path, tmp_path: Path,
                                               validator: Any) -> None:
    home = tmp_path / "home"
    first = check(hex_sarif(str(plain_tree), home=home).stdout, validator)["results"]
    second = check(hex_sarif(str(plain_tree), home=home).stdout, validator)["results"]
    assert {r.get("baselineState") for r in first} == {"new"}
    assert {r.get("baselineState") for r in second} == {"unchanged"}
    no_history = check(hex_sarif(str(plain_tree), "--no-history").stdout, validator)
    assert all("baselineState" not in r for r in no_history["results"])


def test_unreadable_target_is_a_notification(tmp_path: Path, validator: Any) -> None:
    run = hex_sarif(str(tmp_path / "missing.pkl"))
    invocation = check(run.stdout, validator)["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "no such file" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "missing.pkl"


# --------------------------------------------------------- in-process: built reports

DEP_RULE = Rule(
    id="TEST-DEP-001", title="Dependency with a known vulnerability", type="vulnerability",
    severity=Severity.HIGH, cwe=(), summary="A pinned dependency has a published advisory.",
    doc="The model's requirements pin a version that an advisory lists as affected.",
    remediation="Upgrade to a fixed version.", references=("https://osv.dev/",))


def located(f: Finding, root: Path, rel: str, member: str | None = None) -> Finding:
    return f.located(file_path=str(root / rel), rel_path=rel, member=member, scanner="test")


def report_of(root: Path, findings: list[Finding], **kw: Any) -> ScanReport:
    files = tuple(FileEntry(f.file_path, None, "pickle", 10, Status.SCANNED, rel_path=f.rel_path)
                  for f in findings)
    defaults: dict[str, Any] = {
        "scan_id": "00000000-0000-4000-8000-000000000000", "timestamp": "2026-01-02T03:04:05Z",
        "target": str(root), "version": "0.1.0", "findings": tuple(findings), "files": files,
        "errors": (), "duration_s": 1.5, "roots": (str(root),)}
    defaults.update(kw)
    return ScanReport(**defaults)


def rendered(report: ScanReport, validator: Any) -> dict[str, Any]:
    return check(sarif.render(report, False), validator)


def test_cvss_scores_become_security_severity(tmp_path: Path, validator: Any) -> None:
    critical = located(Finding(
        DEP_RULE, "torch 2.3.0 is affected by CVE-2025-32434", key="CVE-2025-32434",
        severity=Severity.CRITICAL, cwe=("CWE-502",),
        cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
        vulnerability={"id": "GHSA-53q9-r3pm-6pq6", "aliases": ("CVE-2025-32434",),
                       "package": "torch", "version": "2.3.0", "fixed": ["2.6.0"],
                       "epss": 0.01, "kev": False}), tmp_path, "requirements.txt")
    medium = located(Finding(
        DEP_RULE, "numpy 1.0 is affected by CVE-2000-0001", key="CVE-2000-0001",
        severity=Severity.MEDIUM, cwe=("CWE-20", "NVD-CWE-Other"),
        cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3, "MEDIUM")),
        tmp_path, "requirements.txt")
    run = rendered(report_of(tmp_path, [critical, medium]), validator)
    [rule] = run["tool"]["driver"]["rules"]
    assert rule["properties"]["security-severity"] == "9.8"
    assert rule["properties"]["tags"] == ["security", "external/cwe/cwe-502",
                                          "external/cwe/cwe-20", "vulnerability"]
    assert rule["helpUri"] == "https://osv.dev/"
    assert rule["defaultConfiguration"]["level"] == "error"  # the rule's default: HIGH
    first, second = run["results"]
    assert first["properties"]["security-severity"] == "9.8" and first["level"] == "error"
    assert second["properties"]["security-severity"] == "5.3" and second["level"] == "warning"
    assert first["properties"]["cvss"]["vector_string"].startswith("CVSS:3.1/")
    assert first["properties"]["vulnerability"]["aliases"] == ["CVE-2025-32434"]
    assert uri_of(first) == "requirements.txt"


def test_severity_map_without_cvss(tmp_path: Path, validator: Any) -> None:
    findings = [located(Finding(pickle_rules.DANGEROUS_GLOBAL, f"{sev.name} finding",
                                key=sev.name, severity=sev), tmp_path, f"{sev.name}.pkl")
                for sev in Severity]
    run = rendered(report_of(tmp_path, findings), validator)
    scores = {r["properties"]["severity"]: r["properties"]["security-severity"]
              for r in run["results"]}
    assert scores == {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0",
                      "INFO": "0.0"}
    levels = {r["properties"]["severity"]: r["level"] for r in run["results"]}
    assert levels == {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning",
                      "LOW": "note", "INFO": "note"}


def test_suppressed_shown_and_hidden_findings(tmp_path: Path, validator: Any) -> None:
    rule = pickle_rules.DANGEROUS_GLOBAL
    shown = located(Finding(rule, "shown", key="a"), tmp_path, "a.pkl")
    hidden = located(Finding(rule, "hidden by --severity", key="b", severity=Severity.LOW),
                     tmp_path, "b.pkl")
    suppressed = located(Finding(rule, "suppressed", key="c", severity=Severity.LOW,
                                 suppression=Suppression("vendored test fixture",
                                                         ".hexignore:3", "2030-01-01")),
                         tmp_path, "c.pkl")
    report = report_of(tmp_path, [shown, hidden, suppressed],
                       shown=("CRITICAL", "HIGH", "MEDIUM"))
    results = rendered(report, validator)["results"]
    assert [r["message"]["text"] for r in results] == ["shown", "suppressed"]
    assert "suppressions" not in results[0]
    assert results[1]["suppressions"] == [{
        "kind": "external", "status": "accepted", "justification": "vendored test fixture",
        "properties": {"source": ".hexignore:3", "expires": "2030-01-01"}}]


def test_statuses_related_locations_and_lines(tmp_path: Path, validator: Any) -> None:
    rule = pickle_rules.DANGEROUS_GLOBAL
    new = located(Finding(rule, "new one", key="n", status="new", offset=7,
                          also_at=(Location(str(tmp_path / "copy.zip"), "copy.zip",
                                            "x/y.pkl"),)), tmp_path, "n.pkl")
    old = located(Finding(rule, "old one", key="o", status="existing", line_number=12),
                  tmp_path, "template.jinja")
    results = rendered(report_of(tmp_path, [new, old]), validator)["results"]
    assert results[0]["baselineState"] == "new"
    assert results[1]["baselineState"] == "unchanged"
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {"byteOffset": 7}
    assert results[1]["locations"][0]["physicalLocation"]["region"] == {"startLine": 12}
    [related] = results[0]["relatedLocations"]
    assert related["id"] == 1
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "copy.zip"
    assert related["logicalLocations"][0]["fullyQualifiedName"] == "copy.zip!/x/y.pkl"


def test_errors_and_warnings_are_notifications(tmp_path: Path, validator: Any) -> None:
    errors = (ErrorEntry(str(tmp_path / "big.zip"), "inner/huge.bin", "limit",
                         "member exceeds 1 GiB"),)
    report = report_of(tmp_path, [], errors=errors, warnings=("vulnerability DB is stale",))
    invocation = rendered(report, validator)["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 3
    error, warning = invocation["toolExecutionNotifications"]
    assert error["level"] == "error" and error["descriptor"] == {"id": "limit"}
    assert error["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == \
        "big.zip!/inner/huge.bin"
    assert warning == {"level": "warning", "message": {"text": "vulnerability DB is stale"}}
    assert invocation["startTimeUtc"] == "2026-01-02T03:04:05.000Z"
    assert invocation["endTimeUtc"] == "2026-01-02T03:04:06.500Z"


def test_unusual_evidence_and_text_stay_valid_json(tmp_path: Path, validator: Any) -> None:
    evidence = {"raw": b"\x00\xff", 3: (1, 2), "set": {"b", "a"}, "nan": float("nan"),
                "nested": {"surrogate": "a\udc80b"}}
    finding = located(Finding(pickle_rules.DANGEROUS_GLOBAL, "message \ud800 with ]]> <x>",
                              key="k", evidence=evidence), tmp_path, "we ird:name.pkl")
    run = rendered(report_of(tmp_path, [finding]), validator)
    [result] = run["results"]
    assert result["properties"]["evidence"] == {
        "raw": "b'\\x00\\xff'", "3": [1, 2], "set": ["a", "b"], "nan": "nan",
        "nested": {"surrogate": "a\\udc80b"}}
    assert result["message"]["text"] == "message \\ud800 with ]]> <x>"
    assert uri_of(result) == "we%20ird%3Aname.pkl"


def test_a_report_without_roots_still_has_relative_locations(validator: Any) -> None:
    finding = Finding(pickle_rules.DANGEROUS_GLOBAL, "m", key="k").located(
        file_path="/abs/models/evil.pkl", rel_path="models/evil.pkl", member=None,
        scanner="pickle")
    run = rendered(report_of(Path("/abs"), [finding], roots=()), validator)
    assert uri_of(run["results"][0]) == "models/evil.pkl"
    assert "originalUriBaseIds" not in run


def test_vulnerable_dependency_scan_gives_valid_sarif_with_cvss(tmp_path: Path,
                                                                validator: Any) -> None:
    """A real supply-chain finding: the rule's security-severity is the CVSS base score."""
    (tmp_path / "requirements.txt").write_text("torch==2.5.1\n", encoding="utf-8")
    result = run_hex(str(tmp_path), "--format", "sarif",
                     env={"HEX_HOME": str(tmp_path / ".home")})
    assert result.code == EXIT_FINDINGS, result.stderr
    run = check(result.stdout, validator)
    hits = [r for r in run["results"] if r["ruleId"] == "HEX-SUP-001"
            and r["properties"]["vulnerability"]["id"] == "CVE-2025-32434"]
    assert len(hits) == 1
    hit = hits[0]
    assert hit["level"] == "error"
    assert hit["properties"]["cvss"]["base_score"] == 9.8
    assert hit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "requirements.txt"
    assert hit["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "HEX-SUP-001")
    assert rule["properties"]["security-severity"] == "9.8"
