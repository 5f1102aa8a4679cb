"""CycloneDX 1.6 ML-BOM: ``hex scan --sbom FILE`` and ``--format cyclonedx``.

Model directories are written by the real libraries (torch, safetensors, onnx, zipfile)
and scanned by ``hex`` in a subprocess; attacker pickles come from the pickle assembler.
Every BOM goes through cyclonedx-python-lib's strict JSON validator for 1.6. Dependencies
and advisory matches are rendered in-process from a ScanReport built of real Fact and
Finding objects, in the shape the dependency scanner and the matcher produce.

Golden files live in tests/golden/cyclonedx-*.json; run with HEX_REGEN_GOLDEN=1 to rewrite
them after an intended change (and review the diff).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, run_hex
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from fixtures.formats import onnx_model_bytes
from hypothesis import given, settings
from hypothesis import strategies as st
from packageurl import PackageURL
from regression.pickle_asm import call, glob, pkl, ustr

from hexscan.config import build
from hexscan.model.finding import Cvss, Finding
from hexscan.model.report import Fact, FileEntry, ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.report import cyclonedx
from hexscan.rules import pickle as pickle_rules
from hexscan.rules._rule import Rule
from hexscan.scanners.modelcard import MAX_CARD_BYTES

GOLDEN = REPO / "tests" / "golden"
ML = "machine-learning-model"

CARD = """---
license: apache-2.0
base_model: google-bert/bert-base-uncased
datasets:
- stanfordnlp/imdb
- glue
pipeline_tag: text-classification
language:
- en
- fr
library_name: transformers
tags:
- sentiment
model-index:
- name: tiny-sentiment
---

# tiny-sentiment

A tiny model for tests.
"""

CONFIG = {"architectures": ["BertForSequenceClassification"], "model_type": "bert",
          "hidden_size": 8, "num_labels": 2}


# ------------------------------------------------------------------------------ helpers

def validate(text: str) -> dict[str, Any]:
    """Strict CycloneDX 1.6 validation; the parsed BOM."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    bom: dict[str, Any] = json.loads(text)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom["serialNumber"])
    refs = [c["bom-ref"] for c in walk(bom)]
    assert len(refs) == len(set(refs)), "bom-refs are unique"
    known = set(refs) | {bom["metadata"]["component"]["bom-ref"]}
    for dep in bom.get("dependencies", []):
        assert dep["ref"] in known and set(dep.get("dependsOn", [])) <= known
    for vuln in bom.get("vulnerabilities", []):
        assert {a["ref"] for a in vuln["affects"]} <= known
    for comp in walk(bom):
        if "purl" in comp:
            assert PackageURL.from_string(comp["purl"]).to_string() == comp["purl"]
        for ds in comp.get("modelCard", {}).get("modelParameters", {}).get("datasets", []):
            assert ds["ref"] in known
    return bom


def walk(bom: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every component, nested ones and pedigree ancestors included."""
    stack = list(bom.get("components", []))
    while stack:
        comp = stack.pop()
        yield comp
        stack.extend(comp.get("components", []))
        stack.extend(comp.get("pedigree", {}).get("ancestors", []))


def by_path(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {props(c)["hex:path"]: c for c in walk(bom) if "hex:path" in props(c)}


def props(comp: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in comp.get("properties", [])}


def sha256(comp: dict[str, Any]) -> str:
    [digest] = [h["content"] for h in comp["hashes"] if h["alg"] == "SHA-256"]
    return digest


def _torch_bytes(seed: int) -> bytes:
    import torch

    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2).state_dict(), buf)
    return buf.getvalue()


def _safetensors(path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(path), metadata={"format": "pt"})


def _zip(members: dict[str, bytes]) -> bytes:
    """A zip with fixed member times, so its bytes (and digest) are reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


@pytest.fixture(scope="session")
def model_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean model repository: torch, safetensors with card and config, ONNX, a zip."""
    root = tmp_path_factory.mktemp("sbom") / "models"
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "model.pt").write_bytes(_torch_bytes(0))
    (root / "hf").mkdir()
    _safetensors(root / "hf" / "model.safetensors")
    (root / "hf" / "config.json").write_text(json.dumps(CONFIG, indent=2), encoding="utf-8")
    (root / "hf" / "README.md").write_text(CARD, encoding="utf-8")
    (root / "onnx").mkdir()
    (root / "onnx" / "model.onnx").write_bytes(onnx_model_bytes())
    (root / "bundle.zip").write_bytes(_zip({"inner/model.pt": _torch_bytes(1),
                                            "README.txt": b"weights for the tiny model\n"}))
    (root / "custom").mkdir()
    (root / "custom" / "model.pkl").write_bytes(pickle.dumps({"weights": [0.5, 1.5]},
                                                             protocol=4))
    (root / "custom" / "README.md").write_text(
        "---\nlicense: other\nlicense_name: acme-model-licence\n"
        "license_link: https://example.com/licence\n---\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tree_scan(model_tree: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(JSON report, BOM) of one ``hex scan --sbom FILE --format json`` run."""
    out = tmp_path_factory.mktemp("sbom-out") / "bom.json"
    run = run_hex("scan", str(model_tree), "--sbom", str(out), "--format", "json",
                  "--workers", "0")
    assert run.code == 0, run.stderr
    return run.json(), validate(out.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ real scans

def test_a_clean_scan_gives_a_valid_bom_with_one_model_component_per_model(
        tree_scan: tuple[dict[str, Any], dict[str, Any]], model_tree: Path) -> None:
    report, bom = tree_scan
    assert report["results"] == [], "the tree is clean: this is the no-findings case"
    paths = by_path(bom)
    models = {p for p, c in paths.items() if c["type"] == ML}
    assert models == {"torch/model.pt", "hf/model.safetensors", "onnx/model.onnx",
                      "bundle.zip!/inner/model.pt", "custom/model.pkl"}
    for path in models - {"bundle.zip!/inner/model.pt"}:
        comp = paths[path]
        assert sha256(comp) == hashlib.sha256((model_tree / path).read_bytes()).hexdigest()
        assert "version" not in comp
        assert props(comp)["hex:findings"] == "0" and "hex:max-severity" not in props(comp)
    assert props(paths["onnx/model.onnx"])["hex:format"] == "onnx"
    assert props(paths["torch/model.pt"])["hex:size"] == str(
        (model_tree / "torch/model.pt").stat().st_size)
    assert paths["hf/config.json"]["type"] == "file"
    assert paths["hf/README.md"]["type"] == "file"
    assert bom["serialNumber"] == f"urn:uuid:{report['scan_id']}"
    root = bom["metadata"]["component"]
    assert root["type"] == "application" and root["name"] == "models"
    [tool] = bom["metadata"]["tools"]["components"]
    assert tool["name"] == "hex" and tool["version"] == report["version"]
    assert bom["metadata"]["timestamp"].startswith(report["timestamp"][:19])


def test_container_members_are_nested_components_of_their_container(
        tree_scan: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, bom = tree_scan
    [bundle] = [c for c in bom["components"] if props(c).get("hex:path") == "bundle.zip"]
    assert bundle["type"] == "file"
    inner = {props(c)["hex:path"]: c for c in bundle["components"]}
    assert set(inner) == {"bundle.zip!/inner/model.pt", "bundle.zip!/README.txt"}
    model = inner["bundle.zip!/inner/model.pt"]
    assert model["type"] == ML and model["name"] == "inner/model.pt"
    assert sha256(model) == hashlib.sha256(_torch_bytes(1)).hexdigest()
    parts = {props(c)["hex:path"]: c for c in model["components"]}
    pickled = [c for p, c in parts.items() if p.endswith("/data.pkl")]
    assert len(pickled) == 1 and pickled[0]["type"] == "file", \
        "the pickle inside a torch checkpoint is part of the model, not a model"
    assert any(c["type"] == "data" for c in parts.values())
    top = {c["bom-ref"] for c in bom["components"]}
    assert model["bom-ref"] not in top


def test_the_model_card_and_config_fill_licence_and_model_card(
        tree_scan: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, bom = tree_scan
    model = by_path(bom)["hf/model.safetensors"]
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert model["tags"] == ["sentiment"]
    card = model["modelCard"]
    params = card["modelParameters"]
    assert params["task"] == "text-classification"
    assert params["architectureFamily"] == "bert"
    assert params["modelArchitecture"] == "BertForSequenceClassification"
    assert params["inputs"] == [{"format": "text"}] and params["outputs"] == [{"format": "label"}]
    refs = [d["ref"] for d in params["datasets"]]
    data = {c["bom-ref"]: c for c in bom["components"] if c["type"] == "data"}
    assert [data[r]["name"] for r in refs] == ["stanfordnlp/imdb", "glue"]
    assert "quantitativeAnalysis" not in card
    card_props = [(p["name"], p["value"]) for p in card["properties"]]
    assert ("hex:card", "hf/README.md") in card_props
    assert ("hex:config", "hf/config.json") in card_props
    assert ("hex:model-name", "tiny-sentiment") in card_props
    assert ("hex:language", "fr") in card_props
    [base] = model["pedigree"]["ancestors"]
    assert base["name"] == "google-bert/bert-base-uncased" and base["type"] == ML
    assert base["purl"] == "pkg:huggingface/google-bert/bert-base-uncased"


def test_an_unknown_licence_is_a_named_licence_and_models_without_a_card_have_none(
        tree_scan: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, bom = tree_scan
    paths = by_path(bom)
    custom = paths["custom/model.pkl"]
    assert custom["licenses"] == [{"license": {"name": "acme-model-licence",
                                               "url": "https://example.com/licence"}}]
    assert "modelParameters" not in custom["modelCard"]
    for path in ("torch/model.pt", "onnx/model.onnx", "bundle.zip!/inner/model.pt"):
        assert "licenses" not in paths[path] and "modelCard" not in paths[path]


def test_the_json_report_carries_the_card_facts(
        tree_scan: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, _ = tree_scan
    facts = {(f["kind"], f["path"].rsplit("/", 2)[-2]): f["data"] for f in report["facts"]}
    card = facts[("model-card", "hf")]
    assert card["license"] == ["apache-2.0"] and card["datasets"] == ["stanfordnlp/imdb", "glue"]
    assert card["base_model"] == ["google-bert/bert-base-uncased"]
    assert card["pipeline_tag"] == "text-classification" and card["model_name"] == "tiny-sentiment"
    config = facts[("model-config", "hf")]
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["model_type"] == "bert"


def test_format_cyclonedx_on_stdout_is_the_same_bom(
        model_tree: Path, tree_scan: tuple[dict[str, Any], dict[str, Any]]) -> None:
    run = run_hex("scan", str(model_tree), "--format", "cyclonedx", "--workers", "0")
    assert run.code == 0, run.stderr
    bom = validate(run.stdout)
    _, sbom = tree_scan
    assert _stable(bom) == _stable(sbom)


def _stable(bom: dict[str, Any]) -> dict[str, Any]:
    bom = json.loads(json.dumps(bom))
    bom.pop("serialNumber")
    bom["metadata"].pop("timestamp")
    return bom


def test_findings_are_properties_of_the_file_and_the_bom_still_validates(
        tmp_path: Path) -> None:
    root = tmp_path / "evil"
    root.mkdir()
    (root / "model.pkl").write_bytes(
        pkl(call(glob("posix", "system"), ustr("echo pwned")), 2))
    (root / "bundle.zip").write_bytes(_zip({"weights/model.pkl": (root / "model.pkl")
                                            .read_bytes()}))
    _safetensors(root / "clean.safetensors")
    out = tmp_path / "bom.json"
    run = run_hex("scan", str(root), "--sbom", str(out), "--format", "json", "--workers", "0")
    assert run.code == 1, run.stderr
    report = run.json()
    bom = validate(out.read_text(encoding="utf-8"))
    assert "vulnerabilities" not in bom, "hex's own findings are not advisories"
    paths = by_path(bom)
    direct = props(paths["model.pkl"])
    rules = {r["rule_id"] for r in report["results"] if r["file_path"].endswith("model.pkl")
             and r["member"] is None}
    assert rules and {f"hex:finding:{r}" for r in rules} <= set(direct)
    assert direct["hex:max-severity"] == "CRITICAL"
    assert int(direct["hex:findings"]) == len(
        [r for r in report["results"] if r["file_path"].endswith("model.pkl")
         and r["member"] is None])
    member = props(paths["bundle.zip!/weights/model.pkl"])
    assert member["hex:max-severity"] == "CRITICAL"
    container = props(paths["bundle.zip"])
    assert container["hex:max-severity"] == "CRITICAL", "a container carries its members' worst"
    assert not any(k.startswith("hex:finding:HEX-PKL") for k in container)
    assert props(paths["clean.safetensors"])["hex:findings"] == "0"
    assert props(bom["metadata"]["component"])["hex:max-severity"] == "CRITICAL"


def test_an_sbom_forces_hashes(tmp_path: Path) -> None:
    assert build({"sbom": str(tmp_path / "bom.json")}, env={}, cwd=tmp_path).hash
    assert build({"format": "cyclonedx"}, env={}, cwd=tmp_path).hash
    assert not build({"format": "json"}, env={}, cwd=tmp_path).hash
    (tmp_path / "hex.toml").write_text("hash = false\n", encoding="utf-8")
    assert build({"sbom": "x.json"}, env={}, cwd=tmp_path).hash


def test_an_unwritable_sbom_path_is_a_usage_error(model_tree: Path, tmp_path: Path) -> None:
    run = run_hex("scan", str(model_tree / "torch"), "--sbom",
                  str(tmp_path / "missing" / "bom.json"), "--workers", "0")
    assert run.code == 2 and "cannot write" in run.stderr


# ------------------------------------------------------------------------------ model cards

HOSTILE_CARDS = {
    "nested": "---\nlicense: " + "[" * 5000 + "\n---\n",
    "aliases": "---\na: &a [x, x, x, x, x, x, x, x, x]\n"
               + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                         for p, c in zip("abcdefgh", "bcdefghi", strict=True))
               + "datasets: *i\nlicense: mit\n---\n",
    "python-tag": "---\nlicense: !!python/object/apply:os.system ['touch {canary}']\n---\n",
    "unclosed": "---\nlicense: mit\n" + "x: y\n" * 20000,
    "late-close": "---\nlicense: mit\n" + "# padding\n" * (MAX_CARD_BYTES // 10) + "---\n",
    "not-a-mapping": "---\n- license\n- mit\n---\n",
    "no-front-matter": "# A model\n\nlicense: mit\n",
    "binary": "---\nlicense: \x00\xff\xfe mit\n---\n",
}


def test_hostile_or_absent_front_matter_records_nothing_and_runs_nothing(
        tmp_path: Path) -> None:
    root = tmp_path / "cards"
    canary = tmp_path / "CANARY"
    for name, text in HOSTILE_CARDS.items():
        (root / name).mkdir(parents=True)
        (root / name / "README.md").write_text(text.replace("{canary}", str(canary)),
                                               encoding="utf-8", errors="surrogateescape")
    (root / "good").mkdir()
    (root / "good" / "README.md").write_text("---\nlicense: MIT\n---\n", encoding="utf-8")
    sbom = tmp_path / "bom.json"
    run = run_hex("scan", str(root), "--json", "--sbom", str(sbom), "--workers", "0")
    report = run.json()
    assert not canary.exists()
    bom = validate(sbom.read_text(encoding="utf-8"))
    assert bom["metadata"]["component"]["type"] == "data", "no model: the target is data"
    assert not any(c["type"] == ML for c in walk(bom))
    assert report["errors"] == [] and report["complete"]
    cards = {f["path"].rsplit("/", 2)[-2]: f["data"] for f in report["facts"]
             if f["kind"] == "model-card"}
    assert set(cards) <= {"good", "aliases"}
    assert cards["good"]["license"] == ["MIT"]
    if "aliases" in cards:  # shared references, never expanded beyond the bound
        assert len(cards["aliases"]["datasets"]) <= 50


# ------------------------------------------------------------------------------ supply chain

VULN_RULE = Rule("HEX-TST-901", "Vulnerable dependency", "vulnerability", Severity.HIGH,
                 ("CWE-1395",), "A dependency has a known vulnerability.",
                 "A pinned dependency matches an advisory. " * 5, "Upgrade the dependency.")
GHSA = "GHSA-53q9-r3pm-6pq6"


def supply_report() -> ScanReport:
    """What a scan of a model with a requirements file and one matched advisory yields."""
    req = "/work/model/requirements.txt"
    model = "/work/model/model.safetensors"

    def dep(name: str, version: str | None, spec: str, line: int) -> Fact:
        return Fact("dependency", {"ecosystem": "PyPI", "name": name, "version": version,
                                   "spec": spec, "source": "requirements", "line": line},
                    req, "requirements.txt")

    vuln = Finding(
        VULN_RULE, f"torch 2.3.0 is affected by {GHSA} (CVE-2025-32434): torch.load with "
        "weights_only=True can still run code. Fixed in 2.6.0.",
        key=f"torch==2.3.0:{GHSA}", severity=Severity.CRITICAL, file_path=req,
        rel_path="requirements.txt", scanner="dependencies", line_number=1,
        cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
        cwe=("CWE-502",), remediation="Upgrade torch to 2.6.0 or later.",
        references=(f"https://github.com/advisories/{GHSA}",
                    "https://nvd.nist.gov/vuln/detail/CVE-2025-32434"),
        vulnerability={"id": GHSA, "aliases": ["CVE-2025-32434"], "package": "torch",
                       "ecosystem": "PyPI", "version": "2.3.0", "affected": ["<2.6.0"],
                       "fixed": ["2.6.0"], "summary": "torch.load RCE with weights_only",
                       "epss": {"score": 0.0123, "percentile": 0.81, "date": "2025-05-01",
                                "model_version": "v2025.03.14"},
                       "kev": None})
    unmatched = Finding(
        VULN_RULE, "pillow 9.0.0 is affected by PYSEC-2022-168", key="pillow==9.0.0",
        severity=Severity.MEDIUM, file_path=req, rel_path="requirements.txt",
        scanner="dependencies",
        vulnerability={"id": "PYSEC-2022-168", "aliases": [], "package": "Pillow",
                       "ecosystem": "PyPI", "version": "9.0.0", "affected": [], "fixed": [],
                       "epss": None, "kev": {"date_added": "2024-01-01", "due_date": None,
                                             "ransomware": "Unknown"}})
    hex_finding = Finding(pickle_rules.UNKNOWN_CLASS, "model.safetensors names a class",
                          key="k", severity=Severity.LOW, file_path=model,
                          rel_path="model.safetensors", scanner="pickle")
    digest = hashlib.sha256(b"weights").hexdigest()
    return ScanReport(
        scan_id="0b7c6a3e-51a8-4f7e-9a57-6d2f3f6f1c11", timestamp="2025-06-01T12:00:00Z",
        target="/work/model", version="0.0.0-test",
        findings=(vuln, hex_finding, unmatched),
        files=(FileEntry(model, None, "safetensors", 7, Status.SCANNED, sha256=digest,
                         rel_path="model.safetensors"),
               FileEntry(req, None, "requirements", 60, Status.SCANNED,
                         sha256=hashlib.sha256(b"req").hexdigest(),
                         rel_path="requirements.txt")),
        errors=(), duration_s=0.5,
        facts=(dep("torch", "2.3.0", "torch==2.3.0", 1),
               dep("transformers", None, "transformers>=4.40", 2),
               dep("Typing_Extensions", "4.12.2", "Typing_Extensions==4.12.2", 3),
               Fact("model-card", {"license": ["llama2"], "datasets": ["wikitext"],
                                   "pipeline_tag": "text-generation"},
                    "/work/model/README.md", "README.md")),
    )


def test_dependencies_become_libraries_with_purls_and_advisories_vulnerabilities() -> None:
    bom = validate(cyclonedx.render(supply_report()))
    libs = {c["purl"]: c for c in bom["components"] if c["type"] == "library"}
    assert set(libs) == {"pkg:pypi/torch@2.3.0", "pkg:pypi/transformers",
                         "pkg:pypi/typing-extensions@4.12.2", "pkg:pypi/pillow@9.0.0"}
    torch_lib = libs["pkg:pypi/torch@2.3.0"]
    assert torch_lib["name"] == "torch" and torch_lib["version"] == "2.3.0"
    assert props(torch_lib)["hex:manifest"] == "requirements.txt:1"
    assert "version" not in libs["pkg:pypi/transformers"]
    assert props(libs["pkg:pypi/transformers"])["hex:spec"] == "transformers>=4.40"
    root_deps = next(d for d in bom["dependencies"] if d["ref"] == "hex:target")
    assert set(libs) <= set(root_deps["dependsOn"])

    vulns = {v["id"]: v for v in bom["vulnerabilities"]}
    assert set(vulns) == {GHSA, "PYSEC-2022-168"}
    vuln = vulns[GHSA]
    assert vuln["source"]["name"] == "GitHub Advisories"
    assert vuln["references"] == [{"id": "CVE-2025-32434", "source": {
        "name": "NVD", "url": "https://nvd.nist.gov/vuln/detail/CVE-2025-32434"}}]
    [rating] = vuln["ratings"]
    assert rating["method"] == "CVSSv31" and rating["score"] == 9.8
    assert rating["severity"] == "critical"
    # the method names the CVSS version, so the library writes the vector without its prefix
    assert rating["vector"] == "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert vuln["cwes"] == [502]
    assert vuln["recommendation"] == "Upgrade torch to 2.6.0 or later."
    assert vuln["description"] == "torch.load RCE with weights_only"
    assert {a["url"] for a in vuln["advisories"]} == {
        f"https://github.com/advisories/{GHSA}", "https://nvd.nist.gov/vuln/detail/CVE-2025-32434"}
    [affects] = vuln["affects"]
    assert affects["ref"] == torch_lib["bom-ref"]
    assert {(v["version"], v["status"]) for v in affects["versions"]} == {
        ("2.3.0", "affected"), ("2.6.0", "unaffected")}
    vprops = props(vuln)
    assert vprops["hex:epss:score"] == "0.0123" and vprops["hex:epss:percentile"] == "0.81"
    assert "hex:kev" not in vprops

    other = vulns["PYSEC-2022-168"]
    assert other["source"]["name"] == "OSV"
    assert other["affects"][0]["ref"] == libs["pkg:pypi/pillow@9.0.0"]["bom-ref"]
    assert other["ratings"][0]["severity"] == "medium" and "score" not in other["ratings"][0]
    assert props(other)["hex:kev"] == "true"

    [model] = [c for c in bom["components"] if c["type"] == ML]
    assert model["licenses"] == [{"license": {"name": "llama2"}}]
    assert model["modelCard"]["modelParameters"]["task"] == "text-generation"
    assert len([p for p in props(model) if p.startswith("hex:finding:")]) == 1
    assert bom["serialNumber"] == "urn:uuid:0b7c6a3e-51a8-4f7e-9a57-6d2f3f6f1c11"


def test_a_real_requirements_file_gives_libraries_and_matched_advisories(
        tmp_path: Path) -> None:
    """The dependency scanner and the matcher (offline: the embedded advisory snapshot)."""
    root = tmp_path / "with-deps"
    root.mkdir()
    (root / "requirements.txt").write_text("torch==2.3.0\ntransformers>=4.40\n",
                                           encoding="utf-8")
    _safetensors(root / "model.safetensors")
    out = tmp_path / "bom.json"
    run = run_hex("scan", str(root), "--sbom", str(out), "--format", "json", "--workers", "0",
                  env={"HEX_HOME": str(tmp_path / "home")})
    assert run.code == 1, run.stderr
    bom = validate(out.read_text(encoding="utf-8"))
    libs = {c["purl"]: c for c in bom["components"] if c["type"] == "library"}
    assert {"pkg:pypi/torch@2.3.0", "pkg:pypi/transformers"} <= set(libs)
    assert props(libs["pkg:pypi/torch@2.3.0"])["hex:manifest"] == "requirements.txt:1"
    vulns = {v["id"]: v for v in bom["vulnerabilities"]}
    assert "CVE-2025-32434" in vulns
    torch_ref = libs["pkg:pypi/torch@2.3.0"]["bom-ref"]
    for vuln in vulns.values():
        assert vuln["ratings"] and vuln["affects"]
    assert torch_ref in {a["ref"] for a in vulns["CVE-2025-32434"]["affects"]}
    report_ids = {r["vulnerability"]["id"] for r in run.json()["results"] if r["vulnerability"]}
    assert report_ids == set(vulns)


def test_rendering_is_deterministic() -> None:
    assert cyclonedx.render(supply_report()) == cyclonedx.render(supply_report())


# ------------------------------------------------------------------------------ goldens

def check_golden(name: str, bom: dict[str, Any]) -> None:
    path = GOLDEN / name
    text = json.dumps(bom, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("HEX_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing; run with HEX_REGEN_GOLDEN=1 to write it"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert bom == expected, f"{name} differs; if intended, regenerate with HEX_REGEN_GOLDEN=1"


def normalise(bom: dict[str, Any], root: Path) -> dict[str, Any]:
    """Serial number, timestamp, hex version and the machine's paths made constant."""
    text = json.dumps(bom).replace(json.dumps(str(root))[1:-1], "<ROOT>")
    out: dict[str, Any] = json.loads(text)
    out["serialNumber"] = f"urn:uuid:{uuid.UUID(int=0)}"
    out["metadata"]["timestamp"] = "2000-01-01T00:00:00+00:00"
    for tool in out["metadata"]["tools"]["components"]:
        tool["version"] = "<VERSION>"
    return out


def test_golden_scan(tmp_path: Path) -> None:
    """A scan of files whose bytes do not depend on library versions."""
    root = tmp_path / "golden-model"
    root.mkdir()
    _safetensors(root / "model.safetensors")
    (root / "config.json").write_text(json.dumps(CONFIG, indent=2), encoding="utf-8")
    (root / "README.md").write_text(CARD, encoding="utf-8")
    np.save(root / "embeddings.npy", np.arange(6, dtype=np.float32))
    (root / "payload.pkl").write_bytes(pkl(call(glob("builtins", "eval"), ustr("1+1")), 2))
    (root / "bundle.zip").write_bytes(_zip({"weights/model.safetensors":
                                            (root / "model.safetensors").read_bytes(),
                                            "weights/tokenizer_config.json": b'{"a": 1}'}))
    run = run_hex("scan", str(root), "--format", "cyclonedx", "--workers", "0")
    assert run.code == 1, run.stderr
    check_golden("cyclonedx-scan.json", normalise(validate(run.stdout), root))


def test_golden_supply_report() -> None:
    check_golden("cyclonedx-supply.json", validate(cyclonedx.render(supply_report())))


# ------------------------------------------------------------------------------ odd input

_names = st.text(min_size=1, max_size=24)


@settings(max_examples=40, deadline=None)
@given(deps=st.lists(st.tuples(st.sampled_from(["PyPI", "npm", "Maven", "crates.io", "", "?"]),
                               _names, st.none() | _names), max_size=4),
       licence=st.lists(_names, max_size=3), datasets=st.lists(_names, max_size=3),
       member=st.none() | _names, vuln_id=_names)
def test_any_fact_and_advisory_text_still_gives_a_valid_bom(
        deps: list[tuple[str, str, str | None]], licence: list[str], datasets: list[str],
        member: str | None, vuln_id: str) -> None:
    """Names, versions, licences and ids come from files an attacker writes."""
    base = supply_report()
    facts = [Fact("dependency", {"ecosystem": e, "name": n, "version": v, "spec": "",
                                 "source": "requirements", "line": None},
                  "/work/model/requirements.txt", "requirements.txt")
             for e, n, v in deps]
    facts.append(Fact("model-card", {"license": licence, "datasets": datasets,
                                     "base_model": datasets[:1], "tags": licence},
                      "/work/model/README.md", "README.md"))
    eco, name, version = deps[0] if deps else ("PyPI", "x", "1")
    vuln = Finding(VULN_RULE, "odd advisory", key="odd", file_path="/work/model/x",
                   vulnerability={"id": vuln_id, "package": name, "ecosystem": eco,
                                  "version": version, "aliases": [vuln_id + "-a"],
                                  "fixed": [version or "1"], "epss": None, "kev": None},
                   references=(f"https://example.com/{vuln_id}", vuln_id))
    files = (*base.files, FileEntry("/work/model/model.safetensors", member, "pickle", 1,
                                    Status.SCANNED, rel_path="model.safetensors"))
    report = ScanReport(base.scan_id, base.timestamp, base.target, base.version,
                        findings=(*base.findings, vuln), files=files, errors=(),
                        duration_s=0.1, facts=tuple(facts))
    bom = validate(cyclonedx.render(report))
    assert vuln_id in {v["id"] for v in bom["vulnerabilities"]}
