"""The tensorflow scanner, proved against protobufs serialised by the real protobuf library.

TensorFlow is not installed: the messages are built from descriptors that carry
TensorFlow's own field numbers (SavedModel, MetaGraphDef, GraphDef, FunctionDef, NodeDef,
AttrValue, TensorProto, AssetFileDef), so the bytes are what TensorFlow writes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.protobuf")

from fixtures.formats import proto_classes  # noqa: E402
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

from hexscan.formats.kinds import Format  # noqa: E402
from hexscan.model.severity import Severity  # noqa: E402
from hexscan.parsers.tensorflow import (  # noqa: E402
    ScopeEnd,
    TfAsset,
    TfNode,
    iter_graph_def,
    iter_saved_model,
)
from hexscan.scanners.tensorflow import TensorflowScanner, path_escapes  # noqa: E402

SCANNER = TensorflowScanner()
DT_FLOAT, DT_STRING, DT_INT32 = 1, 7, 3


def tf() -> dict[str, type]:
    return proto_classes("tensorflow", {
        "SavedModel": [("saved_model_schema_version", 1, "int64", None, False),
                       ("meta_graphs", 2, "message", "MetaGraphDef", True)],
        "MetaGraphDef": [("meta_info_def", 1, "message", "MetaInfoDef", False),
                         ("graph_def", 2, "message", "GraphDef", False),
                         ("asset_file_def", 6, "message", "AssetFileDef", True)],
        "MetaInfoDef": [("meta_graph_version", 1, "string", None, False),
                        ("tags", 4, "string", None, True),
                        ("tensorflow_version", 5, "string", None, False)],
        "AssetFileDef": [("tensor_info", 1, "message", "TensorInfo", False),
                         ("filename", 2, "string", None, False)],
        "TensorInfo": [("name", 1, "string", None, False)],
        "GraphDef": [("node", 1, "message", "NodeDef", True),
                     ("library", 2, "message", "FunctionDefLibrary", False),
                     ("versions", 4, "message", "VersionDef", False)],
        "FunctionDefLibrary": [("function", 1, "message", "FunctionDef", True)],
        "FunctionDef": [("signature", 1, "message", "OpDef", False),
                        ("node_def", 3, "message", "NodeDef", True)],
        "OpDef": [("name", 1, "string", None, False)],
        "VersionDef": [("producer", 1, "int32", None, False)],
        "NodeDef": [("name", 1, "string", None, False), ("op", 2, "string", None, False),
                    ("input", 3, "string", None, True), ("device", 4, "string", None, False),
                    ("attr", 5, "message", "AttrEntry", True)],
        "AttrEntry": [("key", 1, "string", None, False),
                      ("value", 2, "message", "AttrValue", False)],
        "AttrValue": [("list", 1, "message", "ListValue", False),
                      ("s", 2, "bytes", None, False), ("i", 3, "int64", None, False),
                      ("type", 6, "enum_as_int", None, False),
                      ("tensor", 8, "message", "TensorProto", False)],
        "ListValue": [("s", 2, "bytes", None, True)],
        "TensorProto": [("dtype", 1, "enum_as_int", None, False),
                        ("tensor_content", 4, "bytes", None, False),
                        ("string_val", 8, "bytes", None, True)],
    })


TF = tf()


def node(graph: Any, name: str, op: str, inputs: tuple[str, ...] = (), **attrs: Any) -> Any:
    n = graph.node_def.add() if hasattr(graph, "node_def") else graph.node.add()
    n.name, n.op = name, op
    n.input.extend(inputs)
    for key, value in attrs.items():
        entry = n.attr.add(key=key)
        if isinstance(value, bytes):
            entry.value.s = value
        elif isinstance(value, list):
            entry.value.list.s.extend(value)
        elif isinstance(value, dict):
            entry.value.tensor.dtype = value.get("dtype", DT_STRING)
            entry.value.tensor.string_val.extend(value.get("strings", []))
            if "content" in value:
                entry.value.tensor.tensor_content = value["content"]
        else:
            entry.value.type = value
    return n


def const_str(graph: Any, name: str, value: str) -> Any:
    return node(graph, name, "Const", value={"strings": [value.encode()]}, dtype=DT_STRING)


def benign_graph(graph: Any, weights: int = 64) -> Any:
    """A TF1-style graph: a dense layer, the standard saver subgraph, a vocab table."""
    node(graph, "x", "Placeholder", dtype=DT_FLOAT)
    node(graph, "w", "Const", value={"dtype": DT_FLOAT, "content": b"\0" * 4 * weights},
         dtype=DT_FLOAT)
    node(graph, "mm", "MatMul", ("x", "w"), T=DT_FLOAT)
    node(graph, "y", "Relu", ("mm",), T=DT_FLOAT)
    # tf.compat.v1.train.Saver(sharded=True)
    const_str(graph, "save/Const_default", "model")
    node(graph, "save/filename", "PlaceholderWithDefault", ("save/Const_default",))
    node(graph, "save/Const", "Identity", ("save/filename",))
    const_str(graph, "save/StringJoin/inputs_1", "_temp_6f1c/part")
    node(graph, "save/StringJoin", "StringJoin", ("save/Const", "save/StringJoin/inputs_1"))
    node(graph, "save/num_shards", "Const", dtype=DT_INT32)
    node(graph, "save/ShardedFilename", "ShardedFilename",
         ("save/StringJoin", "save/ShardedFilename/shard", "save/num_shards"))
    node(graph, "save/SaveV2", "SaveV2", ("save/ShardedFilename", "save/SaveV2/tensor_names",
                                          "save/SaveV2/shape_and_slices", "w"))
    node(graph, "save/MergeV2Checkpoints", "MergeV2Checkpoints",
         ("save/MergeV2Checkpoints/checkpoint_prefixes", "save/Const"))
    node(graph, "save/RestoreV2", "RestoreV2", ("save/Const", "save/RestoreV2/tensor_names",
                                                "save/RestoreV2/shape_and_slices"))
    # a vocabulary table fed from the SavedModel's assets
    node(graph, "asset_path", "Placeholder", dtype=DT_STRING)
    node(graph, "table", "HashTableV2")
    node(graph, "table_init", "InitializeTableFromTextFileV2", ("table", "asset_path"))
    graph.versions.producer = 1645
    return graph


def benign_library(graph: Any) -> None:
    """TF2 function library: a traced serving function and the save function."""
    serve = graph.library.function.add()
    serve.signature.name = "__inference_serve_42"
    node(serve, "MatMul", "MatMul", ("x", "w"))
    node(serve, "Identity", "Identity", ("MatMul:product:0",))
    save = graph.library.function.add()
    save.signature.name = "__inference__traced_save_99"
    const_str(save, "StaticRegexFullMatch/pattern", "^s3://.*")
    node(save, "StringJoin", "StringJoin", ("file_prefix", "Const:output:0"))
    node(save, "ShardedFilename", "ShardedFilename", ("StringJoin:output:0", "num_shards"))
    node(save, "SaveV2", "SaveV2", ("ShardedFilename:filename:0", "tensor_names"))
    node(save, "MergeV2Checkpoints", "MergeV2Checkpoints", ("prefixes", "file_prefix"))


def saved_model(graph_cb: Any = None, assets: tuple[str, ...] = ("vocab.txt",),
                weights: int = 64) -> bytes:
    sm = TF["SavedModel"](saved_model_schema_version=1)
    meta = sm.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.meta_info_def.tensorflow_version = "2.15.0"
    benign_graph(meta.graph_def, weights)
    benign_library(meta.graph_def)
    for name in assets:
        asset = meta.asset_file_def.add(filename=name)
        asset.tensor_info.name = "asset_path:0"
    if graph_cb:
        graph_cb(meta.graph_def)
    return bytes(sm.SerializeToString())


def findings_for(data: bytes, fmt: Format = Format.TF_SAVEDMODEL) -> list[Any]:
    return scan_bytes(SCANNER, data, fmt, "saved_model.pb")


# --------------------------------------------------------------------------- reader + benign


def test_reader_agrees_with_protobuf() -> None:
    data = saved_model()
    parsed = TF["SavedModel"].FromString(data)
    records = list(iter_saved_model(io.BytesIO(data), len(data)))
    nodes = [r for r in records if isinstance(r, TfNode)]
    graph_nodes = [n for n in nodes if n.scope == "meta_graph[0].graph"]
    assert [(n.name, n.op) for n in graph_nodes] == [
        (n.name, n.op) for n in parsed.meta_graphs[0].graph_def.node]
    assert graph_nodes[2].inputs == ("x", "w")
    fn_scopes = {n.scope for n in nodes} - {"meta_graph[0].graph"}
    assert fn_scopes == {"meta_graph[0].graph.function[__inference_serve_42]",
                         "meta_graph[0].graph.function[__inference__traced_save_99]"}
    consts = {n.name: n.attr("value") for n in graph_nodes if n.op == "Const"}
    assert consts["save/Const_default"] == ("model",)
    assert sum(isinstance(r, ScopeEnd) for r in records) == 3
    assert [r.filename for r in records if isinstance(r, TfAsset)] == ["vocab.txt"]


def test_benign_saved_model_has_no_serious_findings(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(saved_model())
    result = scan_file(root / "saved_model.pb")
    assert [f.format for f in result.files] == ["tf-savedmodel"]
    assert not serious(result), describe(result.findings)
    assert not result.errors


def test_frozen_graph_def(tmp_path: Path) -> None:
    graph = benign_graph(TF["GraphDef"]())
    path = tmp_path / "frozen_graph.pb"
    path.write_bytes(graph.SerializeToString())
    result = scan_file(path)
    assert [f.format for f in result.files] == ["tf-graphdef"]
    assert not serious(result), describe(result.findings)
    node(graph, "leak", "ReadFile", ("x",))
    path.write_bytes(graph.SerializeToString())
    assert "HEX-TFG-003" in rule_ids(scan_file(path), Severity.MEDIUM)
    records = list(iter_graph_def(io.BytesIO(graph.SerializeToString()), None))
    assert records[-1] == ScopeEnd("graph")


def test_constant_payloads_are_skipped_not_read(tmp_path: Path) -> None:
    data = saved_model(weights=2 * 1024 * 1024)  # an 8 MiB constant
    path = tmp_path / "saved_model.pb"
    path.write_bytes(data)
    stream = CountingFile(path)
    nodes = [r for r in iter_saved_model(stream, len(data)) if isinstance(r, TfNode)]
    assert any(n.name == "w" for n in nodes)
    assert stream.read_bytes < 256 * 1024 < len(data)
    forward = ForwardOnly(data)
    assert len([r for r in iter_saved_model(forward, len(data)) if isinstance(r, TfNode)]) == \
        len(nodes)


# --------------------------------------------------------------------------- malicious graphs


def test_python_ops_in_graph_and_library_are_high() -> None:
    def add(graph: Any) -> None:
        node(graph, "bad", "PyFunc", ("x",), token=b"pyfunc_0")
        fn = graph.library.function.add()
        fn.signature.name = "__inference_call_7"
        node(fn, "eager", "EagerPyFunc", ("x",), token=b"pyfunc_1")

    found = findings_for(saved_model(add))
    hits = [f for f in found if f.rule.id == "HEX-TFG-001"]
    assert {f.evidence["op"] for f in hits} == {"PyFunc", "EagerPyFunc"}, describe(found)
    assert all(f.effective_severity is Severity.HIGH for f in hits)


def test_write_file_is_high() -> None:
    def add(graph: Any) -> None:
        const_str(graph, "path", "/var/hex-test-marker")
        node(graph, "w_file", "WriteFile", ("path", "y"))

    found = findings_for(saved_model(add))
    assert [f.rule.id for f in found] == ["HEX-TFG-002"], describe(found)
    assert found[0].effective_severity is Severity.HIGH


@pytest.mark.parametrize("target", ["/var/hex-test/ckpt", "../../outside/ckpt",
                                    "gs://bucket/ckpt"])
def test_save_to_a_fixed_outside_path_is_high(target: str) -> None:
    def add(graph: Any) -> None:
        const_str(graph, "evil/path", target)
        node(graph, "evil/join", "StringJoin", ("evil/path",))
        node(graph, "evil/SaveV2", "SaveV2", ("evil/join", "save/SaveV2/tensor_names"))

    found = findings_for(saved_model(add))
    assert [f.rule.id for f in found] == ["HEX-TFG-002"], describe(found)
    assert found[0].evidence["path"] == target
    assert found[0].effective_severity is Severity.HIGH


def test_reads_are_medium_and_high_with_a_fixed_outside_path() -> None:
    def add(graph: Any) -> None:
        node(graph, "r1", "ReadFile", ("x",))
        const_str(graph, "secret", "/etc/hostname")
        node(graph, "r2", "MatchingFiles", ("secret",))
        const_str(graph, "prefix", "../other_model/variables")
        node(graph, "r3", "RestoreV2", ("prefix", "names", "slices"))

    found = {f.evidence["node"]: f for f in findings_for(saved_model(add))}
    assert set(found) == {"r1", "r2", "r3"}
    assert found["r1"].effective_severity is Severity.MEDIUM
    assert found["r2"].effective_severity is Severity.HIGH
    assert found["r3"].rule.id == "HEX-TFG-003" and found["r3"].effective_severity is Severity.HIGH


def test_debug_dumps_and_prints_to_urls() -> None:
    def add(graph: Any) -> None:
        node(graph, "dbg", "DebugIdentity", ("y",), debug_urls=[b"file:///tmp/hex-dump"])
        node(graph, "dbg2", "DebugIdentityV2", ("y",), debug_urls=[b"grpc://collector:6064"])
        node(graph, "quiet", "DebugIdentity", ("y",))
        node(graph, "print", "PrintV2", ("y",), output_stream=b"file:///tmp/hex-print")
        node(graph, "stderr", "PrintV2", ("y",), output_stream=b"stderr")

    found = {f.evidence["node"] for f in findings_for(saved_model(add))
             if f.rule.id == "HEX-TFG-002"}
    assert found == {"dbg", "dbg2", "print"}


def test_asset_outside_the_model_is_high() -> None:
    found = findings_for(saved_model(assets=("vocab.txt", "../../../etc/passwd")))
    assert [f.rule.id for f in found] == ["HEX-TFG-004"], describe(found)
    assert found[0].evidence["filename"] == "../../../etc/passwd"
    assert path_escapes("C:\\secrets.txt") and not path_escapes("vocab/words.txt")


def test_keras_metadata_is_left_to_the_keras_scanner() -> None:
    data = saved_model(lambda g: node(g, "bad", "PyFunc"))
    assert scan_bytes(SCANNER, data, Format.TF_SAVEDMODEL, "keras_metadata.pb") == []


# --------------------------------------------------------------------------- robustness


def test_malformed_saved_model_is_reported(tmp_path: Path) -> None:
    data = saved_model(weights=32 * 1024)
    path = tmp_path / "saved_model.pb"
    path.write_bytes(data[:-500])
    result = scan_file(path)
    assert result.errors and "HEX-FMT-002" in rule_ids(result, Severity.MEDIUM)


def test_fuzzed_saved_models_never_escape_the_scanner() -> None:
    data = saved_model(lambda g: node(g, "r", "ReadFile", ("x",)))
    outcomes: dict[str, int] = {}
    for i, mutant in enumerate(mutations(data, 3000, seed=7)):
        fmt = Format.TF_SAVEDMODEL if i % 2 else Format.TF_GRAPHDEF
        outcome = scan_outcome(SCANNER, mutant, fmt, "saved_model.pb")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("error", 0) > 100 and sum(outcomes.values()) == 3000


def test_deep_nesting_and_field_floods_stop_at_limits() -> None:
    deep = b"".join(bytes([0x12, 0x7E]) for _ in range(100))
    assert scan_outcome(SCANNER, deep, Format.TF_SAVEDMODEL) == "error"
    huge = b"\x12" + bytes([0xFF] * 9) + b"\x01"
    assert scan_outcome(SCANNER, huge, Format.TF_SAVEDMODEL) == "error"


# ops that read, write or send data, in the graph and in the function library
NEW_OPS = {
    # dataset snapshot/save, tf.data service, RPC, file matching, summaries
    "SnapshotDatasetV2": ("HEX-TFG-002", Severity.HIGH),
    "SaveDatasetV2": ("HEX-TFG-002", Severity.HIGH),
    "DistributedSave": ("HEX-TFG-002", Severity.HIGH),
    "DatasetToTFRecord": ("HEX-TFG-002", Severity.HIGH),
    "WriteSummary": ("HEX-TFG-002", Severity.HIGH),
    "FileSystemSetConfiguration": ("HEX-TFG-002", Severity.HIGH),
    "DataServiceDatasetV4": ("HEX-TFG-002", Severity.HIGH),
    "RegisterDatasetV2": ("HEX-TFG-002", Severity.HIGH),
    "RpcClient": ("HEX-TFG-002", Severity.HIGH),
    "RpcServerStart": ("HEX-TFG-002", Severity.HIGH),
    "RpcCall": ("HEX-TFG-002", Severity.HIGH),
    "RpcGetValue": ("HEX-TFG-002", Severity.HIGH),
    "TryRpc": ("HEX-TFG-002", Severity.HIGH),
    "CollectiveBcastSendV2": ("HEX-TFG-002", Severity.MEDIUM),
    "RemoteCall": ("HEX-TFG-002", Severity.MEDIUM),
    "LoadDataset": ("HEX-TFG-003", Severity.MEDIUM),
    "MatchingFilesDataset": ("HEX-TFG-003", Severity.MEDIUM),
    "ListSnapshotChunksDataset": ("HEX-TFG-003", Severity.MEDIUM),
    "TFRecordDatasetV2": ("HEX-TFG-003", Severity.MEDIUM),
    "FixedLengthRecordDatasetV2": ("HEX-TFG-003", Severity.MEDIUM),
    "TextLineDataset": ("HEX-TFG-003", Severity.MEDIUM),
    "WholeFileReaderV2": ("HEX-TFG-003", Severity.MEDIUM),
    "ImmutableConst": ("HEX-TFG-003", Severity.MEDIUM),
    "LoadAndRemapMatrix": ("HEX-TFG-003", Severity.MEDIUM),
}


@pytest.mark.parametrize("op", sorted(NEW_OPS))
@pytest.mark.parametrize("where", ["graph", "library"])
def test_data_movement_ops(op: str, where: str) -> None:
    rule, severity = NEW_OPS[op]

    def add(graph: Any) -> None:
        if where == "graph":
            node(graph, "moved", op, ("x",))
        else:
            fn = graph.library.function.add()
            fn.signature.name = "__inference_serve_11"
            node(fn, "moved", op, ("x",))

    found = [f for f in findings_for(saved_model(add)) if f.evidence.get("node") == "moved"]
    assert [f.rule.id for f in found] == [rule], describe(found)
    assert found[0].effective_severity is severity


def test_proto_ops_with_a_descriptor_file_are_high() -> None:
    def add(graph: Any) -> None:
        node(graph, "dec", "DecodeProtoV2", ("x",), descriptor_source=b"/etc/hex/desc.pb",
             message_type=b"pkg.Msg")
        node(graph, "enc", "EncodeProto", ("x",), descriptor_source=b"../../desc.bin")
        node(graph, "pool", "DecodeProtoV2", ("x",), descriptor_source=b"local://")
        node(graph, "inline", "DecodeProtoV2", ("x",), descriptor_source=b"bytes://\n\x03abc")
        node(graph, "default", "EncodeProto", ("x",))

    found = {f.evidence["node"]: f for f in findings_for(saved_model(add))}
    assert set(found) == {"dec", "enc"}, describe(list(found.values()))
    assert all(f.rule.id == "HEX-TFG-003" and f.effective_severity is Severity.HIGH
               for f in found.values())
    assert found["dec"].evidence["path"] == "/etc/hex/desc.pb"


def test_policy_op_lists_do_not_overlap() -> None:
    """An op in two lists would be judged by whichever branch comes first."""
    import tomllib
    from importlib import resources

    data = tomllib.loads(resources.files("hexscan.policy").joinpath(
        "tensorflow.toml").read_text("utf-8"))
    lists = {k: set(v) for k, v in data.items() if k.endswith(("_ops", "_checked"))}
    seen: dict[str, str] = {}
    for key, ops in lists.items():
        for op in ops:
            assert op not in seen, f"{op} is in {seen.get(op)} and {key}"
            seen[op] = key
