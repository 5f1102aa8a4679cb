"""JUnit XML output, read back with junitparser (an independent parser) and compared with
the JSON report of the same tree.

Findings of every severity come from the test-only scanner plugin (tests/plugins), which
plants one finding per file by extension (``*.critical`` ... ``*.info``) and raises on
``*.boom``; the real pickle scanner supplies a malicious pickle. One test case per
top-level file, a ``<failure>`` per counting finding at or above ``--fail-on``.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junitparser
import pytest
from conftest import REPO, HexRun, run_hex
from regression.pickle_asm import os_system

from hexscan.model.finding import Finding, Suppression
from hexscan.model.report import FileEntry, ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.report import junit
from hexscan.rules import pickle as pickle_rules

PLUGIN_DIR = REPO / "tests" / "plugins"
PLUGIN = "hextest_plugin:MisbehavingScanner"
SEVERITIES = ["critical", "high", "medium", "low", "info"]
#: Characters XML 1.0 cannot hold at all.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_safetensors(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(path), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(working directory whose hex.toml loads the plugin, tree to scan)."""
    base = tmp_path_factory.mktemp("junit")
    cwd = base / "cwd"
    cwd.mkdir()
    (cwd / "hex.toml").write_text(f'plugins = ["{PLUGIN}"]\n', encoding="utf-8")
    tree = base / "tree"
    (tree / "sub").mkdir(parents=True)
    for sev in SEVERITIES:
        (tree / f"planted.{sev}").write_bytes(b"x\n")
    (tree / "sub" / "evil.pkl").write_bytes(os_system("echo pwned"))
    (tree / "clean.txt").write_bytes(b"nothing to see\n")
    write_safetensors(tree / "model.safetensors")
    (tree / "broken.boom").write_bytes(b"x\n")
    (tree / "link.txt").symlink_to("clean.txt")  # inside the tree: skipped, not followed
    from fixtures.archives import zip_bytes

    (tree / "bundle.zip").write_bytes(zip_bytes([("inner.high", b"x\n"), ("note.low", b"x\n")]))
    return cwd, tree


def hex_run(project: tuple[Path, Path], *args: str) -> HexRun:
    cwd, tree = project
    path = os.pathsep.join(p for p in (str(PLUGIN_DIR), os.environ.get("PYTHONPATH")) if p)
    return run_hex("scan", str(tree), "--workers", "0", "--no-history", *args, cwd=cwd,
                   env={"PYTHONPATH": path})


def parse(text: str) -> junitparser.JUnitXml:
    assert not NOT_XML.search(text)
    ET.fromstring(text.encode("utf-8"))  # noqa: S314  (hex's own output; well-formedness)
    xml = junitparser.JUnitXml.fromstring(text)
    assert isinstance(xml, junitparser.JUnitXml)
    return xml


def only_suite(xml: junitparser.JUnitXml) -> junitparser.TestSuite:
    [suite] = list(xml)
    assert suite.name == "hex scan"
    return suite


def cases_by_name(suite: junitparser.TestSuite) -> dict[str, junitparser.TestCase]:
    return {case.name: case for case in suite}


def failures(case: junitparser.TestCase) -> list[junitparser.Failure]:
    return [r for r in case.result if isinstance(r, junitparser.Failure)]


@pytest.fixture(scope="module")
def json_report(project: tuple[Path, Path]) -> dict[str, Any]:
    run = hex_run(project, "--json")
    assert run.code in (1, 3), run.stderr
    return run.json()


def rel(report: dict[str, Any], path: str) -> str:
    tree = Path(report["target"])
    return Path(path).relative_to(tree).as_posix()


def test_counts_agree_with_the_json_report(project: tuple[Path, Path],
                                           json_report: dict[str, Any]) -> None:
    run = hex_run(project, "--format", "junit")
    assert run.code in (1, 3), run.stderr
    xml = parse(run.stdout)
    suite = only_suite(xml)
    top = [f for f in json_report["files"] if f["member"] is None]
    at_or_above = [r for r in json_report["results"]
                   if Severity[r["severity"]] >= Severity.HIGH and r["suppression"] is None]
    errored = {e["path"] for e in json_report["errors"]}
    failing = {r["file_path"] for r in at_or_above}
    # Files no format scanner analysed are "skipped" unless something failed or broke there.
    skipped = [f for f in top if f["status"] == "skipped" and f["path"] not in failing | errored]
    assert suite.tests == len(top) == 11
    assert suite.failures == len(at_or_above) == 4  # critical, high, zip!/inner.high, pickle
    assert suite.errors == len(errored) == 1
    assert suite.skipped == len(skipped) == 4  # planted.medium, .low, .info; link.txt
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == \
        (suite.tests, suite.failures, suite.errors, suite.skipped)
    stated = (suite.tests, suite.failures, suite.errors, suite.skipped)
    suite.update_statistics()  # junitparser recounts from the elements
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == stated
    assert sorted(cases_by_name(suite)) == sorted(rel(json_report, f["path"]) for f in top)
    for case in suite:
        fmt = next(f["format"] for f in top if rel(json_report, f["path"]) == case.name)
        assert case.classname == f"hex.{fmt}"
        assert case._elem.get("file") == case.name


def test_failure_messages(project: tuple[Path, Path]) -> None:
    cases = cases_by_name(only_suite(parse(hex_run(project, "--format", "junit").stdout)))
    [failure] = failures(cases["planted.critical"])
    assert failure.type == "TEST-PLANTED-001"
    assert failure.message == "CRITICAL TEST-PLANTED-001: planted.critical planted critical"
    assert "Severity: CRITICAL" in failure.text
    assert "Rule: TEST-PLANTED-001 Planted test finding" in failure.text
    assert "Remediation: None: test fixture." in failure.text

    [member] = failures(cases["bundle.zip"])  # members roll up into their file
    assert member.message.endswith("(in inner.high)") and "Member: inner.high" in member.text
    assert "note.low" in cases["bundle.zip"].system_out  # below --fail-on

    [pickle_failure] = failures(cases["sub/evil.pkl"])
    assert pickle_failure.type == "HEX-PKL-001" and "posix.system" in pickle_failure.message
    assert "Remediation: Do not load this file." in pickle_failure.text

    error = cases["broken.boom"].result
    assert [type(r) for r in error] == [junitparser.Error]
    assert "planted scanner failure" in error[0].text
    [skipped] = cases["link.txt"].result
    assert isinstance(skipped, junitparser.Skipped) and "symbolic link" in skipped.message
    assert cases["model.safetensors"].is_passed
    [info] = cases["planted.info"].result  # not analysed by a format scanner: skipped
    assert isinstance(info, junitparser.Skipped) and "unrecognised" in info.message
    assert "Severity: INFO" in cases["planted.info"].system_out


@pytest.mark.parametrize("level", SEVERITIES)
def test_fail_on_decides_which_findings_fail(project: tuple[Path, Path],
                                             json_report: dict[str, Any], level: str) -> None:
    run = hex_run(project, "--format", "xml", "--fail-on", level)
    suite = only_suite(parse(run.stdout))
    threshold = Severity[level.upper()]
    expected = sorted((rel(json_report, r["file_path"]), r["severity"])
                      for r in json_report["results"] if Severity[r["severity"]] >= threshold)
    failed = sorted((case.name, f.message.split()[0]) for case in suite for f in failures(case))
    assert failed == expected
    assert run.code == (1 if expected else 3)
    below = [r for r in json_report["results"] if Severity[r["severity"]] < threshold]
    outs = "\n".join(case.system_out or "" for case in suite)
    for r in below:
        assert f"Severity: {r['severity']}" in outs and r["description"] in outs


def test_escaping_of_names_and_pickle_strings(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / '<script>&".pkl').write_bytes(os_system("echo ]]> \x01\x07 <b>&amp;"))
    (tree / "ctl\x01\x1bname.pkl").write_bytes(os_system("echo x"))
    run = run_hex("scan", str(tree), "--format", "junit", "--workers", "0", "--no-history")
    assert run.code == 1, run.stderr
    assert "]]>" not in run.stdout, "ElementTree escapes > in text and attributes"
    cases = cases_by_name(only_suite(parse(run.stdout)))
    assert set(cases) == {'<script>&".pkl', "ctl\\x01\\x1bname.pkl"}
    [failure] = failures(cases['<script>&".pkl'])
    assert "echo ]]> " in failure.message and "<b>&amp;" in failure.message
    assert "echo ]]> " in failure.text


def test_forbidden_characters_in_messages_are_replaced(tmp_path: Path) -> None:
    """Raw control characters and lone surrogates a scanner might pass through."""
    text = "a\x00b\x0bc\x1fd\ud800e\ufffef ]]> \t tab"
    finding = Finding(pickle_rules.DANGEROUS_GLOBAL, text, key="k").located(
        file_path=str(tmp_path / "m.pkl"), rel_path="m.pkl", member="in\x02side",
        scanner="pickle")
    report = ScanReport(
        scan_id="s", timestamp="2026-01-02T03:04:05Z", target=str(tmp_path), version="0",
        findings=(finding,),
        files=(FileEntry(str(tmp_path / "m.pkl"), None, "pickle", 1, Status.SCANNED,
                         rel_path="m.pkl"),),
        errors=(), duration_s=0.25, roots=(str(tmp_path),))
    xml = parse(junit.render(report))
    [case] = list(only_suite(xml))
    [failure] = failures(case)
    assert failure.message == ("CRITICAL HEX-PKL-001: a\\x00b\\x0bc\\x1fd\\ud800e\\ufffef ]]> "
                               "\t tab (in in\\x02side)")
    assert only_suite(xml).timestamp == "2026-01-02T03:04:05"


def test_suppressed_findings_do_not_fail(tmp_path: Path) -> None:
    path = str(tmp_path / "m.pkl")
    finding = Finding(pickle_rules.DANGEROUS_GLOBAL, "bad", key="k",
                      suppression=Suppression("known fixture", "hex.toml")).located(
        file_path=path, rel_path="m.pkl", member=None, scanner="pickle")
    report = ScanReport(
        scan_id="s", timestamp="2026-01-02T03:04:05Z", target=str(tmp_path), version="0",
        findings=(finding,), files=(FileEntry(path, None, "pickle", 1, Status.SCANNED),),
        errors=(), duration_s=0.0, roots=(str(tmp_path),))
    [case] = list(only_suite(parse(junit.render(report))))
    assert case.is_passed
    assert "Suppressed: known fixture (hex.toml)" in case.system_out


def test_empty_scan(tmp_path: Path) -> None:
    run = run_hex("scan", str(tmp_path), "--format", "junit", "--workers", "0")
    assert run.code == 0, run.stderr
    xml = parse(run.stdout)
    assert (xml.tests, xml.failures, xml.errors) == (0, 0, 0)
    assert list(only_suite(xml)) == []
