"""``hex scan DIR --json`` as a user runs it: the format of every file and member.

The scans run in a subprocess through ``run_hex`` (which validates the JSON report against
the shipped schema). The peer corpus test reads those files as bytes only, through hex.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex
from fixtures.formats import FormatCorpus

from hexscan.formats.kinds import Format

MISMATCH = "HEX-FMT-001"


@pytest.fixture(scope="module")
def corpus_report(format_corpus: FormatCorpus, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[int, dict[str, Any]]:
    """One scan of the whole format corpus."""
    run = run_hex("scan", str(format_corpus.root), "--json",
                  cwd=tmp_path_factory.mktemp("cwd"))
    return run.code, run.json()


def _entries(report: dict[str, Any], root: Path) -> dict[tuple[str, str | None], str]:
    """(path relative to root, member) -> format, from ``files[]``."""
    out = {}
    for entry in report["files"]:
        rel = Path(entry["path"]).relative_to(root).as_posix()
        assert (rel, entry["member"]) not in out, f"listed twice: {rel} {entry['member']}"
        out[rel, entry["member"]] = entry["format"]
    return out


def test_clean_corpus_exits_zero_and_complete(corpus_report: tuple[int, dict[str, Any]]
                                              ) -> None:
    code, report = corpus_report
    assert code == 0, report["errors"]
    assert report["complete"] is True
    assert report["errors"] == []
    assert [r for r in report["results"] if r["rule_id"] == MISMATCH] == []


def test_every_file_reported_with_its_format(format_corpus: FormatCorpus,
                                             corpus_report: tuple[int, dict[str, Any]]) -> None:
    entries = _entries(corpus_report[1], format_corpus.root)
    got = {rel: entries.get((rel, None)) for rel in format_corpus.expected}
    assert got == {rel: fmt.value for rel, fmt in format_corpus.expected.items()}


def test_no_file_is_silently_dropped(format_corpus: FormatCorpus,
                                     corpus_report: tuple[int, dict[str, Any]]) -> None:
    on_disk = {p.relative_to(format_corpus.root).as_posix()
               for p in format_corpus.root.rglob("*") if p.is_file()}
    top = {rel for rel, member in _entries(corpus_report[1], format_corpus.root)
           if member is None}
    assert top == on_disk
    assert corpus_report[1]["files_scanned"] >= len(on_disk)


def test_container_members_are_listed(format_corpus: FormatCorpus,
                                      corpus_report: tuple[int, dict[str, Any]]) -> None:
    entries = _entries(corpus_report[1], format_corpus.root)
    for rel, members in format_corpus.members.items():
        for member, fmt in members.items():
            assert entries.get((rel, member)) == fmt.value, (rel, member)
    # Nested containers chain their members with "!/".
    assert entries["containers/bundle.zip", "inner/model.pt!/archive/data.pkl"] == "pickle"
    assert entries["containers/bundle.tar.gz", "bundle.tar!/model/weights.pkl"] == "pickle"
    # Every member of a torch zip is listed, not only data.pkl.
    torch_members = {m for r, m in entries if r == "torch/model.pt" and m}
    assert {"model/data.pkl", "model/version", "model/data/0", "model/data/1"} <= torch_members


def test_disguised_files_fail_at_medium(format_corpus: FormatCorpus, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    shutil.copyfile(format_corpus.path("pickle/proto0.pkl"), tmp_path / "d/model.safetensors")
    shutil.copyfile(format_corpus.path("onnx/model.onnx"), tmp_path / "d/model.h5")
    run = run_hex("scan", str(tmp_path / "d"), "--json", "--fail-on", "medium", cwd=tmp_path)
    report = run.json()
    found = {(Path(r["file_path"]).name, r["severity"]) for r in report["results"]
             if r["rule_id"] == MISMATCH}
    assert found == {("model.safetensors", "MEDIUM"), ("model.h5", "LOW")}
    assert run.code == 1
    formats = {Path(f["path"]).name: f["format"] for f in report["files"] if not f["member"]}
    assert formats == {"model.safetensors": "pickle", "model.h5": "onnx"}


# --------------------------------------------------------------------------- peer corpus

#: The manifest's ``format`` -> the hex formats consistent with it.
CONSISTENT: dict[str, set[str]] = {
    "pickle": {"pickle", "joblib", "pytorch-legacy"},
    "pytorch": {"pytorch-zip", "pytorch-legacy", "torchscript"},
    "numpy": {"numpy-npy", "numpy-npz"},
    "joblib": {"joblib", "pickle", "zlib", "gzip", "bzip2", "xz", "lz4"},
    "keras-h5": {"keras-h5"},
    "keras-v3": {"keras-v3"},
    "savedmodel": {"tf-savedmodel"},
    "onnx": {"onnx"},
    "gguf": {"gguf"},
    "safetensors": {"safetensors"},
    "zip": {"zip"},
    "tar": {"tar"},
    "7z": {"7z"},
}

#: Formats that are models (or their weights); an 'other' file must be none of them.
MODEL_FORMATS = {
    Format.PICKLE, Format.PYTORCH_ZIP, Format.PYTORCH_LEGACY, Format.TORCHSCRIPT,
    Format.JOBLIB, Format.NUMPY, Format.NUMPY_NPZ, Format.TENSOR_DATA, Format.SAFETENSORS,
    Format.ONNX, Format.KERAS_H5, Format.HDF5, Format.KERAS_V3, Format.TF_SAVEDMODEL,
    Format.TF_GRAPHDEF, Format.TF_CHECKPOINT_INDEX, Format.TF_CHECKPOINT_DATA,
    Format.TFLITE, Format.COREML, Format.CAFFE_MODEL, Format.DARKNET_WEIGHTS, Format.GGUF,
    Format.GGML, Format.SENTENCEPIECE, Format.XGBOOST, Format.LIGHTGBM,
}

#: Justified disagreements: manifest path -> why hex's format is right anyway. None today.
#: Before the identification fixes there were six: modelaudit's flat torch-zip lookalikes
#: (pytorch/malicious_eval.pt, pytorch/safe_model.pt) read as zip; rce_payload.pkl, rce.pt
#: and broken_model.pkl (corrupt protocol-0 pickles) read as unknown; and
#: pytorch_magic_bypass.pt (legacy layout, computed magic) read as a plain pickle.
#: Judged consistent without an entry: pipeline.skops is a zip (hex has no skops format,
#: the manifest says zip too); bad_pytorch.pt (PNG) and not_a_pickle.bin read as unknown.
EXCEPTIONS: dict[str, str] = {}


def _consistent(manifest_format: str, got: str | None) -> bool:
    if got is None:
        return False
    if manifest_format == "other":
        return got not in {f.value for f in MODEL_FORMATS}
    return got in CONSISTENT[manifest_format]


def test_peer_corpus_formats(corpus: Path, manifest: list[dict[str, Any]],
                             tmp_path: Path) -> None:
    run = run_hex("scan", str(corpus), "--json", cwd=tmp_path)
    report = run.json()
    assert run.code in (0, 1, 3), run.stderr
    top = {Path(f["path"]).relative_to(corpus).as_posix(): f["format"]
           for f in report["files"] if f["member"] is None}
    disagreements = {
        entry["path"]: (entry["format"], top.get(entry["path"]))
        for entry in manifest
        if entry["path"] not in EXCEPTIONS and not _consistent(entry["format"],
                                                               top.get(entry["path"]))
    }
    assert disagreements == {}, json.dumps(disagreements, indent=1)
    assert set(EXCEPTIONS) <= {entry["path"] for entry in manifest}
