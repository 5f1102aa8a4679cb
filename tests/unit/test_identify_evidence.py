"""Identification by evidence: the real-world layouts that once raised false alarms.

Each case comes from the real-world benchmark (bench/realworld.py): MediaPipe graph configs
read as TF GraphDefs, SavedModel fingerprints read as ONNX, TFLite associated files read as
a polyglot, plain-data pickles under a non-pickle name read as disguised code. Every fix
keeps its malicious twin flagged.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fixtures.formats import graph_def, tf_classes
from fixtures.realworld import (
    MEDIAPIPE_TEXT,
    fingerprint_pb,
    mediapipe_graph,
    model_metadata,
    populate_associated_files,
    tflite_with_metadata,
)

from hexscan.engine.walk import Task, WorkerSettings, scan_task
from hexscan.formats.identify import HEAD_SIZE, TAIL_SIZE, Identification, identify
from hexscan.formats.kinds import Format
from hexscan.formats.pickle_probe import plain_data_pickle
from hexscan.model.report import TaskResult
from hexscan.model.severity import Severity
from hexscan.scanners.registry import load_scanners

MALFORMED, MISMATCH, POLYGLOT = "HEX-FMT-002", "HEX-FMT-001", "HEX-ARC-009"


def ident(data: bytes, name: str) -> Identification:
    return identify(name, data[:HEAD_SIZE], len(data), data[-TAIL_SIZE:])


def scan(path: Path) -> TaskResult:
    return scan_task(Task(str(path), path.name), WorkerSettings(), load_scanners())


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def top(result: TaskResult) -> tuple[str, str]:
    entry = next(f for f in result.files if f.member is None)
    return entry.format, entry.status.value


def serious(result: TaskResult) -> list[str]:
    return sorted(f.rule.id for f in result.findings
                  if f.effective_severity >= Severity.MEDIUM)


# --- MediaPipe graph configs ---------------------------------------------------------------

@pytest.mark.parametrize("with_graph_fields", [True, False], ids=["subgraph", "nodes-only"])
def test_binarypb_graph_config_is_a_mediapipe_graph(tmp_path: Path,
                                                    with_graph_fields: bool) -> None:
    data = mediapipe_graph(with_graph_fields)
    assert ident(data, "selfie_segmentation_cpu.binarypb").format is Format.MEDIAPIPE_GRAPH
    result = scan(write(tmp_path, "selfie_segmentation_cpu.binarypb", data))
    assert top(result) == ("mediapipe-graph", "scanned")
    assert serious(result) == [] and result.errors == ()


def test_graph_config_with_graph_only_fields_is_known_without_its_name() -> None:
    """input_stream (10), output_stream (15), type (20) exist in no GraphDef."""
    assert ident(mediapipe_graph(), "graph").format is Format.MEDIAPIPE_GRAPH
    # A node-only config is a GraphDef lookalike: without the MediaPipe name it is not
    # claimed as a MediaPipe graph.
    assert ident(mediapipe_graph(False), "graph").format is not Format.MEDIAPIPE_GRAPH


def test_graph_def_is_still_a_graph_def_and_not_a_mediapipe_graph() -> None:
    data = graph_def(tf_classes()).SerializeToString()
    assert ident(data, "frozen_graph.pb").format is Format.TF_GRAPHDEF
    assert ident(data, "graph").format is Format.TF_GRAPHDEF


def test_other_protobuf_named_binarypb_is_not_taken_for_a_graph(tmp_path: Path) -> None:
    data = fingerprint_pb()
    got = ident(data, "graph.binarypb")
    assert got.format is Format.TF_FINGERPRINT and got.mismatch
    assert serious(scan(write(tmp_path, "graph.binarypb", data))) == []


def test_pbtxt_graph_config_is_recognised_and_other_pbtxt_is_text(tmp_path: Path) -> None:
    assert ident(MEDIAPIPE_TEXT.encode(), "hand_tracking.pbtxt").format \
        is Format.MEDIAPIPE_GRAPH_TEXT
    assert ident(b'meta_graphs {\n  tags: "serve"\n}\n', "saved_model.pbtxt").format \
        is Format.TEXT
    result = scan(write(tmp_path, "hand_tracking.pbtxt", MEDIAPIPE_TEXT.encode()))
    assert top(result) == ("mediapipe-graph-text", "scanned") and serious(result) == []


# --- SavedModel fingerprint ----------------------------------------------------------------

def test_fingerprint_is_not_an_onnx_model(tmp_path: Path) -> None:
    """uuid (7, a string) and the varint hashes once matched the ONNX field-number test."""
    data = fingerprint_pb()
    assert ident(data, "fingerprint.pb").format is Format.TF_FINGERPRINT
    assert ident(data, "blob").format is Format.TF_FINGERPRINT  # five hashes: by content
    tf = tf_classes()
    saved = tf["SavedModel"](saved_model_schema_version=1)
    saved.meta_graphs.add().graph_def.CopyFrom(graph_def(tf))
    write(tmp_path, "sm/saved_model.pb", saved.SerializeToString())
    result = scan(write(tmp_path, "sm/fingerprint.pb", data))
    assert top(result) == ("tf-fingerprint", "scanned")
    assert serious(result) == [] and result.findings == ()


def test_fingerprint_name_does_not_make_any_protobuf_a_fingerprint() -> None:
    graph = graph_def(tf_classes()).SerializeToString()
    got = ident(graph, "fingerprint.pb")
    assert got.format is Format.TF_GRAPHDEF and got.mismatch


# --- a structural guess that does not parse ------------------------------------------------

def _broken_graph_def() -> bytes:
    """NodeDef-shaped node whose attr entry holds a field of wire type 7 (no such type)."""
    node = b"\x0a\x01x" + b"\x12\x0bPlaceholder" + b"\x2a\x02\x0f\x00"
    return b"\x0a" + bytes([len(node)]) + node


def test_unsupported_guess_is_unrecognised_not_malformed(tmp_path: Path) -> None:
    data = _broken_graph_def()
    assert ident(data, "blob").format is Format.TF_GRAPHDEF and ident(data, "blob").guessed
    result = scan(write(tmp_path, "blob", data))
    assert top(result) == ("unknown", "skipped")
    assert MALFORMED not in serious(result)


def test_named_format_that_does_not_parse_is_still_malformed(tmp_path: Path) -> None:
    result = scan(write(tmp_path, "frozen_graph.pb", _broken_graph_def()))
    assert top(result) == ("tf-graphdef", "error")
    assert MALFORMED in serious(result)


# --- TFLite associated files ---------------------------------------------------------------

LABELS = b"background\nperson\ncat\n"


def _with_labels(files: dict[str, bytes], declared: list[str]) -> bytes:
    return populate_associated_files(tflite_with_metadata(model_metadata(declared)), files)


def test_declared_associated_files_are_no_polyglot(tmp_path: Path) -> None:
    data = _with_labels({"labels.txt": LABELS}, ["labels.txt"])
    result = scan(write(tmp_path, "classifier.tflite", data))
    assert top(result)[0] == "tflite"
    assert serious(result) == []
    members = {f.member: f.format for f in result.files if f.member}
    assert members == {"labels.txt": "text"}  # the appended members are still scanned
    facts = [f.data for f in result.facts if f.kind == "appended_archive"]
    assert facts and facts[0]["members"] == ["labels.txt"]


def test_declared_associated_files_inside_an_archive(tmp_path: Path) -> None:
    """A model shipped in a zip (a wheel, a model bundle) is judged the same way."""
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("models/classifier.tflite", _with_labels({"labels.txt": LABELS},
                                                             ["labels.txt"]))
    result = scan(bundle)
    assert serious(result) == []
    assert [f.member for f in result.facts if f.kind == "appended_archive"] == \
        ["models/classifier.tflite"]


def test_files_declared_on_the_model_and_the_tensor_both_count(tmp_path: Path) -> None:
    meta = model_metadata(["labels.txt"], model_files=("vocab.txt",))
    data = populate_associated_files(tflite_with_metadata(meta),
                                     {"labels.txt": LABELS, "vocab.txt": b"[PAD]\n[UNK]\n"})
    assert serious(scan(write(tmp_path, "m.tflite", data))) == []


@pytest.mark.parametrize(("files", "declared"), [
    ({"labels.txt": LABELS, "payload.txt": b"extra"}, ["labels.txt"]),  # undeclared member
    ({"labels.txt": pickle.dumps(print, protocol=2)}, ["labels.txt"]),  # code under a label
    ({"labels.txt": LABELS}, []),  # metadata declares nothing
], ids=["undeclared-member", "pickle-member", "nothing-declared"])
def test_other_appended_archives_stay_polyglots(tmp_path: Path, files: dict[str, bytes],
                                                declared: list[str]) -> None:
    result = scan(write(tmp_path, "m.tflite", _with_labels(files, declared)))
    assert POLYGLOT in serious(result)


def test_zip_appended_to_a_model_without_metadata_stays_a_polyglot(tmp_path: Path) -> None:
    data = populate_associated_files(tflite_with_metadata(None), {"labels.txt": LABELS})
    assert POLYGLOT in serious(scan(write(tmp_path, "m.tflite", data)))


# --- plain-data pickles under another format's name ---------------------------------------

PLAIN = [[0, 97, 182, 291], {"offsets": (1, 2.5, "x", None, True)}, [b"raw", "text"]]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_probe_agrees_with_an_unpickler_that_imports_nothing(protocol: int) -> None:
    """Differential: a throw-away interpreter loads each stream with find_class refused."""
    samples = [pickle.dumps(value, protocol=protocol) for value in PLAIN]
    samples += [pickle.dumps(print, protocol=protocol), pickle.dumps({1, 2}, protocol=protocol)]
    code = (
        "import io, pickle, sys\n"
        "class NoImports(pickle.Unpickler):\n"
        "    def find_class(self, module, name):\n"
        "        raise pickle.UnpicklingError('import refused')\n"
        "for blob in eval(sys.stdin.read()):\n"
        "    try:\n"
        "        NoImports(io.BytesIO(blob)).load()\n"
        "        print('plain')\n"
        "    except pickle.UnpicklingError:\n"
        "        print('imports')\n"
    )
    command = [sys.executable, "-I", "-c", code]
    run = subprocess.run(command, input=repr(samples), capture_output=True,  # noqa: S603
                         text=True, check=True, timeout=60)
    loader = [line == "plain" for line in run.stdout.split()]
    assert [plain_data_pickle(s) for s in samples] == loader
    assert loader[len(PLAIN)] is False  # pickling a function always imports it


def test_trailing_bytes_after_a_plain_pickle_are_not_plain() -> None:
    data = pickle.dumps([1, 2, 3], protocol=2)
    assert plain_data_pickle(data + data)
    assert not plain_data_pickle(data + b"PK\x03\x04 more")
    assert not plain_data_pickle(b"")


@pytest.mark.parametrize(("value", "severity"), [
    ([0, 97, 182, 291], Severity.LOW),  # gensim's corpus offsets (*.mm.index)
    (print, Severity.MEDIUM),
], ids=["plain-data", "imports"])
def test_pickle_under_a_data_only_name(tmp_path: Path, value: object,
                                       severity: Severity) -> None:
    result = scan(write(tmp_path, "testcorpus.mm.index", pickle.dumps(value, protocol=2)))
    assert [f.effective_severity for f in result.findings
            if f.rule.id == MISMATCH] == [severity]


# --- .npy headers written by Python 2 --------------------------------------------------------

def _npy_v1(header: str, data: bytes) -> bytes:
    """A version 1.0 .npy file; Python 2 numpy wrote longs in the shape (``2L``)."""
    raw = header.encode("latin-1")
    pad = 64 - (10 + len(raw) + 1) % 64
    raw += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + data


@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (1L, 2L), }",
], ids=["1d", "2d"])
def test_python2_npy_header_is_read_as_numpy_reads_it(tmp_path: Path, header: str) -> None:
    ones = b"\x00\x00\x00\x00\x00\x00\xf0?" * 2
    path = write(tmp_path, "win64python2.npy", _npy_v1(header, ones))
    code = "import sys, numpy; print(numpy.load(sys.argv[1]).size)"
    run = subprocess.run([sys.executable, "-c", code, str(path)],  # noqa: S603
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "2", run.stderr  # numpy accepts it
    result = scan(path)
    assert top(result) == ("numpy-npy", "scanned") and serious(result) == []


def test_python2_long_suffix_is_not_accepted_in_a_version_3_header(tmp_path: Path) -> None:
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }".ljust(115) + b"\n"
    data = b"\x93NUMPY\x03\x00" + len(header).to_bytes(4, "little") + header + b"\x00" * 16
    assert MALFORMED in serious(scan(write(tmp_path, "v3.npy", data)))


# --- 0xCAFEBABE: JVM class file or Mach-O universal binary ----------------------------------

def _java_class(major: int) -> bytes:
    """JVMS 4.1: magic, minor, major, then the constant pool; header as javac writes it."""
    return b"\xca\xfe\xba\xbe" + (0).to_bytes(2, "big") + major.to_bytes(2, "big") + \
        b"\x00\x0d\x0a\x00\x02\x00\x03\x07\x00\x04" + b"\x00" * 48


def _macho_universal(archs: int) -> bytes:
    """mach-o/fat.h: FAT_MAGIC, nfat_arch, then fat_arch records (cputype, subtype ...)."""
    record = (0x01000007).to_bytes(4, "big") + (3).to_bytes(4, "big") + \
        (4096).to_bytes(4, "big") + (16).to_bytes(4, "big") + (12).to_bytes(4, "big")
    return b"\xca\xfe\xba\xbe" + archs.to_bytes(4, "big") + record * archs


@pytest.mark.parametrize("major", [45, 52, 65, 69])
def test_java_class_file_is_no_native_executable(tmp_path: Path, major: int) -> None:
    data = _java_class(major)
    assert ident(data, "Main.class").format is not Format.EXECUTABLE
    jar = tmp_path / "gradle-wrapper.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr("org/example/Main.class", data)
    assert serious(scan(jar)) == []


@pytest.mark.parametrize("archs", [1, 2, 4])
def test_macho_universal_binary_is_still_an_executable(archs: int) -> None:
    assert ident(_macho_universal(archs), "libmodel.dylib").format is Format.EXECUTABLE


def test_a_few_fields_that_fit_the_graph_schema_are_not_a_graph_without_its_name() -> None:
    """Random float storages in torch checkpoints can parse as a field 10 or 15 of the graph
    schema; with no node naming a calculator that is no MediaPipe graph."""
    from hexscan.formats import protobufs
    from hexscan.parsers.protowire import iter_fields

    for head in (b"\x50\x01", b"\x7a\x02ab", b"\x50\x01\x0a\x04\x12\x02\x00\x01"):
        fields = list(iter_fields(head))
        assert not protobufs.mediapipe_only(head, fields), head
    real = b"\x0a\x1b\x12\x19TfLiteInferenceCalculator\x52\x05image"  # node + input_stream
    assert protobufs.mediapipe_only(real, list(iter_fields(real)))
