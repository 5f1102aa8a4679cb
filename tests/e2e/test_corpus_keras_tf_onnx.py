"""Keras, TensorFlow and ONNX through the whole pipeline: the peers' verdicts, and hex runs.

Every manifest entry of format keras-h5, keras-v3, savedmodel or onnx (and ``other`` entries
whose kind says Keras/TF) must get the peer's verdict: malicious -> a finding >= MEDIUM,
benign -> nothing >= MEDIUM, invalid -> a finding or an error, never a crash.
"""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

SERIOUS = {"MEDIUM", "HIGH", "CRITICAL"}
FORMATS = {"keras-h5", "keras-v3", "savedmodel", "onnx"}
MINE = {"keras", "tensorflow", "onnx"}


def _entries(manifest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifest if m["format"] in FORMATS or (
        m["format"] == "other" and any(k in (m.get("kind") or "") for k in
                                       ("keras", "savedmodel", "tensorflow", "onnx")))]


def _rows(corpus: Path, report: dict[str, Any], rel: str) -> tuple[list[Any], list[Any]]:
    path = (corpus / rel).resolve()
    findings = [f for f in report["results"] if Path(f["file_path"]).resolve() == path]
    errors = [e for e in report["errors"] if Path(e["path"]).resolve() == path]
    return findings, errors


def test_the_corpus_has_entries_for_these_formats(manifest: list[dict[str, Any]]) -> None:
    entries = _entries(manifest)
    assert {m["format"] for m in entries} >= {"keras-h5", "savedmodel"}
    assert {m["label"] for m in entries} >= {"malicious", "benign"}


def test_peer_verdicts(corpus: Path, manifest: list[dict[str, Any]],
                       corpus_report: dict[str, Any]) -> None:
    wrong = []
    for entry in _entries(manifest):
        findings, errors = _rows(corpus, corpus_report, entry["path"])
        serious = [f for f in findings if f["severity"] in SERIOUS]
        if any(e["kind"] in ("crash", "scanner-error", "timeout") for e in errors):
            wrong.append((entry["path"], "crashed", errors))
        elif entry["label"] == "malicious" and not serious:
            wrong.append((entry["path"], "missed", findings))
        elif entry["label"] == "benign" and serious:
            wrong.append((entry["path"], "false positive", serious))
        elif entry["label"] == "invalid" and not (findings or errors):
            wrong.append((entry["path"], "invalid file passed silently", []))
    assert not wrong, json.dumps(wrong, indent=1)


def test_malicious_samples_are_found_by_the_right_scanner(
        corpus: Path, manifest: list[dict[str, Any]], corpus_report: dict[str, Any]) -> None:
    expected = {"keras-h5": ("keras", "HEX-KER-001"), "savedmodel": ("tensorflow", "HEX-TFG-001")}
    for entry in _entries(manifest):
        if entry["label"] != "malicious" or entry["format"] not in expected:
            continue
        findings, _ = _rows(corpus, corpus_report, entry["path"])
        scanner, rule = expected[entry["format"]]
        assert any(f["scanner"] == scanner and f["rule_id"] == rule for f in findings), \
            entry["path"]


# --------------------------------------------------------------------------- hex as a CLI


def _onnx_model(path: Path, location: str | None = None, pyop: bool = False) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    if pyop:
        nodes.append(helper.make_node("PyOp", ["y"], ["z"], domain="pyop", module="hex_noop"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if location:
        t = model.graph.initializer[0]
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value=location)
    onnx.save_model(model, str(path))


def test_cli_reports_each_family(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    import h5py

    _onnx_model(tmp_path / "clean.onnx")
    _onnx_model(tmp_path / "traversal.onnx", location="../../etc/passwd")
    _onnx_model(tmp_path / "python.onnx", pyop=True)
    with h5py.File(tmp_path / "lambda.h5", "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {
            "layers": [{"class_name": "Lambda", "config": {
                "function": "lambda x: __import__('os').system('true')"}}]}})
    with zipfile.ZipFile(tmp_path / "bypass.keras", "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", json.dumps({
            "module": "keras", "class_name": "Sequential", "config": {"layers": [
                {"module": "keras.config", "class_name": "function",
                 "config": "enable_unsafe_deserialization", "registered_name": "function"}]}}))
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "saved_model.pb").write_bytes(bytes.fromhex(
        "1221121f0a0e0a05436f6e737412" "05436f6e73740a0d0a03626164120650794675" "6e63"))
    run = run_hex("scan", str(tmp_path), "--json")
    assert run.code == 1, run.stderr
    report = run.json()
    by_file: dict[str, set[str]] = {}
    for f in report["results"]:
        by_file.setdefault(Path(f["file_path"]).name, set()).add(f["rule_id"])
    assert "HEX-ONX-001" in by_file["traversal.onnx"]
    assert "HEX-ONX-002" in by_file["python.onnx"]
    assert "HEX-KER-001" in by_file["lambda.h5"]
    assert "HEX-KER-004" in by_file["bypass.keras"]
    assert "HEX-TFG-001" in by_file["saved_model.pb"]
    assert "clean.onnx" not in by_file
    assert not [e for e in report["errors"] if e["kind"] in ("crash", "scanner-error")]


def test_mutated_h5_files_are_isolated_by_the_pipeline(tmp_path: Path) -> None:
    """HDF5 is parsed by a native library: mutants run through the worker pool, where a
    crash or hang of one file is that file's error. Every file must be accounted for."""
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {
            "layers": [{"class_name": "Dense", "config": {"units": 2}}]}}).encode()
        f.create_dataset("w", data=[1.0, 2.0, 3.0])
    data = src.read_bytes()
    src.unlink()
    rng = random.Random(99)  # noqa: S311 - seeded test data
    out = tmp_path / "mutants"
    out.mkdir()
    for i in range(150):
        buf = bytearray(data)
        if i % 3 == 0:
            buf = buf[:rng.randrange(len(buf))]
        else:
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        (out / f"m{i:03d}.h5").write_bytes(bytes(buf))
    run = run_hex("scan", str(out), "--json", "--workers", "4", timeout=600)
    assert run.code in (0, 1, 3), run.stderr  # 3: some files are errors (malformed)
    report = run.json()
    top = {Path(f["path"]).name for f in report["files"] if f["member"] is None}
    assert len(top) == 150
    assert not [e for e in report["errors"] if e["kind"] == "scanner-error"], report["errors"]
