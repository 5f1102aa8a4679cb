"""hex never executes what it scans: every bypass sample, armed with a payload that would create
a canary file, is scanned and the canary never appears.

The samples are those of the regression suite (``regression/samples.py``) built with
``canary_payload``: shell payloads run ``echo x > CANARY``, Python payloads
``open(CANARY, 'w')``. A positive control first proves the payload is live: a plain
``pickle.load`` of one sample in a throw-away subprocess does create the canary (that
subprocess is the test's, never hex's), which is then removed before hex runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_hex
from regression.samples import build_catalogue, canary_payload

_LOAD_ONE = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"


@pytest.fixture(scope="module")
def armed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(samples root, canary path, a scratch cwd) with every sample armed."""
    base = tmp_path_factory.mktemp("canary")
    root, cwd = base / "samples", base / "cwd"
    root.mkdir()
    cwd.mkdir()
    canary = base / "CANARY"
    build_catalogue(root, canary_payload(canary))
    return root, canary, cwd


def test_the_canary_payload_is_live(armed: tuple[Path, Path, Path]) -> None:
    """Control: loading a sample with pickle (in a separate process) does create the canary,
    so its absence after the scan means something."""
    root, canary, cwd = armed
    sample = root / "d2_disguised_raw_pickle" / "model.bin"
    subprocess.run([sys.executable, "-c", _LOAD_ONE, str(sample)],  # noqa: S603 - the control
                   cwd=cwd, check=True, capture_output=True, timeout=60)
    assert canary.exists()
    canary.unlink()


def test_scanning_every_armed_sample_never_creates_the_canary(
        armed: tuple[Path, Path, Path]) -> None:
    root, canary, cwd = armed
    assert not canary.exists()
    samples = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(samples) > 100
    for workers in ("2", "0"):  # worker processes, and in-process without isolation
        run = run_hex("scan", str(root), "--json", "--workers", workers, cwd=cwd)
        assert run.code == 1, run.stderr
        assert run.json()["summary"]["critical"] > 100
        assert not canary.exists(), f"a scan with --workers {workers} ran a payload"
        assert not any(p.name == "CANARY" for p in cwd.rglob("*"))
