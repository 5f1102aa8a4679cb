"""The onnx scanner and its streaming reader, proved against models made by the real onnx."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")

from fixtures.mlscan import (  # noqa: E402
    CountingFile,
    ForwardOnly,
    describe,
    mutations,
    rule_ids,
    scan_bytes,
    scan_file,
    scan_outcome,
    serious,
)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hexscan.formats.kinds import Format  # noqa: E402
from hexscan.model.severity import Severity  # noqa: E402
from hexscan.parsers.onnx import ModelInfo, OnnxFunction, OnnxNode, OnnxTensor, iter_onnx  # noqa: E402
from hexscan.scanners.onnx import OnnxScanner, location_escape  # noqa: E402

SCANNER = OnnxScanner()


def _vi(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def benign_model(floats: int = 16) -> onnx.ModelProto:
    """A realistic small model: Conv-free MLP, an If with subgraphs, Constant, contrib op."""
    w = numpy_helper.from_array(np.arange(floats * 4, dtype=np.float32).reshape(floats, 4), "w")
    b = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "b")
    then_g = helper.make_graph([helper.make_node("Relu", ["h"], ["t_out"])], "then", [],
                               [_vi("t_out", [1, 4])])
    else_g = helper.make_graph([helper.make_node("Sigmoid", ["h"], ["e_out"])], "else", [],
                               [_vi("e_out", [1, 4])])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "b"], ["h"], name="add"),
        helper.make_node("Constant", [], ["flag"], name="const",
                         value=helper.make_tensor("fv", TensorProto.BOOL, [], [True])),
        helper.make_node("If", ["flag"], ["y0"], name="if", then_branch=then_g,
                         else_branch=else_g),
        helper.make_node("FastGelu", ["y0"], ["y"], name="gelu", domain="com.microsoft"),
    ]
    graph = helper.make_graph(nodes, "mlp", [_vi("x", [1, floats])], [_vi("y", [1, 4])],
                              initializer=[w, b])
    model = helper.make_model(graph, producer_name="hex-tests", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


# --------------------------------------------------------------------------- the reader


def test_reader_agrees_with_onnx_on_a_real_model(tmp_path: Path) -> None:
    model = benign_model()
    data = model.SerializeToString()
    records = list(iter_onnx(io.BytesIO(data), len(data)))
    nodes = [r for r in records if isinstance(r, OnnxNode)]
    tensors = {r.name: r for r in records if isinstance(r, OnnxTensor)}
    info = [r for r in records if isinstance(r, ModelInfo)][0]
    assert info.ir_version == 8 and info.producer_name == "hex-tests"
    assert ("", 17) in info.opset_imports and ("com.microsoft", 1) in info.opset_imports
    assert [n.op_type for n in nodes if n.scope == "graph"] == [
        n.op_type for n in model.graph.node]
    assert {n.op_type for n in nodes if "branch" in n.scope} == {"Relu", "Sigmoid"}
    assert [n.domain for n in nodes if n.op_type == "FastGelu"] == ["com.microsoft"]
    for init in model.graph.initializer:
        t = tensors[init.name]
        assert t.dims == tuple(init.dims) and t.data_type == init.data_type
        assert t.raw_length == len(init.raw_data)
    assert "fv" in tensors  # the Constant node's attribute tensor


def test_reader_reads_external_data_written_by_onnx(tmp_path: Path) -> None:
    model = benign_model(floats=256)
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    data = path.read_bytes()
    tensors = {r.name: r for r in iter_onnx(io.BytesIO(data), len(data))
               if isinstance(r, OnnxTensor)}
    w = tensors["w"]
    assert w.data_location == 1 and dict(w.external)["location"] == "ext.onnx.data"
    assert int(dict(w.external)["length"]) == 256 * 4 * 4
    result = scan_file(path)
    assert not serious(result), describe(result.findings)
    assert not result.errors


def test_benign_models_have_no_serious_findings(tmp_path: Path) -> None:
    result = scan_file(_save(benign_model(), tmp_path / "model.onnx"))
    assert not serious(result), describe(result.findings)
    assert not result.errors
    assert [f.format for f in result.files] == ["onnx"]


def test_local_functions_in_their_own_domain_are_fine(tmp_path: Path) -> None:
    model = benign_model()
    fn = helper.make_function("hex.local", "Block", ["a"], ["b"],
                              [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    model.functions.append(fn)
    assert not serious(scan_file(_save(model, tmp_path / "fn.onnx")))


def test_payloads_are_skipped_not_read(tmp_path: Path) -> None:
    """An 8 MiB initializer is seeked over: the scan reads a few KiB of a 8 MiB file."""
    path = _save(benign_model(floats=512 * 1024), tmp_path / "big.onnx")
    size = path.stat().st_size
    stream = CountingFile(path)
    records = list(iter_onnx(stream, size))
    assert any(isinstance(r, OnnxTensor) and r.raw_length == 512 * 1024 * 16 for r in records)
    assert stream.read_bytes < 256 * 1024 < size


def test_forward_only_streams_are_walked_too() -> None:
    data = benign_model(floats=4096).SerializeToString()
    stream = ForwardOnly(data)
    records = list(iter_onnx(stream, len(data)))
    assert any(isinstance(r, OnnxNode) and r.op_type == "If" for r in records)


# --------------------------------------------------------------------------- HEX-ONX-001


@pytest.mark.parametrize("location", ["../secrets.bin", "/etc/passwd", "sub/../../x.bin",
                                      "C:\\Windows\\win.ini", "..\\..\\x", "file:///etc/hosts"])
def test_external_data_escaping_the_directory_is_high(tmp_path: Path, location: str) -> None:
    model = benign_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    result = scan_file(_save(model, tmp_path / "evil.onnx"))
    hits = [f for f in result.findings if f.rule.id == "HEX-ONX-001"]
    assert hits and hits[0].effective_severity is Severity.HIGH, describe(result.findings)
    assert hits[0].evidence["location"] == location


def test_external_data_symlink_pointing_outside_is_caught(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not read by hex")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside / "secret.txt", model_dir / "weights.bin")
    model = benign_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    result = scan_file(_save(model, model_dir / "model.onnx"))
    assert "HEX-ONX-001" in rule_ids(result, Severity.HIGH), describe(result.findings)
    assert location_escape("weights.bin", str(model_dir)) is not None
    assert location_escape("weights.bin", None) is None  # inside a container: lexical only


def test_symlink_inside_the_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(b"\0" * 8)
    os.symlink(tmp_path / "real.bin", tmp_path / "alias.bin")
    assert location_escape("alias.bin", str(tmp_path)) is None
    assert location_escape("data/w.bin", str(tmp_path)) is None


# --------------------------------------------------------------------------- HEX-ONX-002/003/004


def test_python_op_is_critical_and_names_the_code(tmp_path: Path) -> None:
    model = benign_model()
    model.graph.node.append(helper.make_node(
        "PyOp", ["y"], ["z"], name="py", domain="com.microsoft", module="hex_harmless",
        class_name="Noop", compute="compute"))
    model.graph.node.append(helper.make_node(
        "PythonOp", ["y"], ["z2"], name="autograd", domain="com.microsoft",
        func_name="hex_harmless.Fn"))
    result = scan_file(_save(model, tmp_path / "py.onnx"))
    hits = [f for f in result.findings if f.rule.id == "HEX-ONX-002"]
    assert len(hits) == 2 and all(f.effective_severity is Severity.CRITICAL for f in hits)
    assert hits[0].evidence["python"]["module"] == "hex_harmless"


def test_custom_domain_op_is_medium_and_counted(tmp_path: Path) -> None:
    model = benign_model()
    for i in range(3):
        model.graph.node.append(helper.make_node("Frobnicate", ["y"], [f"f{i}"],
                                                 domain="com.example.ops"))
    model.graph.node.append(helper.make_node("NotAContribOp", ["y"], ["g"],
                                             domain="com.microsoft"))
    result = scan_file(_save(model, tmp_path / "custom.onnx"))
    hits = {f.evidence["op_type"]: f for f in result.findings if f.rule.id == "HEX-ONX-003"}
    assert set(hits) == {"Frobnicate", "NotAContribOp"}
    assert hits["Frobnicate"].evidence["nodes"] == 3
    assert hits["Frobnicate"].effective_severity is Severity.MEDIUM
    assert hits["NotAContribOp"].effective_severity is Severity.LOW
    assert [f.rule.id for f in serious(result)] == ["HEX-ONX-003"]


def test_function_shadowing_a_standard_op_is_medium(tmp_path: Path) -> None:
    model = benign_model()
    model.functions.append(helper.make_function(
        "", "Relu", ["a"], ["b"], [helper.make_node("Identity", ["a"], ["b"])],
        [helper.make_opsetid("", 17)]))
    result = scan_file(_save(model, tmp_path / "shadow.onnx"))
    assert "HEX-ONX-004" in rule_ids(result, Severity.MEDIUM), describe(result.findings)


def test_python_op_inside_a_function_or_subgraph_is_found() -> None:
    model = benign_model()
    model.functions.append(helper.make_function(
        "hex.local", "Wrapped", ["a"], ["b"],
        [helper.make_node("PyOp", ["a"], ["b"], domain="pyop", module="m")],
        [helper.make_opsetid("", 17)]))
    data = model.SerializeToString()
    records = list(iter_onnx(io.BytesIO(data), len(data)))
    assert any(isinstance(r, OnnxFunction) and r.name == "Wrapped" for r in records)
    found = scan_bytes(SCANNER, data, Format.ONNX)
    assert [f.rule.id for f in found] == ["HEX-ONX-002"]
    assert "function hex.local.Wrapped" in found[0].message


# --------------------------------------------------------------------------- HEX-ONX-005


def _tensor_model(tensor: TensorProto) -> bytes:
    model = benign_model()
    model.graph.initializer.append(tensor)
    return model.SerializeToString()


@pytest.mark.parametrize("case", ["negative", "overflow", "raw-mismatch", "float-mismatch",
                                  "external-length", "no-location"])
def test_implausible_tensors_are_medium(case: str) -> None:
    t = TensorProto(name="bad", data_type=TensorProto.FLOAT)
    if case == "negative":
        t.dims.extend([4, -2])
        t.raw_data = b"\0" * 8
    elif case == "overflow":
        t.dims.extend([1 << 40, 1 << 40])
    elif case == "raw-mismatch":
        t.dims.extend([4, 4])
        t.raw_data = b"\0" * 12
    elif case == "float-mismatch":
        t.dims.extend([3])
        t.float_data.extend([1.0, 2.0])
    elif case == "external-length":
        t.dims.extend([4])
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value="w.bin")
        t.external_data.add(key="length", value="1000000")
    else:
        t.dims.extend([4])
        t.data_location = TensorProto.EXTERNAL
    found = scan_bytes(SCANNER, _tensor_model(t), Format.ONNX)
    assert [f.rule.id for f in found] == ["HEX-ONX-005"], describe(found)
    assert found[0].effective_severity is Severity.MEDIUM


def test_valid_typed_tensors_are_fine() -> None:
    model = benign_model()
    model.graph.initializer.extend([
        helper.make_tensor("f", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0]),
        helper.make_tensor("i4", TensorProto.INT4, [3], [1, 2, 3]),
        helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"bc"]),
        helper.make_tensor("c", TensorProto.COMPLEX64, [1], [complex(1, 2)]),
        numpy_helper.from_array(np.ones((2, 3), dtype=np.float16), "half"),
        numpy_helper.from_array(np.ones((5,), dtype=np.bool_), "bools"),
    ])
    onnx.checker.check_model(model)
    assert scan_bytes(SCANNER, model.SerializeToString(), Format.ONNX) == []


# --------------------------------------------------------------------------- robustness


def test_truncated_models_are_reported(tmp_path: Path) -> None:
    """A big model cut short reaches the scanner (its head still parses): FMT-002 and an
    error; a small one cut short is unrecognised content under an .onnx name (FMT-001)."""
    data = benign_model(floats=64 * 1024).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) - 1000])
    result = scan_file(path)
    assert result.errors and "HEX-FMT-002" in rule_ids(result, Severity.MEDIUM)
    small = benign_model().SerializeToString()
    path.write_bytes(small[: len(small) - 7])
    assert scan_file(path).findings


def test_fuzzed_onnx_never_escapes_the_scanner() -> None:
    """3,000 seeded mutants: each ends in findings, clean or a reported error."""
    data = benign_model().SerializeToString()
    outcomes: dict[str, int] = {}
    for mutant in mutations(data, 3000, seed=20240611):
        outcome = scan_outcome(SCANNER, mutant, Format.ONNX, "fuzz.onnx")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("error", 0) > 100 and sum(outcomes.values()) == 3000


def test_huge_declared_lengths_do_not_allocate() -> None:
    """A 2^60-byte raw_data length header is refused before any read."""
    head = bytes([0x3A]) + bytes([0x80] * 8 + [0x10])  # graph (7, LEN) with a 2^60 length
    assert scan_outcome(SCANNER, b"\x08\x08" + head, Format.ONNX) == "error"
    deep = b"".join(bytes([0x3A, 0x7F]) for _ in range(200))
    assert scan_outcome(SCANNER, b"\x08\x08" + deep, Format.ONNX) == "error"
