"""Core ML: custom layers and models, linked models, .mlpackage manifests (protobuf
messages with Core ML's field numbers); the reader is bounded under fuzzing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.models import coreml_classes, fuzz, ids, scan_bytes, scan_path

from hexscan.formats.kinds import Format
from hexscan.model.severity import Severity
from hexscan.scanners.coreml import CoreMLScanner

CM = coreml_classes()


def model_with() -> object:
    model = CM["Model"](specificationVersion=4)
    model.description.input.add(name="x")
    model.description.output.add(name="y")
    return model


def benign_nn() -> bytes:
    model = model_with()
    layer = model.neuralNetwork.layers.add(name="fc", input=["x"], output=["y"])
    layer.innerProduct.inputChannels = 4
    layer.innerProduct.outputChannels = 2
    layer.innerProduct.weights.floatValue.extend([0.5] * 8)
    return model.SerializeToString()


def scan(data: bytes, name: str = "model.mlmodel") -> list:
    return scan_bytes(CoreMLScanner(), name, data, fmt=Format.COREML)


def test_plain_network_is_clean() -> None:
    assert scan(benign_nn()) == []


def test_custom_layer_reports_class_name() -> None:
    model = model_with()
    model.neuralNetwork.layers.add(name="fc", input=["x"], output=["h"])
    layer = model.neuralNetwork.layers.add(name="swish", input=["h"], output=["y"])
    layer.custom.className = "AAPLSwishLayer"
    (finding,) = scan(model.SerializeToString())
    assert finding.rule.id == "HEX-CML-001" and finding.effective_severity is Severity.MEDIUM
    assert finding.evidence["class_name"] == "AAPLSwishLayer"


def test_custom_layer_hidden_in_loop_body_inside_a_pipeline() -> None:
    inner = CM["Model"](specificationVersion=4)
    loop = inner.neuralNetwork.layers.add(name="loop")
    loop.loop.maxLoopIterations = 2
    loop.loop.bodyNetwork.layers.add(name="evil").custom.className = "NSTask"
    outer = model_with()
    outer.pipelineClassifier.pipeline.models.append(inner)
    (finding,) = scan(outer.SerializeToString())
    assert finding.rule.id == "HEX-CML-001" and finding.evidence["class_name"] == "NSTask"
    assert finding.effective_severity is Severity.HIGH  # a system class, not an MLCustomLayer


def test_custom_model() -> None:
    model = model_with()
    model.customModel.className = "MyRecommender"
    (finding,) = scan(model.SerializeToString())
    assert finding.rule.id == "HEX-CML-002" and finding.evidence["class_name"] == "MyRecommender"


@pytest.mark.parametrize(("search_path", "severity"), [
    ("$BUNDLE_MAIN", Severity.MEDIUM), ("../../../../tmp", Severity.HIGH),
    ("/private/var", Severity.HIGH)])
def test_linked_model(search_path: str, severity: Severity) -> None:
    model = model_with()
    link = model.linkedModel.linkedModelFile
    link.linkedModelFileName.defaultValue = "Extractor.mlmodelc"
    link.linkedModelSearchPath.defaultValue = search_path
    (finding,) = scan(model.SerializeToString())
    assert finding.rule.id == "HEX-CML-003" and finding.effective_severity is severity
    assert finding.evidence["file_name"] == "Extractor.mlmodelc"


def manifest(path: str) -> bytes:
    return json.dumps({"fileFormatVersion": "1.0.0", "rootModelIdentifier": "A1",
                       "itemInfoEntries": {"A1": {"author": "com.apple.CoreML",
                                                  "name": "model.mlmodel", "path": path}}}).encode()


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd",
                                  "..\\..\\secrets.txt", "C:\\Windows\\win.ini"])
def test_manifest_path_escaping_the_package(path: str) -> None:
    findings = scan_bytes(CoreMLScanner(), "Manifest.json", manifest(path))
    assert ids(findings) == ["HEX-CML-004"]


@pytest.mark.parametrize("path", ["com.apple.CoreML/model.mlmodel",
                                  "com.apple.CoreML/weights/../model.mlmodel"])
def test_manifest_inside_the_package_is_clean(path: str) -> None:
    assert scan_bytes(CoreMLScanner(), "Manifest.json", manifest(path)) == []


def test_other_manifest_json_files_are_ignored() -> None:
    assert scan_bytes(CoreMLScanner(), "manifest.json", b'{"name": "app", "icons": []}') == []
    assert scan_bytes(CoreMLScanner(), "manifest.json", b"not json") == []


def test_mlpackage_directory_through_the_pipeline(tmp_path: Path) -> None:
    pkg = tmp_path / "Model.mlpackage"
    (pkg / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (pkg / "Manifest.json").write_bytes(manifest("../../../outside.bin"))
    model = model_with()
    model.neuralNetwork.layers.add(name="c").custom.className = "Plugin"
    (pkg / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(model.SerializeToString())
    from hexscan.engine.walk import Task, WorkerSettings, scan_task
    from hexscan.scanners.registry import load_scanners

    found = []
    for path in (pkg / "Manifest.json", pkg / "Data" / "com.apple.CoreML" / "model.mlmodel"):
        found += scan_task(Task(str(path), path.name), WorkerSettings(),
                           load_scanners()).findings
    assert ids(found) == ["HEX-CML-001", "HEX-CML-004"]
    assert ids(scan_path(tmp_path / "Model.mlpackage" / "Manifest.json").findings) == \
        ["HEX-CML-004"]


def test_fuzzed_models_only_raise_parse_or_limit_errors() -> None:
    model = model_with()
    model.neuralNetwork.layers.add(name="c").custom.className = "X"
    model.pipeline.models.add().customModel.className = "Y"
    seeds = [benign_nn(), model.SerializeToString()]
    outcome = fuzz(scan, seeds, rounds=3000)
    assert sum(outcome.values()) == 3000 and outcome["ok"] > 0
    manifests = [manifest("com.apple.CoreML/model.mlmodel")]
    fuzz(lambda d: scan_bytes(CoreMLScanner(), "Manifest.json", d), manifests, rounds=2000)
