"""False alarms the real-world benchmark (``bench/realworld.py``) found, kept as fixed cases.

numpy's own test data ships ``py2-np0-objarr.npy``: an object array pickled through the numpy
< 1.0 name ``numpy.core._internal._reconstruct(subtype, shape, dtype)``, which is
``ndarray.__new__(subtype, ...)``. It is a benign rebuild, but only while ``subtype`` is.
"""

from __future__ import annotations

from pathlib import Path

from conftest import run_hex

from regression.pickle_asm import call, glob, pkl, tup, ustr


def _np0(subtype: bytes) -> bytes:
    return pkl(call(glob("numpy.core._internal", "_reconstruct"), subtype, tup(), ustr("b")))


def _worst(path: Path) -> str | None:
    order = ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    found = [r["severity"] for r in run_hex("scan", str(path), "--json").json()["results"]]
    return max(found, key=order.index) if found else None


def test_numpy0_array_rebuild_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "np0.pkl"
    path.write_bytes(_np0(glob("numpy", "ndarray")))
    assert _worst(path) in (None, "INFO", "LOW")


def test_numpy0_rebuild_of_a_dangerous_subtype_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "np0.pkl"
    path.write_bytes(_np0(glob("os", "system")))
    assert _worst(path) == "CRITICAL"
