"""No false alarms on ordinary pickles: the allowlist generator's catalogue, in every protocol.

The catalogue (``tools/policy/pickle_catalogue.py``) is the set of real objects the generated
allowlist was made from: stdlib values, NumPy arrays and random states, pandas frames, series and
every Index kind, SciPy sparse matrices and distributions, fitted scikit-learn estimators of every
family, PyTorch tensors, modules, optimizers and schedulers. A session fixture writes each with
``pickle.dumps`` in protocols 0-5, ``joblib.dump`` and ``torch.save`` as a user would, ``hex scan``
reads them once, and nothing may be reported at MEDIUM or above.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run_hex

sys.path.insert(0, str(REPO / "tools" / "policy"))
from pickle_catalogue import BUILDERS, TORCH_SAVE_ONLY  # noqa: E402

SERIOUS = ("CRITICAL", "HIGH", "MEDIUM")
KNOWN_LIMITS: dict[tuple[str, str], frozenset[str]] = {
    # plain pickle.dumps of a torch module stores every tensor as a nested torch.save archive;
    # past the machine's budget of nested pickles the analysis stops, reported as a limit
    ("torch", "modules-pickle"): frozenset({"limit"}),
    ("torch", "optimizer-state-pickle"): frozenset({"limit"}),
}
"""(library, label-writer prefix) -> the only finding kinds tolerated there, with the reason."""


def _write_all(root: Path, library: str, build: Callable[[], Iterator[tuple[str, Any]]]) -> int:
    written = 0
    for label, obj in build():
        plain = label not in TORCH_SAVE_ONLY
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1 if plain else 0):
            try:
                data = pickle.dumps(obj, protocol)
            except (TypeError, pickle.PicklingError, AttributeError):
                continue  # an object this protocol cannot write (the generator reports these)
            (root / f"{label}-pickle-p{protocol}.pkl").write_bytes(data)
            written += 1
        if library in ("numpy", "pandas", "scipy", "sklearn", "lightgbm"):
            import joblib

            joblib.dump(obj, root / f"{label}-joblib.joblib")
            written += 1
        if library == "torch":
            import torch

            torch.save(obj, root / f"{label}-torch-save.pt")
            written += 1
            if label not in TORCH_SAVE_ONLY:
                torch.save(obj, root / f"{label}-torch-legacy.pt",
                           _use_new_zipfile_serialization=False)
                written += 1
        if library == "pandas" and hasattr(obj, "to_pickle"):
            obj.to_pickle(root / f"{label}-to-pickle.pkl")
            written += 1
    return written


@pytest.fixture(scope="session")
def catalogue_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("catalogue")
    counts = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for library, build in BUILDERS.items():
            (root / library).mkdir()
            try:
                counts[library] = _write_all(root / library, library, build)
            except ImportError:
                counts[library] = 0
    run = run_hex("scan", str(root), "--json", "--workers", "2", cwd=root, timeout=900)
    assert run.code in (0, 1, 3), run.stderr
    return root, run.json()


def _serious(report: dict[str, Any], library: str) -> list[tuple[str, str, str]]:
    """(file name, finding kind, text) of every finding >= MEDIUM under the library's folder."""
    return [
        (os.path.basename(f["file_path"]), f.get("evidence", {}).get("kind", f["rule_id"]),
         f"{f['severity']} {f['description'][:200]}")
        for f in report["results"]
        if f["severity"] in SERIOUS and f"{os.sep}{library}{os.sep}" in f["file_path"]
    ]


def _tolerated(library: str, name: str, kind: str) -> bool:
    return any(name.startswith(prefix) and kind in kinds
               for (lib, prefix), kinds in KNOWN_LIMITS.items() if lib == library)


@pytest.mark.parametrize("library", sorted(BUILDERS))
def test_catalogue_pickles_raise_nothing_medium_or_above(
    catalogue_report: tuple[Path, dict[str, Any]], library: str
) -> None:
    root, report = catalogue_report
    files = list((root / library).iterdir())
    if not files:
        pytest.skip(f"{library} is not installed")
    assert len(files) >= 6  # every object in every protocol it supports, at least
    alarms = [a for a in _serious(report, library) if not _tolerated(library, a[0], a[1])]
    assert not alarms, "\n".join(map(str, alarms))


def test_every_catalogue_file_was_scanned(catalogue_report: tuple[Path, dict[str, Any]]) -> None:
    root, report = catalogue_report
    scanned = {os.path.realpath(f["path"]) for f in report["files"] if f["member"] is None}
    written = {os.path.realpath(p) for p in root.rglob("*") if p.is_file()}
    assert written <= scanned
    assert not [e for e in report["errors"] if e["kind"] in ("crash", "scanner-error")]
