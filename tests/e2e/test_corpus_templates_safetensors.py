"""Peer corpus, safetensors / GGUF / Jinja2 chat-template samples: hex reaches the peer's verdict.

malicious -> at least one finding >= MEDIUM; benign -> nothing >= MEDIUM; invalid -> a finding
or an error, never a crash. Rules involved: HEX-SFT-*, HEX-GGF-*, HEX-TPL-* (e.g. HEX-TPL-007
for ``malformed_template.json``, HEX-SFT-008 / HEX-SFT-011 / HEX-SFT-012 for the metadata
samples). The whole pipeline runs (identification included), once, via ``corpus_report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SERIOUS = {"MEDIUM", "HIGH", "CRITICAL"}
_TEMPLATE_KINDS = {"tokenizer-config-jinja2", "jinja2-template", "yaml-jinja2"}

#: Samples whose peer label hex deliberately does not follow: path -> (expected, why).
#: Empty today. (Weak labels reviewed and kept: the modelaudit safetensors "suspicious
#: metadata" samples are flagged for code, markup and callback URLs in metadata.)
LABEL_EXCEPTIONS: dict[str, tuple[str, str]] = {}


def _mine(entry: dict[str, Any]) -> bool:
    return entry["format"] in ("safetensors", "gguf") or (
        entry["format"] == "other" and entry.get("kind") in _TEMPLATE_KINDS)


def _rows(report: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    field = "file_path" if key == "results" else "path"
    return [r for r in report[key] if Path(r[field]).resolve() == path]


def _entries(manifest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifest if _mine(m)]


def test_the_subset_is_what_we_expect(manifest: list[dict[str, Any]]) -> None:
    entries = _entries(manifest)
    labels = [m["label"] for m in entries]
    assert len(entries) >= 40
    assert {"malicious", "benign", "invalid"} <= set(labels)


def test_every_sample_gets_the_peer_verdict(corpus: Path, manifest: list[dict[str, Any]],
                                            corpus_report: dict[str, Any]) -> None:
    wrong = []
    for entry in _entries(manifest):
        path = (corpus / entry["path"]).resolve()
        findings = _rows(corpus_report, "results", path)
        errors = _rows(corpus_report, "errors", path)
        files = _rows(corpus_report, "files", path)
        assert files, f"{entry['path']} is not in the report"
        assert not [e for e in errors if e["kind"] in ("crash", "scanner-error", "timeout")]
        label = LABEL_EXCEPTIONS.get(entry["path"], (entry["label"], ""))[0]
        serious = [f for f in findings if f["severity"] in SERIOUS]
        if label == "malicious":
            ok = bool(serious)
        elif label == "benign":
            ok = not serious
        else:
            ok = bool(findings or errors or any(f["status"] == "error" for f in files))
        if not ok:
            wrong.append((entry["path"], label, [(f["rule_id"], f["severity"])
                                                 for f in findings]))
    assert not wrong, wrong


@pytest.mark.parametrize(("name", "rule"), [
    ("malformed_template.json", "HEX-TPL-007"),
    ("attr_bypass.json", "HEX-TPL-001"),
    ("char_construction.json", "HEX-TPL-004"),
    ("hex_bypass.json", "HEX-TPL-004"),
    ("malicious_subprocess.template", "HEX-TPL-001"),
    ("malicious_standalone.jinja", "HEX-TPL-001"),
    ("multiple_templates.json", "HEX-TPL-001"),
    ("malicious_import.safetensors", "HEX-SFT-008"),
    ("obfuscated_metadata.safetensors", "HEX-SFT-008"),
    ("script_injection.safetensors", "HEX-SFT-012"),
    ("suspicious_url.safetensors", "HEX-SFT-011"),
])
def test_the_expected_rule_fires(corpus: Path, manifest: list[dict[str, Any]],
                                 corpus_report: dict[str, Any], name: str, rule: str) -> None:
    entry = next(m for m in _entries(manifest) if m["path"].endswith("/" + name))
    findings = _rows(corpus_report, "results", (corpus / entry["path"]).resolve())
    assert rule in {f["rule_id"] for f in findings}


def test_template_files_are_identified_as_templates(corpus: Path, manifest: list[dict[str, Any]],
                                                    corpus_report: dict[str, Any]) -> None:
    for entry in _entries(manifest):
        if entry.get("kind") != "jinja2-template":
            continue
        files = _rows(corpus_report, "files", (corpus / entry["path"]).resolve())
        assert {f["format"] for f in files} == {"chat-template"}, entry["path"]
