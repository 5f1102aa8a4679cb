"""hex never deserialises what it scans: no loader call anywhere under src/."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
FORBIDDEN = re.compile(
    r"pickle\.loads?\(|torch\.load\(|joblib\.load\(|marshal\.loads\(|allow_pickle=True|"
    r"load_model\(|yaml\.load\(|yaml\.unsafe_load\(|\.extractall\(|dill\.loads?\(|"
    r"cloudpickle\.loads?\(|Unpickler\(")


#: Code and the data shipped beside it (policies, advisory text): a loader call written in a
#: data file is one copy-paste away from code, and readers of src/ cannot tell the two apart.
SCANNED_SUFFIXES = (".py", ".json", ".toml")


def test_no_deserialising_call_in_src() -> None:
    hits = [f"{path}:{n}: {line.strip()}"
            for path in sorted(SRC.rglob("*")) if path.suffix in SCANNED_SUFFIXES
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if FORBIDDEN.search(line) and "# noqa: hex-safe" not in line]
    assert not hits, "\n".join(hits)


def test_core_import_stays_light() -> None:
    """Importing the CLI and pipeline must not import torch, numpy or h5py."""
    import subprocess
    import sys

    code = ("import sys, hexscan.cli, hexscan.engine.pipeline, hexscan.report.registry; "
            "print(sorted(m for m in ('torch','numpy','h5py','onnx','tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                         check=True).stdout.strip()
    assert out == "[]"
