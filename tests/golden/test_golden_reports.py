"""Golden files: the exact SARIF and JUnit output of one small, deterministic scan.

The tree is built here: a benign safetensors file and a numpy array (written by their
libraries) and a malicious protocol-2 pickle written byte by byte. What changes from run
to run (scan id, timestamps, durations, the temporary path, hex's version) is replaced by
placeholders in :func:`normalise_sarif` / :func:`normalise_junit` before comparing.

A deliberate change of the output (a new field, a reworded rule) is accepted by
regenerating the files and reviewing the diff::

    HEX_REGEN_GOLDEN=1 python -m pytest -q tests/golden/test_golden_reports.py
    git diff tests/golden/
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

GOLDEN = Path(__file__).resolve().parent
REGEN = os.environ.get("HEX_REGEN_GOLDEN") == "1"

#: ``posix.system("echo pwned")`` as protocol 2 writes it: PROTO 2, GLOBAL, MARK,
#: BINUNICODE, TUPLE, REDUCE, STOP.
EVIL_PICKLE = (b"\x80\x02" + b"cposix\nsystem\n" + b"(" + b"X\x0a\x00\x00\x00echo pwned"
               + b"t" + b"R" + b".")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    root = tmp_path / "golden-tree"
    root.mkdir()
    save_file({"weight": np.arange(6, dtype=np.float32).reshape(2, 3)},
              str(root / "model.safetensors"), metadata={"format": "pt"})
    np.save(root / "bias.npy", np.array([0.5, -0.5], dtype=np.float32))
    (root / "evil.pkl").write_bytes(EVIL_PICKLE)
    return root


def scan(root: Path, tmp_path: Path, fmt: str) -> str:
    run = run_hex("scan", str(root), "--format", fmt, "--workers", "0", "--no-history",
                  env={"HEX_HOME": str(tmp_path / "home")})
    assert run.code == 1, run.stderr
    return run.stdout


def normalise_sarif(text: str, root: Path) -> str:
    """Placeholders for what differs between runs; everything else must match exactly."""
    log = json.loads(text)
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    driver["version"] = driver["semanticVersion"] = "{VERSION}"
    run["automationDetails"]["id"] = "hex/{SCAN_ID}"
    for invocation in run["invocations"]:
        invocation["startTimeUtc"] = invocation["endTimeUtc"] = "{TIME}"
    run["originalUriBaseIds"]["%SRCROOT%"]["uri"] = "file://{ROOT}/"
    props = run["properties"]
    props["scanId"], props["target"], props["durationSeconds"] = "{SCAN_ID}", "{ROOT}", 0
    return _replace_root(json.dumps(log, indent=2, ensure_ascii=False) + "\n", root)


def normalise_junit(text: str, root: Path) -> str:
    element = ET.fromstring(text)  # noqa: S314  (hex's own output)
    for node in [element, *element.iter("testsuite")]:
        node.set("time", "0")
        node.set("timestamp", "{TIME}")
    for prop in element.iter("property"):
        if prop.get("name") in {"scan_id", "version", "target"}:
            prop.set("value", f"{{{prop.get('name', '').upper()}}}")
    ET.indent(element)
    return _replace_root('<?xml version="1.0" encoding="UTF-8"?>\n'
                         + ET.tostring(element, encoding="unicode") + "\n", root)


def _replace_root(text: str, root: Path) -> str:
    """Any absolute path left (in evidence, say), as a path and as a file URI."""
    return text.replace(root.as_uri(), "file://{ROOT}").replace(str(root), "{ROOT}")


CASES: dict[str, tuple[str, Any]] = {
    "sarif": ("scan.sarif.json", normalise_sarif),
    "junit": ("scan.junit.xml", normalise_junit),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_output_matches_the_golden_file(fmt: str, tree: Path, tmp_path: Path) -> None:
    name, normalise = CASES[fmt]
    actual = normalise(scan(tree, tmp_path, fmt), tree)
    golden = GOLDEN / name
    if REGEN:
        golden.write_text(actual, encoding="utf-8")
        return
    if not golden.is_file():
        pytest.fail(f"{golden} is missing; create it with HEX_REGEN_GOLDEN=1")
    assert actual == golden.read_text(encoding="utf-8"), (
        f"{fmt} output differs from {golden}; if the change is intended, regenerate with "
        "HEX_REGEN_GOLDEN=1 and review the diff")


def test_normalisation_leaves_nothing_run_specific(tree: Path, tmp_path: Path) -> None:
    """Two scans of two copies of the tree normalise to the same text."""
    other = tmp_path / "copy" / "tree"
    shutil.copytree(tree, other)
    for name, normalise in CASES.values():
        fmt = "sarif" if name.endswith(".json") else "junit"
        assert normalise(scan(tree, tmp_path, fmt), tree) == \
            normalise(scan(other, tmp_path / "second", fmt), other)
