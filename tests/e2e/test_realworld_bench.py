"""bench/realworld.py end to end on a package archive built here: what it collects, what the
report says, and that --check fails while a MEDIUM+ finding remains (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
import io
import pickle
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("realworld_bench", REPO / "bench/realworld.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


class _Exec:
    """Pickled only, never loaded: the report must list it."""

    def __reduce__(self) -> tuple[object, ...]:
        return exec, ("raise SystemExit",)


def _wheel(path: Path, with_payload: bool) -> None:
    npy = io.BytesIO()
    np.save(npy, np.arange(6, dtype=np.float32))
    files = {
        "demo/__init__.py": b"",
        "demo/data/notes.txt": b"not a model",
        "demo/data/weights.npy": npy.getvalue(),
        "demo/data/offsets": pickle.dumps([0, 10, 20], protocol=4),  # found by content
        "demo/model/saved_model.pb": b"\x08\x01",
        "demo/model/variables/variables.data-00000-of-00001": b"\x00" * 16,
    }
    if with_payload:
        files["demo/data/evil.pkl"] = pickle.dumps(_Exec(), protocol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("with_payload", [True, False], ids=["payload", "clean"])
def test_collect_scan_report_and_check(bench: ModuleType, tmp_path: Path,
                                       with_payload: bool) -> None:
    work = tmp_path / "out" / "realworld"
    _wheel(work / "cache" / "demo-1.0" / "demo-1.0-py3-none-any.whl", with_payload)
    packages = tmp_path / "packages.toml"
    packages.write_text('[[package]]\nname = "demo"\nversion = "1.0"\nkind = "wheel"\n')
    code = bench.main(["--no-download", "--check", "--workdir", str(work),
                       "--packages", str(packages)])
    collected = sorted(p.relative_to(work / "files" / "demo-1.0").as_posix()
                       for p in (work / "files").rglob("*") if p.is_file())
    expected = ["demo/data/offsets", "demo/data/weights.npy", "demo/model/saved_model.pb",
                "demo/model/variables/variables.data-00000-of-00001"]
    assert collected == sorted(expected + (["demo/data/evil.pkl"] if with_payload else []))
    report = (tmp_path / "out" / "realworld.md").read_text()
    assert "| demo-1.0 |" in report and "| numpy-npy |" in report
    if with_payload:
        assert code == 1
        assert "| demo-1.0/demo/data/evil.pkl |  | HEX-PKL-001 | CRITICAL |" in report
    else:
        assert code == 0
        assert "## MEDIUM+ findings\n\nNone." in report
