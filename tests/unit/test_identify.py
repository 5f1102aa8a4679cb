"""identify() and the pipeline's zip refinement on real files of every supported format.

The samples are built by the real libraries (``tests/fixtures/formats.py``); the tests
read their bytes the way the pipeline does (head, size, tail) and never load them.
"""

from __future__ import annotations

import io
import pickle
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from fixtures.formats import FormatCorpus, darknet_weights_bytes, sentencepiece_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hexscan.engine.walk import Task, WorkerSettings, scan_task
from hexscan.formats.identify import HEAD_SIZE, TAIL_SIZE, Identification, identify
from hexscan.formats.kinds import Format
from hexscan.formats.signatures import classify_zip
from hexscan.model.report import TaskResult
from hexscan.model.severity import Severity
from hexscan.scanners.registry import load_scanners

MISMATCH = "HEX-FMT-001"
ZIP_LAYOUTS = {Format.PYTORCH_ZIP, Format.TORCHSCRIPT, Format.NUMPY_NPZ, Format.KERAS_V3}
PICKLE_FAMILY = {Format.PICKLE, Format.JOBLIB, Format.PYTORCH_LEGACY}

#: Every format the brief requires a real sample of (the fixture must not drop one).
REQUIRED = {
    Format.PICKLE, Format.PYTORCH_ZIP, Format.PYTORCH_LEGACY, Format.TORCHSCRIPT,
    Format.JOBLIB, Format.NUMPY, Format.NUMPY_NPZ, Format.SAFETENSORS, Format.ONNX,
    Format.KERAS_H5, Format.HDF5, Format.KERAS_V3, Format.TF_SAVEDMODEL, Format.TF_GRAPHDEF,
    Format.TF_CHECKPOINT_INDEX, Format.TF_CHECKPOINT_DATA, Format.COREML,
    Format.COREML_MANIFEST, Format.CAFFE_MODEL, Format.CAFFE_PROTOTXT,
    Format.DARKNET_WEIGHTS, Format.DARKNET_CFG, Format.GGUF, Format.GGML,
    Format.SENTENCEPIECE, Format.XGBOOST, Format.LIGHTGBM, Format.ZIP, Format.TAR,
    Format.GZIP, Format.BZIP2, Format.XZ, Format.ZLIB, Format.SEVEN_ZIP, Format.MODEL_CARD,
    Format.MODEL_CONFIG, Format.TOKENIZER_CONFIG, Format.REQUIREMENTS, Format.LICENSE,
    Format.DEPENDENCY_MANIFEST, Format.CHAT_TEMPLATE,
}


def ident(data: bytes, name: str, parent: Format | None = None) -> Identification:
    """identify() on bytes, reading them as the pipeline does (bounded head and tail)."""
    return identify(name, data[:HEAD_SIZE], len(data), data[-TAIL_SIZE:], parent)


def scan(path: Path) -> TaskResult:
    """The real per-file pipeline (identify, refine zip layouts, scanners, walk), in-process."""
    return scan_task(Task(str(path), path.name), WorkerSettings(), load_scanners())


def top_format(result: TaskResult) -> str:
    return next(f.format for f in result.files if f.member is None)


def mismatches(result: TaskResult) -> list[Severity]:
    return [f.severity or f.rule.severity for f in result.findings
            if f.rule.id == MISMATCH and f.member is None]


def zip_names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()


# --------------------------------------------------------------------------- every format

def test_fixture_covers_every_required_format(format_corpus: FormatCorpus) -> None:
    assert REQUIRED - set(format_corpus.expected.values()) == set()


def test_fixture_has_a_real_tflite_model(format_corpus: FormatCorpus) -> None:
    """TFLite is built with the ``tflite`` schema package; skipped (visibly) without it."""
    pytest.importorskip("tflite")
    assert Format.TFLITE in format_corpus.expected.values()


def test_identify_by_content_and_name(format_corpus: FormatCorpus) -> None:
    """identify() alone: zip layouts are refined later, so they read as plain zip here
    (and their mismatch flag is only final after the refinement)."""
    wrong = {}
    for rel, fmt in format_corpus.expected.items():
        got = ident(format_corpus.path(rel).read_bytes(), rel)
        if fmt in ZIP_LAYOUTS:
            fmt = Format.ZIP
        elif got.mismatch:
            wrong[rel] = "mismatch"
        if got.format is not fmt:
            wrong[rel] = got.format.value
    assert wrong == {}


def test_zip_layouts_refined_by_classify_zip(format_corpus: FormatCorpus) -> None:
    zips = {rel: fmt for rel, fmt in format_corpus.expected.items()
            if fmt in ZIP_LAYOUTS | {Format.ZIP}}
    assert len(zips) >= 8
    for rel, fmt in zips.items():
        assert classify_zip(zip_names(format_corpus.path(rel).read_bytes())) is fmt, rel


def test_pipeline_reports_every_format_without_mismatch(format_corpus: FormatCorpus) -> None:
    wrong = {}
    for rel, fmt in format_corpus.expected.items():
        result = scan(format_corpus.path(rel))
        if top_format(result) != fmt.value or mismatches(result) or result.errors:
            wrong[rel] = (top_format(result), mismatches(result), result.errors)
    assert wrong == {}


def test_pipeline_lists_container_members(format_corpus: FormatCorpus) -> None:
    for rel, members in format_corpus.members.items():
        listed = {f.member: f.format for f in scan(format_corpus.path(rel)).files}
        for member, fmt in members.items():
            assert listed.get(member) == fmt.value, (rel, member, listed)


def test_joblib_lz4_only_with_the_lz4_package(tmp_path: Path) -> None:
    lz4 = pytest.importorskip("lz4")
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib.lz4"
    joblib.dump({"a": 1}, path, compress=("lz4", 3))
    assert lz4 and ident(path.read_bytes(), path.name).format is Format.LZ4


# --------------------------------------------------------------------------- mismatches

PNG = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
       + struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0) + b"\x00" * 4
       + struct.pack(">I", 10) + b"IDAT" + zlib.compress(b"\x00\x00") + b"\x00" * 4
       + b"\x00\x00\x00\x00IEND\xaeB`\x82")

#: (sample, new name, content format hex must report, severity of HEX-FMT-001)
DISGUISES = [
    # plain data (protocol 4 writes bytes without a call): a mismatch, but runs no code
    ("pickle/proto4.pkl", "model.safetensors", Format.PICKLE, Severity.LOW),
    ("pickle/proto2.pkl", "model.safetensors", Format.PICKLE, Severity.MEDIUM),  # _codecs
    ("pickle/proto0.pkl", "config.json", Format.PICKLE, Severity.MEDIUM),
    ("pickle/proto1.pkl", "README.md", Format.PICKLE, Severity.MEDIUM),
    ("pickle/proto2.pkl", "weights.npy", Format.PICKLE, Severity.LOW),  # np.load reads pickles
    ("torch/model.pt", "model.safetensors", Format.PYTORCH_ZIP, Severity.MEDIUM),
    ("torch/legacy.pt", "model.onnx", Format.PYTORCH_LEGACY, Severity.MEDIUM),
    ("joblib/model.joblib", "model.gguf", Format.JOBLIB, Severity.MEDIUM),
    ("st/model.safetensors", "model.pkl", Format.SAFETENSORS, Severity.LOW),
    ("onnx/model.onnx", "model.h5", Format.ONNX, Severity.LOW),
    ("onnx/model.onnx", "graph.pb", Format.ONNX, Severity.LOW),
    ("keras/model.h5", "model.onnx", Format.KERAS_H5, Severity.LOW),
    ("gguf/model.gguf", "model.safetensors", Format.GGUF, Severity.LOW),
    ("gguf/ggml-model-q4_0.bin", "model.onnx", Format.GGML, Severity.LOW),
    ("numpy/arrays.npz", "data.npy", Format.NUMPY_NPZ, Severity.LOW),
    ("containers/bundle.zip", "notes.md", Format.ZIP, Severity.LOW),
    ("text/README.md", "model.pkl", Format.UNKNOWN, Severity.LOW),
]


@pytest.mark.parametrize(("sample", "name", "content", "severity"), DISGUISES,
                         ids=[f"{s.split('/')[-1]}->{n}" for s, n, _, _ in DISGUISES])
def test_disguised_file_is_reported(format_corpus: FormatCorpus, tmp_path: Path, sample: str,
                                    name: str, content: Format, severity: Severity) -> None:
    path = tmp_path / name
    shutil.copyfile(format_corpus.path(sample), path)
    result = scan(path)
    assert top_format(result) == content.value
    assert mismatches(result) == [severity]


def test_png_named_pt_is_a_low_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "bad_pytorch.pt"
    path.write_bytes(PNG)
    result = scan(path)
    assert top_format(result) == Format.UNKNOWN.value
    assert mismatches(result) == [Severity.LOW]


#: (sample, legitimate other name, format): loaders accept these, so no mismatch.
LEGIT = [
    ("pickle/proto2.pkl", "model.pt", Format.PICKLE),
    ("pickle/proto0.pkl", "pytorch_model.bin", Format.PICKLE),
    ("pickle/proto4.pkl", "model.pth", Format.PICKLE),
    ("pickle/proto5.pkl", "tokenizer.model", Format.PICKLE),
    ("pickle/proto3.pkl", "model.joblib", Format.JOBLIB),
    ("joblib/gzipped.joblib", "model.joblib", Format.GZIP),
    ("joblib/model_lzma.joblib.lzma", "model.joblib", Format.XZ),
    ("joblib/model_zlib.joblib.z", "model.pkl", Format.ZLIB),
    ("torch/model.pt", "pytorch_model.bin", Format.PYTORCH_ZIP),
    ("torch/model.pt", "weights.pth", Format.PYTORCH_ZIP),
    ("torch/model.pt", "epoch=3.ckpt", Format.PYTORCH_ZIP),
    ("torch/legacy.pt", "pytorch_model.bin", Format.PYTORCH_LEGACY),
    ("torch/scripted.pt", "model.pth", Format.TORCHSCRIPT),
    ("keras/model.h5", "model.keras", Format.KERAS_H5),
    ("st/model.safetensors", "model.bin", Format.SAFETENSORS),
    ("gguf/ggml-model-q4_0.bin", "model.ggml", Format.GGML),
    ("containers/bundle.zip", "model.pkl", Format.ZIP),
]


@pytest.mark.parametrize(("sample", "name", "fmt"), LEGIT,
                         ids=[f"{s.split('/')[-1]}->{n}" for s, n, _ in LEGIT])
def test_legitimate_names_are_not_mismatches(format_corpus: FormatCorpus, tmp_path: Path,
                                             sample: str, name: str, fmt: Format) -> None:
    path = tmp_path / name
    shutil.copyfile(format_corpus.path(sample), path)
    result = scan(path)
    assert (top_format(result), mismatches(result)) == (fmt.value, [])


# --------------------------------------------------------------------------- pickles vs text

@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("name", ["data.pkl", "blob", "weights.bin", "notes.txt"])
def test_every_protocol_is_a_pickle_whatever_its_name(proto: int, name: str) -> None:
    data = pickle.dumps({"k": [1, 2.5, "x", None, (True,)]}, protocol=proto)
    assert ident(data, name).format is Format.PICKLE


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(value=_values, proto=st.integers(0, 5),
       name=st.sampled_from(["x.pkl", "x", "x.txt", "README.md", "x.json"]))
def test_any_pickled_value_is_a_pickle(value: object, proto: int, name: str) -> None:
    data = pickle.dumps(value, protocol=proto)
    # A pickle that mentions joblib's module is read as joblib: still the pickle family.
    want = Format.JOBLIB if b"joblib.numpy_pickle" in data else Format.PICKLE
    assert ident(data, name).format is want


def test_pickle_mentioning_joblib_reads_as_joblib() -> None:
    assert ident(pickle.dumps(b"joblib.numpy_pickle", protocol=0), "x.pkl").format is \
        Format.JOBLIB


#: Texts that start with pickle opcodes: GLOBAL 'c', MARK '(', INT 'I', NONE 'N', STRING 'S'.
TRICKY_TEXTS = [
    b"cd build\nmake install\n(then run the tests)\n",
    b"cython\nnumpy\nscipy\n",
    b"click\nrich\n(optional) tqdm\n",
    b"cat\nmeow\n(dog) woof\n",
    b"(base) $ pip install hexscan\n",
    b"I love this model.\nIt works.\n",
    b"I0\nis the answer\n",
    b"N.B. weights are in fp16.\n",
    b"S'quoted' is how pickles write strings\n",
    b"Vacation notes\n...and more\n",
    b"c\n",
    b"l\n",
    b"(\n)\n",
    b"}\n",
    b"]\n",
    b"N",
    b"\n",
    b"",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
@pytest.mark.parametrize("name", ["README.md", "requirements.txt", "notes.txt", "LICENSE",
                                  "blob"])
def test_tricky_text_is_not_a_pickle(text: bytes, name: str) -> None:
    assert ident(text, name).format not in PICKLE_FAMILY


_word = st.text(st.characters(codec="utf-8", categories=("L", "N", "P")), min_size=1,
                max_size=10)
_line = st.lists(_word, min_size=2, max_size=8).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_line, min_size=1, max_size=6),
       name=st.sampled_from(["README.md", "notes.txt", "config.json", "x"]))
def test_prose_is_never_a_pickle(lines: list[str], name: str) -> None:
    data = "\n".join(lines).encode()
    assert ident(data, name).format not in PICKLE_FAMILY


def test_text_files_keep_their_text_formats(format_corpus: FormatCorpus) -> None:
    """A text sample is read as text under a generic name, never as a model format."""
    for rel in format_corpus.expected:
        if rel.startswith("text/"):
            assert ident(format_corpus.path(rel).read_bytes(), "notes.txt").format is \
                Format.TEXT, rel


# --------------------------------------------------------------------------- corner cases

# An import, a mark, then a BINUNICODE whose length runs past the end (picklescan's
# broken_model.pkl shape): the unpickler imports before it fails.
BROKEN = b"cbuiltins\nprint\n(X>\n f = 1; print(f)\n"


@pytest.mark.parametrize(("name", "fmt"), [
    ("model.pkl", Format.PICKLE), ("model.pt", Format.PICKLE),
    ("pytorch_model.bin", Format.PICKLE), ("README.md", Format.MODEL_CARD),
])
def test_short_broken_pickle_counts_only_under_pickle_names(name: str, fmt: Format) -> None:
    assert ident(BROKEN, name).format is fmt


def test_global_with_invalid_name_is_not_a_pickle() -> None:
    """picklescan's not_a_pickle.bin: a GLOBAL whose name is not valid UTF-8, then EOF."""
    assert ident(b"cmod\n\xf8\n", "not_a_pickle.bin").format is Format.UNKNOWN


def test_long_corrupt_protocol0_pickle_is_a_pickle_anywhere() -> None:
    """Valid opcodes for a dozen steps, then a malformed STRING: the unpickler ran them."""
    data = (b"cbuiltins\nprint\n(cbuiltins\nstr\n(cbuiltins\nrepr\n(S'x'\ntRtR((S{}\ntR()R.")
    assert ident(data, "payload.dat").format is Format.PICKLE


class _ComputedMagic:
    """Reduces to int('0x1950a86a20f9469cfc6c', 16): the legacy magic, computed."""

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return int, ("1950a86a20f9469cfc6c", 16)


def test_legacy_torch_with_computed_magic(format_corpus: FormatCorpus) -> None:
    legacy = format_corpus.path("torch/legacy.pt").read_bytes()
    magic_pickle = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    assert legacy.startswith(magic_pickle)
    data = pickle.dumps(_ComputedMagic(), protocol=2) + legacy[len(magic_pickle):]
    assert not data.startswith(magic_pickle)
    assert ident(data, "model.pt").format is Format.PYTORCH_LEGACY
    # Without the protocol-version pickle after it, it is just a pickle.
    assert ident(pickle.dumps(_ComputedMagic(), protocol=2), "x.pt").format is Format.PICKLE


def test_lzma_alone_needs_a_plausible_dictionary_size() -> None:
    assert ident(b"]\x00\x00\x40\x00" + b"\xff" * 8 + b"\x00" * 8, "x.bin").format is Format.XZ
    assert ident(b"]\x00\x00\x80\x01" + b"\xff" * 8 + b"\x00" * 8, "x.bin").format is Format.XZ
    assert ident(b"]\x07\x01\x40\x00" + b"\xff" * 8 + b"\x00" * 8, "x.bin").format is not \
        Format.XZ


@pytest.mark.parametrize(("names", "fmt"), [
    (["archive/data.pkl", "archive/version", "archive/data/0"], Format.PYTORCH_ZIP),
    (["version", "data.pkl"], Format.PYTORCH_ZIP),  # modelaudit's flat torch-zip lookalike
    (["data.pkl"], Format.ZIP),  # picklescan's malicious1.zip: a zip holding a pickle
    (["m/data.pkl", "m/code/__torch__/m.py", "m/constants.pkl"], Format.TORCHSCRIPT),
    (["config.json", "metadata.json", "model.weights.h5"], Format.KERAS_V3),
    (["a.npy", "b.npy"], Format.NUMPY_NPZ),
    (["schema.json"], Format.ZIP),
])
def test_classify_zip_layouts(names: list[str], fmt: Format) -> None:
    assert classify_zip(names) is fmt


def test_sentencepiece_with_a_big_vocab_is_known_by_content() -> None:
    """The pieces fill the head of a real model: field 2 is not within the first 64 KiB."""
    data = sentencepiece_bytes(6000)
    assert len(data) > HEAD_SIZE
    assert ident(data, "tokenizer").format is Format.SENTENCEPIECE


def test_darknet_weights_need_the_darknet_name() -> None:
    """No magic: a .weights header is recognised only where the name expects one."""
    data = darknet_weights_bytes()
    assert ident(data, "yolov3.weights").format is Format.DARKNET_WEIGHTS
    assert ident(data, "blob").format is Format.UNKNOWN


def test_darknet_cfg_after_comments() -> None:
    cfg = b"# YOLO tiny\n; trained 2020\n\n[net]\nbatch=1\n"
    assert ident(cfg, "yolov3-tiny.cfg").format is Format.DARKNET_CFG
    assert ident(b"[metadata]\nname = x\n", "tox.cfg").format is Format.TEXT
    assert ident(b"[metadata]\nname = x\n", "setup.cfg").format is Format.DEPENDENCY_MANIFEST


def test_storage_members_of_torch_zips_are_tensor_data() -> None:
    raw = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    got = ident(raw, "archive/data/0", parent=Format.PYTORCH_ZIP)
    assert (got.format, got.mismatch) == (Format.TENSOR_DATA, False)
