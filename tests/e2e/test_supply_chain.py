"""Supply chain end to end: manifests beside a model, the embedded advisories, fetched feeds.

Every scan is a real ``hex`` subprocess. The offline test runs hex in a network namespace
with no network at all where the machine allows it (``unshare -n``). Feeds are served by a
real HTTP server on 127.0.0.1 and fetched with ``hex vulnfetch fetch``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex
from cvss import CVSS3
from fixtures.formats import onnx_model_bytes
from pytest_httpserver import HTTPServer

CVE = "CVE-2025-32434"


def _results(data: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [r for r in data["results"] if r["rule_id"] == rule]


def _model_dir(tmp_path: Path, requirements: str) -> Path:
    """A model directory as people ship it: weights, config and a requirements file."""
    import numpy as np
    from safetensors.numpy import save_file

    root = tmp_path / "model"
    root.mkdir()
    save_file({"w": np.zeros((4, 4), dtype=np.float32)}, str(root / "model.safetensors"))
    (root / "requirements.txt").write_text(requirements, encoding="utf-8")
    return root


def _offline_hex(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """hex with no network: inside an empty network namespace when possible."""
    cmd = [sys.executable, "-m", "hexscan", *args]
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True,  # noqa: S603
                                  check=False).returncode == 0:
        cmd = [unshare, "-n", *cmd]
    env = {"PATH": "/usr/bin:/bin", "HEX_HOME": str(home), "HOME": str(home),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300,  # noqa: S603
                          check=False)


def test_fresh_install_finds_torch_cve_offline(tmp_path: Path) -> None:
    """The issue's acceptance test: torch==2.5.1 beside a model, no DB, no network."""
    root = _model_dir(tmp_path, "numpy>=1.26\ntorch==2.5.1  # pinned for the demo\n")
    home = tmp_path / "home"
    proc = _offline_hex("scan", str(root), "--json", home=home)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    hits = [r for r in _results(data, "HEX-SUP-001") if r["vulnerability"]["id"] == CVE]
    assert len(hits) == 1, data["results"]
    hit = hits[0]
    vuln = hit["vulnerability"]
    assert vuln["package"] == "torch" and vuln["version"] == "2.5.1"
    assert "GHSA-53q9-r3pm-6pq6" in vuln["aliases"]
    assert vuln["fixed"] == ["2.6.0"]
    assert hit["cvss"]["version"] == "3.1"
    # the score is computed from the vector by the cvss library, not copied from a feed
    expected = CVSS3(hit["cvss"]["vector_string"])
    assert hit["cvss"]["base_score"] == float(expected.base_score) == 9.8
    assert hit["cvss"]["base_severity"] == "CRITICAL"
    assert hit["severity"] == "CRITICAL"
    assert "CWE-502" in hit["cwe"]
    assert "2.6.0" in hit["remediation"]
    assert hit["file_path"].endswith("requirements.txt") and hit["line_number"] == 2
    assert any(f["kind"] == "dependency" and f["data"]["name"] == "torch"
               for f in data["facts"])
    assert not (home / "vulndb.sqlite").exists(), "a scan must never fetch or build the DB"


@pytest.mark.parametrize("line", [
    "torch @ https://download.pytorch.org/whl/cpu/torch-2.5.1%2Bcpu-cp311-cp311-linux_x86_64.whl",
    "https://download.pytorch.org/whl/cpu/torch-2.5.1-cp311-cp311-linux_x86_64.whl",
    "torch @ https://example.org/src/torch-2.5.1.tar.gz",
])
def test_direct_url_pin_is_matched_like_a_pin(tmp_path: Path, line: str) -> None:
    """A wheel/sdist URL names its version: torch @ .../torch-2.5.1-...whl is torch==2.5.1,
    and the line is also reported as code from outside the index (MEDIUM over https)."""
    root = _model_dir(tmp_path, f"numpy>=1.26\n{line}\n")
    data = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "home")}).json()
    hits = [r for r in _results(data, "HEX-SUP-001") if r["vulnerability"]["id"] == CVE]
    assert len(hits) == 1 and hits[0]["line_number"] == 2, data["results"]
    assert hits[0]["vulnerability"]["version"].startswith("2.5.1")
    direct = _results(data, "HEX-SUP-006")
    assert [(d["line_number"], d["severity"]) for d in direct] == [(2, "MEDIUM")], direct


def test_direct_references_are_reported(tmp_path: Path) -> None:
    text = ("--extra-index-url https://packages.example.org/simple\n"
            "-e git+https://github.com/acme/tools.git@v1#egg=acme-tools\n"
            "helper @ git+https://github.com/acme/helper.git@v2\n"
            "./vendor/localpkg\n"
            "--find-links http://mirror.example.org/wheels/\n"
            "numpy @ http://mirror.example.org/numpy-2.0.0-cp311-cp311-linux_x86_64.whl\n"
            "--index-url https://pypi.org/simple\n"
            "safetensors==0.4.5\n")
    root = _model_dir(tmp_path, text)
    data = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "home")}).json()
    direct = {d["line_number"]: d for d in _results(data, "HEX-SUP-006")}
    assert sorted(direct) == [1, 2, 3, 4, 5, 6], data["results"]
    assert {n: d["severity"] for n, d in direct.items()} == {
        1: "MEDIUM", 2: "MEDIUM", 3: "MEDIUM", 4: "MEDIUM", 5: "HIGH", 6: "HIGH"}
    assert direct[2]["evidence"]["name"] == "acme-tools"


def test_fixed_version_and_unpinned_are_not_reported(tmp_path: Path) -> None:
    root = _model_dir(tmp_path, "torch==2.6.0\ntransformers>=4.0\n")
    result = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "home")})
    hits = _results(result.json(), "HEX-SUP-001")
    assert CVE not in {h["vulnerability"]["id"] for h in hits}
    assert "transformers" not in {h["vulnerability"]["package"] for h in hits}, \
        "a range without an exact version is not matched"


@pytest.mark.parametrize("name,text", [
    ("poetry.lock", '[[package]]\nname = "torch"\nversion = "2.5.1"\ndescription = ""\n'
                    'optional = false\npython-versions = ">=3.9"\n'),
    ("Pipfile.lock", json.dumps({"_meta": {}, "default": {"torch": {"version": "==2.5.1"}},
                                 "develop": {}})),
    ("environment.yml", "name: demo\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
                        "    - torch==2.5.1\n"),
    ("pyproject.toml", '[project]\nname = "demo"\nversion = "0.1"\n'
                       'dependencies = ["torch==2.5.1"]\n'),
])
def test_lock_files_and_manifests_are_matched(tmp_path: Path, name: str, text: str) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / name).write_text(text, encoding="utf-8")
    data = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "h")}).json()
    ids = {r["vulnerability"]["id"] for r in _results(data, "HEX-SUP-001")}
    assert CVE in ids, (name, data["results"], data["facts"])


def test_requirements_include_is_followed_inside_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "requirements.txt").write_text("-r base.txt\n", encoding="utf-8")
    (root / "base.txt").write_text("torch==2.5.1\n", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("numpy==1.16.0\n", encoding="utf-8")
    (root / "requirements-dev.txt").write_text("-r ../outside.txt\n", encoding="utf-8")
    data = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "h")}).json()
    packages = {r["vulnerability"]["package"] for r in _results(data, "HEX-SUP-001")}
    assert "torch" in packages
    assert "numpy" not in packages, "an include outside the scanned tree must not be read"


def test_typosquat_is_high(tmp_path: Path) -> None:
    root = _model_dir(tmp_path, "tourch==2.6.0\ntorch==2.6.0\n")
    result = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "h")})
    squats = _results(result.json(), "HEX-SUP-003")
    assert [s["evidence"]["looks_like"] for s in squats] == ["torch"]
    assert squats[0]["severity"] == "HIGH" and result.code == 1


def test_framework_version_in_model_config_is_low(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": "bert",
        "transformers_version": "4.30.0"}), encoding="utf-8")
    result = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "h")})
    found = _results(result.json(), "HEX-SUP-005")
    assert len(found) == 1 and found[0]["severity"] == "LOW"
    assert found[0]["evidence"]["package"] == "transformers"
    assert found[0]["evidence"]["advisories"]
    assert result.code == 0, "a recorded framework version alone must not fail CI"


def test_onnx_producer_version_is_checked(tmp_path: Path) -> None:
    import onnx

    model = onnx.load_from_string(onnx_model_bytes())
    model.producer_name, model.producer_version = "pytorch", "2.5.1"
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    data = run_hex(str(tmp_path / "model.onnx"), "--json",
                   env={"HEX_HOME": str(tmp_path / "h")}).json()
    found = _results(data, "HEX-SUP-005")
    assert found and found[0]["evidence"]["package"] == "torch"
    assert CVE in {a["id"] for a in found[0]["evidence"]["advisories"]}


def test_skip_dependencies_turns_matching_off(tmp_path: Path) -> None:
    root = _model_dir(tmp_path, "torch==2.5.1\n")
    result = run_hex(str(root), "--json", "--skip", "dependencies",
                     env={"HEX_HOME": str(tmp_path / "h")})
    assert not [r for r in result.json()["results"] if r["rule_id"].startswith("HEX-SUP")]
    assert result.code == 0


def test_stale_embedded_data_is_a_warning(tmp_path: Path) -> None:
    root = _model_dir(tmp_path, "torch==2.5.1\n")
    (tmp_path / "hex.toml").write_text("vulndb_max_age_days = 0\n", encoding="utf-8")
    result = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "h")},
                     cwd=tmp_path)
    warnings = result.json()["warnings"]
    assert any("hex vulnfetch fetch" in w for w in warnings), warnings


# --- with fetched feeds -----------------------------------------------------------------

MAL_ID = "MAL-2022-7426"


def _osv_zip() -> bytes:
    records = [
        {"schema_version": "1.6.0", "id": MAL_ID, "modified": "2026-01-02T00:00:00Z",
         "published": "2022-12-31T00:00:00Z", "summary": "Malicious code in torchtriton (PyPI)",
         "details": "Dependency-confusion package that exfiltrates host data on import.",
         "affected": [{"package": {"ecosystem": "PyPI", "name": "torchtriton"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        {"schema_version": "1.6.0", "id": "GHSA-test-kev0-0001", "modified": "2026-01-02T00:00:00Z",
         "aliases": ["CVE-2099-0001"], "summary": "Demo library: remote code execution",
         "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-ml-lib"},
                       "ranges": [{"type": "ECOSYSTEM",
                                   "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}],
         "severity": [{"type": "CVSS_V3",
                       "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N"}]},
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rec in records:
            zf.writestr(f"{rec['id']}.json", json.dumps(rec))
    return buffer.getvalue()


def _epss() -> bytes:
    text = ("#model_version:v2025.03.14,score_date:2026-11-25T00:00:00+0000\n"
            "cve,epss,percentile\nCVE-2099-0001,0.42000,0.99000\n")
    return gzip.compress(text.encode())


def _kev() -> bytes:
    return json.dumps({
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.11.25",
        "dateReleased": "2026-11-25T00:00:00.000Z", "count": 1,
        "vulnerabilities": [{"cveID": "CVE-2099-0001", "vendorProject": "Demo",
                             "product": "demo-ml-lib", "vulnerabilityName": "Demo RCE",
                             "dateAdded": "2026-11-20", "shortDescription": "Demo.",
                             "requiredAction": "Update.", "dueDate": "2026-12-11",
                             "knownRansomwareCampaignUse": "Unknown", "notes": ""}]}).encode()


@pytest.fixture
def fetched_home(tmp_path: Path, httpserver: HTTPServer) -> tuple[Path, bytes]:
    """A HEX_HOME whose DB was fetched from a feed server on 127.0.0.1."""
    bad_model = b"\x80\x02}q\x00X\x05\x00\x00\x00hex-bq\x01K\x01s."
    httpserver.expect_request("/osv/PyPI/all.zip").respond_with_data(
        _osv_zip(), content_type="application/zip")
    httpserver.expect_request("/epss.csv.gz").respond_with_data(_epss())
    httpserver.expect_request("/kev.json").respond_with_data(_kev(),
                                                             content_type="application/json")
    httpserver.expect_request("/models.json").respond_with_json({"models": [{
        "sha256": hashlib.sha256(bad_model).hexdigest(), "size": len(bad_model),
        "name": "demo-backdoored-model", "reason": "published by a compromised account",
        "reference": "https://example.invalid/advisory", "added": "2026-11-01"}]})
    home = tmp_path / "home"
    env = {"HEX_HOME": str(home), "HEX_OSV_URL": httpserver.url_for("/osv"),
           "HEX_EPSS_URL": httpserver.url_for("/epss.csv.gz"),
           "HEX_KEV_URL": httpserver.url_for("/kev.json"),
           "HEX_MODELHASH_URL": httpserver.url_for("/models.json")}
    fetch = run_hex("vulnfetch", "fetch", "--source", "osv,epss,kev,models", env=env)
    assert fetch.code == 0, fetch.stdout + fetch.stderr
    return home, bad_model


def test_malicious_package_is_critical(tmp_path: Path, fetched_home: tuple[Path, bytes]) -> None:
    home, _ = fetched_home
    root = _model_dir(tmp_path, "torchtriton\n")
    result = run_hex(str(root), "--json", env={"HEX_HOME": str(home)})
    mal = _results(result.json(), "HEX-SUP-002")
    assert [m["vulnerability"]["id"] for m in mal] == [MAL_ID]
    assert mal[0]["severity"] == "CRITICAL" and result.code == 1


def test_kev_and_epss_raise_severity(tmp_path: Path, fetched_home: tuple[Path, bytes]) -> None:
    home, _ = fetched_home
    root = _model_dir(tmp_path, "demo-ml-lib==1.1.0\n")
    data = run_hex(str(root), "--json", env={"HEX_HOME": str(home)}).json()
    [hit] = _results(data, "HEX-SUP-001")
    assert hit["cvss"]["base_severity"] == "MEDIUM"  # 5.4 from the vector
    assert hit["vulnerability"]["epss"]["score"] == pytest.approx(0.42)
    assert hit["vulnerability"]["kev"]["date_added"] == "2026-11-20"
    assert hit["severity"] == "CRITICAL"  # MEDIUM, +1 for EPSS >= 0.1, KEV: +1 and >= HIGH
    # the fetched DB is used, and the embedded set still answers for torch
    (tmp_path / "b").mkdir()
    root2 = _model_dir(tmp_path / "b", "torch==2.5.1\n")
    data2 = run_hex(str(root2), "--json", env={"HEX_HOME": str(home)}).json()
    assert CVE in {r["vulnerability"]["id"] for r in _results(data2, "HEX-SUP-001")}


def test_compromised_model_hash_is_critical(tmp_path: Path,
                                            fetched_home: tuple[Path, bytes]) -> None:
    home, bad_model = fetched_home
    (tmp_path / "innocent-name.bin").write_bytes(bad_model)
    (tmp_path / "same-size.bin").write_bytes(bytes(len(bad_model)))
    result = run_hex(str(tmp_path / "innocent-name.bin"), str(tmp_path / "same-size.bin"),
                     "--json", env={"HEX_HOME": str(home)})
    found = _results(result.json(), "HEX-SUP-004")
    assert [Path(f["file_path"]).name for f in found] == ["innocent-name.bin"]
    assert found[0]["severity"] == "CRITICAL" and result.code == 1


def test_conda_package_is_matched_as_its_pypi_project(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "environment.yml").write_text(
        "name: demo\nchannels: [pytorch]\ndependencies:\n  - python=3.11\n"
        "  - pytorch=2.5.1=py3.11_cpu_0\n", encoding="utf-8")
    data = run_hex(str(root), "--json", env={"HEX_HOME": str(tmp_path / "h")}).json()
    hits = [r for r in _results(data, "HEX-SUP-001") if r["vulnerability"]["id"] == CVE]
    assert hits, (data["results"], data["facts"])
    assert hits[0]["vulnerability"]["package"] == "pytorch"
    assert hits[0]["vulnerability"]["fixed"] == ["2.6.0"]


def test_keras_version_in_h5_attributes_is_checked(tmp_path: Path) -> None:
    """Keras 2 .h5 files record keras_version as a root attribute (read by h5py)."""
    import h5py
    from fixtures.formats import write_keras_h5

    path = tmp_path / "model.h5"
    write_keras_h5(path)
    with h5py.File(path, "a") as f:
        f.attrs["keras_version"] = b"2.12.0"
    data = run_hex(str(path), "--json", env={"HEX_HOME": str(tmp_path / "h")}).json()
    found = _results(data, "HEX-SUP-005")
    assert found and found[0]["evidence"]["package"] == "keras"
    assert "CVE-2024-3660" in {a["id"] for a in found[0]["evidence"]["advisories"]}
