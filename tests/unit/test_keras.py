"""The keras scanner: H5 attributes, .keras config.json, JSON configs, keras_metadata.pb.

Benign files are written by the real Keras 3 (torch backend) when it is installed, and by
h5py with real Keras 2 configs otherwise; malicious ones are those files with one config
entry changed. Lambda bytecode comes from real interpreters (fixtures.marshal_blobs) or from
``compile()`` of a harmless lambda: nothing is ever executed or unmarshalled.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import marshal
import os
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

h5py = pytest.importorskip("h5py")

from fixtures.formats import proto_classes  # noqa: E402
from fixtures.marshal_blobs import BLOBS  # noqa: E402
from fixtures.mlscan import (  # noqa: E402
    describe,
    rule_ids,
    scan_bytes,
    scan_file,
    scan_outcome,
    serious,
)

from hexscan.formats.kinds import Format  # noqa: E402
from hexscan.model.severity import Severity  # noqa: E402
from hexscan.parsers.keras import decode_lambda  # noqa: E402
from hexscan.parsers.pycode import MarshalError, inspect_code  # noqa: E402
from hexscan.scanners.keras import KerasScanner  # noqa: E402

SCANNER = KerasScanner()


def _init(name: str) -> dict[str, Any]:
    return {"module": "keras.initializers", "class_name": name, "config": {"seed": None},
            "registered_name": None}


#: What tf.keras 2.15 writes into model_config for a small CNN (model.save("m.h5")).
KERAS2_CONFIG: dict[str, Any] = {
    "class_name": "Functional", "config": {"name": "model", "trainable": True, "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "input_1"},
         "name": "input_1", "inbound_nodes": []},
        {"class_name": "Conv2D", "config": {
            "name": "conv2d", "trainable": True, "dtype": "float32", "filters": 8,
            "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "activation": "relu", "use_bias": True, "kernel_initializer": _init("GlorotUniform"),
            "bias_initializer": _init("Zeros"), "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}, "name": "conv2d",
         "inbound_nodes": [[["input_1", 0, 0, {}]]]},
        {"class_name": "BatchNormalization", "config": {
            "name": "batch_normalization", "trainable": True, "dtype": "float32", "axis": [3],
            "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True,
            "beta_initializer": _init("Zeros"), "gamma_initializer": _init("Ones"),
            "moving_mean_initializer": _init("Zeros"),
            "moving_variance_initializer": _init("Ones")},
         "name": "batch_normalization", "inbound_nodes": [[["conv2d", 0, 0, {}]]]},
        {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "pool_size": [2, 2],
                                                  "padding": "valid", "strides": [2, 2],
                                                  "data_format": "channels_last"},
         "name": "max_pooling2d", "inbound_nodes": [[["batch_normalization", 0, 0, {}]]]},
        {"class_name": "Flatten", "config": {"name": "flatten", "data_format": "channels_last"},
         "name": "flatten", "inbound_nodes": [[["max_pooling2d", 0, 0, {}]]]},
        {"class_name": "Dropout", "config": {"name": "dropout", "rate": 0.25,
                                             "noise_shape": None, "seed": None},
         "name": "dropout", "inbound_nodes": [[["flatten", 0, 0, {}]]]},
        {"class_name": "Dense", "config": {"name": "dense", "units": 10,
                                           "activation": "softmax", "use_bias": True,
                                           "kernel_initializer": _init("GlorotUniform"),
                                           "bias_initializer": _init("Zeros")},
         "name": "dense", "inbound_nodes": [[["dropout", 0, 0, {}]]]}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]},
    "keras_version": "2.15.0", "backend": "tensorflow"}

KERAS2_TRAINING: dict[str, Any] = {
    "loss": "sparse_categorical_crossentropy",
    "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
        "name": "accuracy", "dtype": "float32", "fn": "sparse_categorical_accuracy"}}]],
    "weighted_metrics": None, "loss_weights": None,
    "optimizer_config": {"class_name": "Custom>Adam", "config": {
        "name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
        "clipvalue": None, "use_ema": False, "jit_compile": True, "is_legacy_optimizer": False,
        "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
        "amsgrad": False}}}


def write_h5(path: Path, config: dict[str, Any], training: dict[str, Any] | None = None,
             vlen: bool = False) -> Path:
    """An HDF5 file laid out as tf.keras 2 writes it: root attributes, then weights."""
    import numpy as np

    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow" if vlen else b"tensorflow"
        f.attrs["keras_version"] = "2.15.0" if vlen else b"2.15.0"
        text = json.dumps(config)
        f.attrs["model_config"] = text if vlen else text.encode()
        if training is not None:
            f.attrs["training_config"] = json.dumps(training).encode()
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        weights.create_group("dense/dense").create_dataset(
            "kernel:0", data=np.ones((4, 10), dtype=np.float32))
    return path


def keras_zip(path: Path, config: dict[str, Any]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1",
                                                 "date_saved": "2026-01-01@00:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        h5 = io.BytesIO()
        with h5py.File(h5, "w") as f:
            f.create_group("layers/dense/vars").create_dataset("0", data=[1.0, 2.0])
        zf.writestr("model.weights.h5", h5.getvalue())
    return path


def harmless_bytecode(source: str) -> str:
    """base64(marshal) of the lambda in ``source``, compiled but never run."""
    module = compile(source, "<hex-test>", "eval")
    code = next(c for c in module.co_consts if hasattr(c, "co_code"))
    return base64.b64encode(marshal.dumps(code)).decode()


def lambda_layer_k2(code: str) -> dict[str, Any]:
    return {"class_name": "Lambda", "config": {
        "name": "lambda", "trainable": True, "dtype": "float32",
        "function": [code, None, None], "function_type": "lambda", "module": "__main__",
        "output_shape": None, "output_shape_type": "raw", "output_shape_module": None,
        "arguments": {}}, "name": "lambda", "inbound_nodes": [[["dense", 0, 0, {}]]]}


def with_layer(layer: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(KERAS2_CONFIG)
    config["config"]["layers"].append(layer)
    return config


# --------------------------------------------------------------------------- real Keras files


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models saved by the real Keras 3 (torch backend): .keras and legacy .h5."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("keras")
    seq = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                            keras.layers.Dropout(0.1), keras.layers.Dense(2)])
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    func = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    func.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    out: dict[str, Path] = {}
    for name, model in (("seq", seq), ("func", func), ("lambda", lam)):
        for ext in ("keras", "h5"):
            out[f"{name}.{ext}"] = root / f"{name}.{ext}"
            with warnings.catch_warnings():  # legacy-h5 and numpy-2 notices from keras
                warnings.simplefilter("ignore")
                model.save(out[f"{name}.{ext}"])
    (root / "seq.json").write_text(seq.to_json())
    out["seq.json"] = root / "seq.json"
    return out


@pytest.mark.parametrize("name", ["seq.keras", "seq.h5", "func.keras", "func.h5", "seq.json"])
def test_models_saved_by_keras_are_clean(keras_models: dict[str, Path], name: str) -> None:
    result = scan_file(keras_models[name])
    assert not serious(result), describe(result.findings)
    assert not result.errors


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_a_real_lambda_is_code_on_load(keras_models: dict[str, Path], name: str) -> None:
    result = scan_file(keras_models[name])
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-001"]
    assert len(hits) == 1 and hits[0].effective_severity is Severity.HIGH, \
        describe(result.findings)
    assert hits[0].evidence["kind"] == "bytecode"


def test_real_lambda_with_a_payload_is_critical(keras_models: dict[str, Path],
                                                 tmp_path: Path) -> None:
    """CVE-2024-3660: the saved Lambda's code swapped for one that calls os.system."""
    with zipfile.ZipFile(keras_models["lambda.keras"]) as zf:
        config = json.loads(zf.read("config.json"))
    fn = config["config"]["layers"][1]["config"]["function"]
    fn["config"]["code"] = harmless_bytecode(
        "lambda x: __import__('os').system('echo hex-test') or x")
    result = scan_file(keras_zip(tmp_path / "evil.keras", config))
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-001"]
    assert hits and hits[0].effective_severity is Severity.CRITICAL
    assert {"system", "__import__", "os"} <= set(hits[0].evidence["dangerous"])
    assert hits[0].member == "config.json"


# --------------------------------------------------------------------------- Keras 2 H5


@pytest.mark.parametrize("vlen", [False, True])
def test_keras2_h5_with_standard_layers_is_clean(tmp_path: Path, vlen: bool) -> None:
    path = write_h5(tmp_path / "cnn.h5", KERAS2_CONFIG, KERAS2_TRAINING, vlen=vlen)
    result = scan_file(path)
    assert [f.format for f in result.files] == ["keras-h5"]
    assert not result.findings, describe(result.findings)


def test_keras2_lambda_bytecode_from_every_python(tmp_path: Path) -> None:
    for version, (evil, plain) in BLOBS.items():
        path = write_h5(tmp_path / f"l{version}.h5", with_layer(lambda_layer_k2(evil)))
        found = [f for f in scan_file(path).findings if f.rule.id == "HEX-KER-001"]
        assert found and found[0].effective_severity is Severity.CRITICAL, version
        assert "system" in found[0].evidence["names"]
        plain_facts = decode_lambda(plain)
        assert plain_facts.kind == "bytecode" and plain_facts.names == (), version


def test_keras2_lambda_naming_a_module_function_is_critical(tmp_path: Path) -> None:
    layer = lambda_layer_k2("")
    layer["config"].update(function="system", function_type="function", module="os")
    result = scan_file(write_h5(tmp_path / "ref.h5", with_layer(layer)))
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-002"]
    assert hits and hits[0].effective_severity is Severity.CRITICAL, describe(result.findings)
    assert hits[0].evidence["module"] == "os"


def test_source_text_lambda_is_tokenised_not_run(tmp_path: Path) -> None:
    layer = lambda_layer_k2("")
    layer["config"]["function"] = "lambda x: eval('print(1)')"
    layer["config"].pop("function_type")
    result = scan_file(write_h5(tmp_path / "src.h5", with_layer(layer)))
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-001"]
    assert hits and hits[0].evidence["kind"] == "source" and "eval" in hits[0].evidence["names"]


def test_unreadable_lambda_is_high(tmp_path: Path) -> None:
    bad = base64.b64encode(b"\xe3" + b"\x00" * 40).decode()
    result = scan_file(write_h5(tmp_path / "bad.h5", with_layer(lambda_layer_k2(bad))))
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-001"]
    assert hits and hits[0].effective_severity is Severity.HIGH


def test_custom_layers_are_low(tmp_path: Path) -> None:
    layer = {"class_name": "Custom>AttentionPool", "config": {"name": "pool"},
             "name": "pool", "inbound_nodes": []}
    result = scan_file(write_h5(tmp_path / "custom.h5", with_layer(layer)))
    assert rule_ids(result) == {"HEX-KER-003"} and not serious(result)


def test_a_big_config_outside_the_head_is_still_found(tmp_path: Path) -> None:
    """Dense attribute storage can move the names past the identification head."""
    import numpy as np

    path = tmp_path / "late.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("padding", data=np.zeros(40_000, dtype=np.float32))
        f.attrs["model_config"] = json.dumps(with_layer(lambda_layer_k2(BLOBS["3.12"][0])))
    result = scan_file(path)
    assert "HEX-KER-001" in rule_ids(result, Severity.CRITICAL), describe(result.findings)


def test_plain_hdf5_data_is_ignored(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    result = scan_file(tmp_path / "data.h5")
    assert not result.findings and not result.errors


# --------------------------------------------------------------------------- Keras 3 configs


def k3(module: str, class_name: str, config: Any, registered: Any = None) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": registered}


def k3_model(extra_layer: dict[str, Any]) -> dict[str, Any]:
    dense = k3("keras.layers", "Dense", {"name": "dense", "units": 2,
                                          "kernel_initializer": k3("keras.initializers",
                                                                   "GlorotUniform", {})})
    return k3("keras", "Sequential", {"name": "seq", "layers": [
        k3("keras.layers", "InputLayer", {"batch_shape": [None, 4], "name": "input"}),
        dense, extra_layer]})


CASES = {
    # CVE-2025-1550: any module named in config.json was imported, even in safe mode.
    "os-function": (k3("os", "function", "system", "function"), "HEX-KER-002"),
    "builtins-exec": (k3("keras.layers", "Dense", {"name": "d", "units": 1,
                                                   "activation": k3("builtins", "function",
                                                                    "exec", "function")}),
                      "HEX-KER-002"),
    "subprocess-class": (k3("subprocess", "Popen", {"args": ["true"]}), "HEX-KER-002"),
    # CVE-2025-9906: a config entry switches safe_mode off while the model loads.
    "enable-unsafe": (k3("keras.layers", "Dense", {"name": "d", "units": 1, "activation": k3(
        "keras.config", "function", "enable_unsafe_deserialization", "function")}),
        "HEX-KER-004"),
    # CVE-2025-8747: keras.utils.get_file as a gadget to fetch files.
    "get-file": (k3("keras.utils", "function", "get_file", "function"), "HEX-KER-004"),
    "nested-load": (k3("keras.models", "function", "load_model", "function"), "HEX-KER-004"),
    # CVE-2025-49655: TorchModuleWrapper unpickles a torch module.
    "torch-wrapper": (k3("keras.layers", "TorchModuleWrapper", {"module": "gANjYnVpbHRpbnMK"}),
                      "HEX-KER-004"),
    "tfoplambda": ({"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file",
                                                           "function": "io.write_file"}},
                   "HEX-KER-004"),
    "registered-masquerade": (k3("keras.layers", "Dense", {"name": "d", "units": 1},
                                 "evilpkg>Backdoor"), "HEX-KER-005"),
    "registered-os": (k3("keras.layers", "Dense", {"name": "d", "units": 1}, "os>system"),
                      "HEX-KER-002"),
    "lambda-k3": (k3("keras.layers", "Lambda", {"name": "l", "function": {
        "class_name": "__lambda__", "config": {"code": harmless_bytecode(
            "lambda x: __import__('subprocess').run(['true'])"), "defaults": None,
            "closure": None}}}), "HEX-KER-001"),
    "custom-module": (k3("my_project.layers", "Gate", {"name": "g"}, "my_project>Gate"),
                      "HEX-KER-003"),
    "builtins-other": (k3("keras.layers", "Dense", {"name": "d", "units": 1,
                                                   "activation": k3("builtins", "function",
                                                                    "print", "function")}),
                       "HEX-KER-003"),
    # deserialize_keras_object reads a __lambda__'s code from config.value (activations,
    # initializers, any nested object), as a string or a [code, defaults, closure] list
    "lambda-value": (k3("keras.layers", "Dense", {"name": "d", "units": 1, "activation": {
        "class_name": "__lambda__", "config": {"value": harmless_bytecode(
            "lambda x: __import__('subprocess').run(['true'])")}}}), "HEX-KER-001"),
    "lambda-value-list": (k3("keras.layers", "Dense", {"name": "d", "units": 1, "activation": {
        "class_name": "__lambda__", "config": {"value": [harmless_bytecode(
            "lambda x: exec('pass')"), None, None]}}}), "HEX-KER-001"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras3_config_json_techniques(tmp_path: Path, case: str) -> None:
    layer, rule = CASES[case]
    result = scan_file(keras_zip(tmp_path / f"{case}.keras", k3_model(layer)))
    found = [f for f in result.findings if f.scanner == "keras"]
    assert {f.rule.id for f in found} == {rule}, describe(result.findings)
    assert all(f.member == "config.json" for f in found)
    expected = Severity.LOW if rule == "HEX-KER-003" else Severity.MEDIUM
    assert all(f.effective_severity >= expected for f in found)


@pytest.mark.parametrize(("case", "severity"), [
    ("lambda-value", Severity.CRITICAL), ("lambda-value-list", Severity.CRITICAL),
    ("custom-module", Severity.HIGH), ("builtins-other", Severity.HIGH),
])
def test_keras3_severities(tmp_path: Path, case: str, severity: Severity) -> None:
    """Lambda objects in any position, and classes from modules outside keras (imported by
    keras before 3.9 when the config is deserialised) are HIGH at least."""
    layer, rule = CASES[case]
    result = scan_file(keras_zip(tmp_path / f"{case}.keras", k3_model(layer)))
    hits = [f for f in result.findings if f.rule.id == rule]
    assert hits and max(f.effective_severity for f in hits) is severity, \
        describe(result.findings)


def test_lambda_object_without_code_is_high(tmp_path: Path) -> None:
    layer = k3("keras.layers", "Dense", {"name": "d", "units": 1, "activation": {
        "class_name": "__lambda__", "config": {"value": 42}}})
    result = scan_file(keras_zip(tmp_path / "nocode.keras", k3_model(layer)))
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-001"]
    assert hits and hits[0].effective_severity is Severity.HIGH, describe(result.findings)


def test_benign_keras3_zip_is_clean(tmp_path: Path) -> None:
    layer = k3("keras.layers", "Dense", {"name": "out", "units": 1, "activation": "sigmoid"})
    result = scan_file(keras_zip(tmp_path / "ok.keras", k3_model(layer)))
    assert not [f for f in result.findings if f.scanner == "keras"], describe(result.findings)


def test_standalone_json_configs(tmp_path: Path) -> None:
    evil = k3_model(CASES["os-function"][0])
    evil.update(keras_version="3.15.1", backend="torch")
    (tmp_path / "model.json").write_text(json.dumps(evil))
    assert "HEX-KER-002" in rule_ids(scan_file(tmp_path / "model.json"), Severity.CRITICAL)
    (tmp_path / "config.json").write_text(json.dumps(
        {"architectures": ["BertModel"], "class_name": "not keras", "hidden_size": 8}))
    assert not scan_file(tmp_path / "config.json").findings  # an HF config, not Keras


def test_broken_config_json_in_a_keras_zip_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", '{"class_name": "Sequential", "config": {')
        zf.writestr("metadata.json", "{}")
    result = scan_file(path)
    assert "HEX-FMT-002" in rule_ids(result, Severity.MEDIUM) and result.errors


# --------------------------------------------------------------------------- keras_metadata.pb


def test_keras_metadata_pb_layers_are_judged(tmp_path: Path) -> None:
    classes = proto_classes("tensorflow", {
        "SavedMetadata": [("nodes", 1, "message", "SavedObject", True)],
        "SavedObject": [("node_id", 2, "int32", None, False),
                        ("node_path", 3, "string", None, False),
                        ("identifier", 4, "string", None, False),
                        ("metadata", 5, "string", None, False)]})
    meta = classes["SavedMetadata"]()
    meta.nodes.add(node_id=0, node_path="root", identifier="_tf_keras_sequential",
                   metadata=json.dumps({"name": "seq", "class_name": "Sequential",
                                        "config": KERAS2_CONFIG["config"]}))
    meta.nodes.add(node_id=1, node_path="root.layer-1", identifier="_tf_keras_layer",
                   metadata=json.dumps(lambda_layer_k2(BLOBS["3.10"][0])))
    root = tmp_path / "export"
    root.mkdir()
    (root / "keras_metadata.pb").write_bytes(meta.SerializeToString())
    result = scan_file(root / "keras_metadata.pb")
    hits = [f for f in result.findings if f.rule.id == "HEX-KER-001"]
    assert hits and hits[0].effective_severity is Severity.CRITICAL, describe(result.findings)
    assert "root.layer-1" in hits[0].message


# --------------------------------------------------------------------------- the marshal reader


def test_marshal_reader_never_unmarshals_and_reads_every_version() -> None:
    for version, (evil, _plain) in BLOBS.items():
        facts = inspect_code(base64.b64decode(evil))
        assert facts.names[:2] == ["__import__", "system"], version
        assert "echo hex-test" in facts.strings and "os" in facts.strings
    nested = harmless_bytecode("lambda x: (lambda y: getattr(y, 'system'))(x)")
    facts = inspect_code(base64.b64decode(nested))
    assert facts.code_objects == 2 and "getattr" in facts.names and "system" in facts.strings


def test_marshal_reader_rejects_garbage() -> None:
    for data in (b"", b"c", b"\xe3" + b"\xff" * 30, b"N", b"\xe3" + b"\x00" * 20 + b"r" * 10):
        with pytest.raises(MarshalError):
            inspect_code(data)


def test_fuzzed_marshal_and_configs_never_escape() -> None:
    """4,000 mutants of Lambda bytecode and of a config.json: finding, clean or error."""
    rng = random.Random(1234)  # noqa: S311 - seeded test data
    blob = bytearray(base64.b64decode(BLOBS["3.12"][0]))
    for _ in range(2000):
        mutant = bytearray(blob)
        for _ in range(rng.randint(1, 6)):
            mutant[rng.randrange(len(mutant))] = rng.randrange(256)
        if rng.random() < 0.3:
            mutant = mutant[:rng.randrange(len(mutant))]
        try:
            inspect_code(bytes(mutant))
        except MarshalError:
            pass
        assert decode_lambda(base64.b64encode(bytes(mutant)).decode()).kind in (
            "bytecode", "unreadable", "source")
    text = json.dumps(k3_model(CASES["lambda-k3"][0])).encode()
    outcomes: dict[str, int] = {}
    for _ in range(2000):
        mutant = bytearray(text)
        for _ in range(rng.randint(1, 4)):
            mutant[rng.randrange(len(mutant))] = rng.choice(b'{}[]":,0a\\ \xff')
        out = scan_outcome(SCANNER, bytes(mutant), Format.MODEL_CONFIG, "config.json",
                           parent=Format.KERAS_V3, member="config.json")
        outcomes[out] = outcomes.get(out, 0) + 1
    assert outcomes.get("error", 0) > 500 and outcomes.get("findings", 0) > 100


def test_deep_json_is_an_error_not_a_crash() -> None:
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    assert scan_outcome(SCANNER, deep, Format.MODEL_CONFIG, "config.json",
                        parent=Format.KERAS_V3, member="config.json") == "error"
    wide = json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "config": {}} for _ in range(50_000)]}}).encode()
    assert scan_bytes(SCANNER, wide, Format.MODEL_CONFIG, "config.json",
                      parent=Format.KERAS_V3, member="config.json") == []
