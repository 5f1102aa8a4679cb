"""Container and wrapper bypasses reported against hex: each sample is a real file (numpy,
joblib, torch, zipfile, lzma, tarfile write it; a header field is patched only where no
writer produces the quirk). One ``hex scan`` of the set; every payload sample must be
reported at HIGH or above, where the loader reads it, and every benign twin stay below MEDIUM.
Nothing here loads a sample (tests/differential proves what the loaders do)."""

from __future__ import annotations

import io
import lzma
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

from regression.samples import Reduce

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
joblib = pytest.importorskip("joblib")

RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFO": 0}


EVIL = Reduce(os.system, "echo owned")


def _npy(descr: object, body: bytes) -> bytes:
    from differential.families.containers_numpy import npy_bytes

    return npy_bytes(descr, body)


def _joblib(obj: object, compress: object = 0) -> bytes:
    out = io.BytesIO()
    joblib.dump(obj, out, compress=compress)
    return out.getvalue()


def _torch(obj: object) -> bytes:
    out = io.BytesIO()
    torch.save(obj, out)
    return out.getvalue()


def _struct_object(item: object) -> Any:
    arr = np.zeros(2, dtype=[("w", "<f4"), ("a", "O")])
    arr["a"][0] = item
    return arr


def _zfile(data: bytes) -> bytes:
    from joblib.numpy_pickle_compat import write_zfile

    out = io.BytesIO()
    write_zfile(out, data, 3)
    return out.getvalue()


def _alone(data: bytes, dict_size: int) -> bytes:
    packed = lzma.compress(data, format=lzma.FORMAT_ALONE)
    return packed[:1] + dict_size.to_bytes(4, "little") + packed[5:]


def _nested_zip() -> bytes:
    from torch.storage import _load_from_bytes

    return pickle.dumps({"w": Reduce(_load_from_bytes, _torch({"m": EVIL}))}, 2)


def _sidecar(name: str) -> bytes:
    from joblib.numpy_pickle_compat import NDArrayWrapper

    return pickle.dumps({"w": NDArrayWrapper(name, np.ndarray)}, 2)


def _samples() -> dict[str, tuple[Callable[[], bytes], bool]]:
    from differential.families.containers_torch_legacy import legacy_tar
    from differential.families.containers_zip import two_directories

    benign_zip = _torch({"m": {"w": [1.0]}, "pad": ""})
    p4 = pickle.dumps(EVIL, 4)
    return {
        "npy_T.npy": (lambda: _npy("T", p4), True),
        "npy_object_alias.npy": (lambda: _npy([("x", "object")], p4), True),
        "npy_comma.npy": (lambda: _npy("i4,(2,)O", p4), True),
        "npy_benign_field_named_O.npy": (lambda: _npy([("O", "<f4")], b"\0" * 4), False),
        "joblib_struct_object.joblib": (lambda: _joblib(_struct_object(EVIL)), True),
        "joblib_struct_object_benign.joblib": (lambda: _joblib(_struct_object(None)), False),
        "joblib_zfile.pkl": (lambda: _zfile(pickle.dumps(EVIL, 2)), True),
        "joblib_zfile_benign.pkl": (lambda: _zfile(pickle.dumps({"a": 1}, 2)), False),
        "joblib_lzma_dict_1k.joblib": (lambda: _alone(p4, 1024), True),
        "joblib_lzma_dict_2g.joblib": (lambda: _alone(p4, 1 << 31), True),
        "torch_two_directories.pt": (lambda: two_directories(
            _torch({"m": EVIL, "pad": "p" * 4096}), benign_zip), True),
        "torch_junk_signature.pt": (lambda: _torch({"m": EVIL}) + b"PK\x05\x06", True),
        "torch_junk_signature_benign.pt": (lambda: benign_zip + b"PK\x05\x06", False),
        "torch_legacy_tar_storage_args.pt": (
            lambda: legacy_tar("storage_args_1", EVIL), True),
        "torch_legacy_tar_decoy_benign.pt": (
            lambda: legacy_tar(None, None, decoy=True), False),
        "nested_torch_zip.pkl": (_nested_zip, True),
        "joblib_sidecar_parent.pkl": (lambda: _sidecar("../other/x_01.npy"), True),
        "joblib_sidecar_absolute.pkl": (lambda: _sidecar("/srv/uploads/x_01.npy"), True),
        "joblib_sidecar_benign.pkl": (lambda: _sidecar("joblib_sidecar_benign.pkl_01.npy"),
                                      False),
        "tensor_pickle_benign.pkl": (lambda: pickle.dumps({"t": torch.ones(3)}, 2), False),
    }


@pytest.fixture(scope="session")
def worst(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, list[Any]]]:
    root = tmp_path_factory.mktemp("containers")
    for name, (make, _) in _samples().items():
        (root / name).write_bytes(make())
    run = run_hex("scan", str(root), "--json", "--workers", "2", cwd=root)
    report = run.json()
    out: dict[str, tuple[str, list[Any]]] = {}
    for finding in report["results"]:
        name = Path(finding["file_path"]).name
        sev, found = out.get(name, ("INFO", []))
        found.append(finding)
        out[name] = (finding["severity"] if RANK[finding["severity"]] > RANK[sev] else sev,
                     found)
    return out


@pytest.mark.parametrize("name", sorted(n for n, (_, bad) in _samples().items() if bad))
def test_payload_behind_the_wrapper_is_caught(worst: dict[str, Any], name: str) -> None:
    severity, found = worst.get(name, ("none", []))
    assert RANK.get(severity, -1) >= RANK["HIGH"], (severity, [
        (f["severity"], f["description"][:100]) for f in found])


@pytest.mark.parametrize("name", sorted(n for n, (_, bad) in _samples().items() if not bad))
def test_benign_twin_stays_quiet(worst: dict[str, Any], name: str) -> None:
    severity, found = worst.get(name, ("INFO", []))
    assert RANK[severity] < RANK["MEDIUM"], [(f["severity"], f["description"][:100])
                                            for f in found]


def test_nested_checkpoint_findings_are_located_inside_the_outer_file(
        worst: dict[str, Any]) -> None:
    _, found = worst["nested_torch_zip.pkl"]
    members = {f["member"] for f in found if RANK[f["severity"]] >= RANK["HIGH"]}
    assert any(m and m.startswith("zip@") and m.endswith("data.pkl") for m in members), members


def test_zip_reader_disagreement_is_reported(worst: dict[str, Any]) -> None:
    _, found = worst["torch_two_directories.pt"]
    assert any(f["rule_id"] == "HEX-ARC-009" for f in found)
