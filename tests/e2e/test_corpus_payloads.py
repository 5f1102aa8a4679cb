"""The peer corpus through the full pipeline, for containers (zip, 7z, tar, npz) and the
TFLite / Core ML / Caffe / Darknet formats: each file gets the peer's verdict.

malicious -> a finding >= MEDIUM; benign -> nothing >= MEDIUM; invalid -> a finding or an
error. The corpus holds no TFLite, Core ML, Caffe or Darknet sample today; the filter picks
them up as soon as one is added. End-to-end runs on generated samples follow.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_hex
from fixtures.archives import PAYLOAD, zip_bytes

SEVERITY = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
MINE_FORMATS = {"zip", "7z", "tar", "tflite", "coreml", "caffe", "darknet"}


def _mine(entry: dict[str, Any]) -> bool:
    return entry["format"] in MINE_FORMATS or entry.get("kind") == "npz"


def _worst(report: dict[str, Any], path: Path) -> int:
    return max((SEVERITY[r["severity"]] for r in report["results"]
                if Path(r["file_path"]).resolve() == path), default=-1)


def test_container_verdicts_match_the_peers(corpus: Path, manifest: list[dict[str, Any]],
                                            corpus_report: dict[str, Any]) -> None:
    entries = [m for m in manifest if _mine(m)]
    assert len(entries) >= 17
    wrong = []
    for entry in entries:
        path = (corpus / entry["path"]).resolve()
        worst = _worst(corpus_report, path)
        errors = [e for e in corpus_report["errors"] if Path(e["path"]).resolve() == path]
        if entry["label"] == "malicious" and worst < SEVERITY["MEDIUM"]:
            wrong.append(("missed", entry["path"]))
        elif entry["label"] == "benign" and worst >= SEVERITY["MEDIUM"]:
            wrong.append(("false positive", entry["path"]))
        elif entry["label"] == "invalid" and worst < 0 and not errors:
            wrong.append(("silent on invalid", entry["path"]))
    assert wrong == []


def test_path_traversal_zip_is_reported(corpus: Path, corpus_report: dict[str, Any]) -> None:
    path = (corpus / "modelaudit/tests/assets/samples/archives/path_traversal.zip").resolve()
    found = [r for r in corpus_report["results"] if r["rule_id"] == "HEX-ARC-005"
             and Path(r["file_path"]).resolve() == path]
    assert [r["member"] for r in found] == ["../../../etc/evil.txt"]


# --- end to end on generated samples -------------------------------------------------------

@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.models import (
        caffe_classes,
        coreml_classes,
        embed,
        randn,
        tflite_model,
        zip_payload,
    )
    from safetensors.numpy import save as st_save

    root = tmp_path_factory.mktemp("zoo")
    (root / "flex.tflite").write_bytes(tflite_model([(3, None), (32, "FlexReadFile")]))
    model = coreml_classes()["Model"](specificationVersion=4)
    model.neuralNetwork.layers.add(name="c").custom.className = "Plugin"
    (root / "custom.mlmodel").write_bytes(model.SerializeToString())
    net = caffe_classes()["NetParameter"](name="n")
    layer = net.layer.add(name="py", type="Python")
    layer.python_param.module, layer.python_param.layer = "mylayer", "Layer"
    (root / "net.caffemodel").write_bytes(net.SerializeToString())
    (root / "slip.zip").write_bytes(zip_bytes([("../../x.pkl", PAYLOAD)]))
    (root / "stego.safetensors").write_bytes(st_save({"w": embed(randn(), zip_payload(), 2)}))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps({"a": 1}))
    (root / "clean.safetensors").write_bytes(st_save({"w": randn(2)}))
    (root / "clean.npy").write_bytes(_npy(np.ones((4, 4), np.float32)))
    return root


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_cli_reports_each_family(zoo: Path) -> None:
    run = run_hex("scan", str(zoo), "--json")
    assert run.code == 1, run.stderr
    by_file: dict[str, set[str]] = {}
    for r in run.json()["results"]:
        by_file.setdefault(Path(r["file_path"]).name, set()).add(r["rule_id"])
    assert "HEX-TFL-001" in by_file["flex.tflite"]
    assert "HEX-CML-001" in by_file["custom.mlmodel"]
    assert "HEX-CAF-001" in by_file["net.caffemodel"]
    assert "HEX-ARC-005" in by_file["slip.zip"]
    assert "HEX-PAY-004" in by_file["stego.safetensors"]
    assert "clean.safetensors" not in by_file and "clean.npy" not in by_file


def test_skip_entropy_turns_payload_checks_off(zoo: Path) -> None:
    run = run_hex("scan", str(zoo / "stego.safetensors"), "--json", "--skip", "entropy")
    assert not [r for r in run.json()["results"] if r["rule_id"].startswith("HEX-PAY")]
