"""Darknet: .weights header and body, the weight count implied by the .cfg beside the file,
and .cfg sanity; readers are bounded under fuzzing."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures.models import fuzz, ids, scan_bytes, scan_path

from hexscan.formats.kinds import Format
from hexscan.model.severity import Severity
from hexscan.parsers import darknet as dk
from hexscan.scanners.darknet import DarknetScanner

CFG = """[net]
# tiny test network
batch=1
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=16
size=3
stride=1
pad=1
activation=leaky

[route]
layers=-1,-2

[convolutional]
filters=4
size=1
stride=1
pad=1
activation=linear

[upsample]
stride=2

[connected]
output=10
activation=linear
"""
#: Worked out by hand: conv(bn) 8+3*8+3*8*9, conv 16+8*16*9, conv 4+24*4,
#: connected 10+10*(32*32*4).
FLOATS = (8 + 24 + 216) + (16 + 1152) + (4 + 96) + (10 + 40960)


def weights(n: int = FLOATS, major: int = 0, minor: int = 2, seen: int = 64_000) -> bytes:
    """As darknet's save_weights: int32 major, minor, revision, size_t seen, float32s."""
    body = np.random.default_rng(0).normal(0, 0.05, n).astype("<f4").tobytes()
    return struct.pack("<iiiQ", major, minor, 0, seen) + body


def model_dir(tmp_path: Path, data: bytes, cfg: str = CFG, stem: str = "yolo") -> Path:
    (tmp_path / f"{stem}.cfg").write_text(cfg)
    path = tmp_path / f"{stem}.weights"
    path.write_bytes(data)
    return path


def test_cfg_weight_count() -> None:
    assert dk.weight_count(dk.parse_cfg(CFG)).floats == FLOATS


def test_matching_weights_and_cfg_are_clean(tmp_path: Path) -> None:
    result = scan_path(model_dir(tmp_path, weights()))
    assert result.findings == () and not result.errors
    assert ids(scan_path(tmp_path / "yolo.cfg").findings) == []


def test_appended_payload_is_reported_with_its_offset(tmp_path: Path) -> None:
    path = model_dir(tmp_path, weights() + b"#!/bin/sh\necho hex-test\n")
    found = [f for f in scan_path(path).findings if f.rule.id == "HEX-DRK-001"]
    (finding,) = found
    assert finding.effective_severity is Severity.MEDIUM
    assert finding.offset == 20 + 4 * FLOATS and finding.evidence["extra_bytes"] == 24


def test_short_weights_are_low(tmp_path: Path) -> None:
    (finding,) = scan_path(model_dir(tmp_path, weights(FLOATS - 100))).findings
    assert finding.rule.id == "HEX-DRK-001" and finding.effective_severity is Severity.LOW


def test_only_cfg_in_directory_is_used_and_old_header(tmp_path: Path) -> None:
    old = struct.pack("<iiii", 0, 1, 0, 500) + weights()[20:] + b"\x00" * 8
    path = model_dir(tmp_path, old, stem="net")
    path.rename(tmp_path / "other-name.weights")
    (finding,) = scan_path(tmp_path / "other-name.weights").findings
    assert finding.rule.id == "HEX-DRK-001" and finding.evidence["extra_bytes"] == 8


def test_cfg_outside_the_directory_is_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "yolo.cfg").write_text(CFG)
    inner = tmp_path / "models"
    inner.mkdir()
    os.symlink(outside / "yolo.cfg", inner / "yolo.cfg")
    (inner / "yolo.weights").write_bytes(weights() + b"extra!!!")
    assert scan_path(inner / "yolo.weights").findings == ()


def test_member_of_a_container_has_no_sibling(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("yolo.weights", weights() + b"extra!!!")
        zf.writestr("yolo.cfg", CFG)
    (tmp_path / "yolo.cfg").write_text(CFG)
    assert [f for f in scan_path(path).findings if f.rule.id.startswith("HEX-DRK")] == []


@pytest.mark.parametrize(("data", "reason"), [
    (struct.pack("<iiiQ", 0, 2, 0, 10), "no weights"),
    (struct.pack("<iiiQ", 0, 2, 0, 1 << 50) + weights()[20:], "images-seen"),
    (struct.pack("<iiiQ", 0, 2, 0, 7) + np.random.default_rng(1).bytes(4096), "ordinary"),
])
def test_implausible_weights(data: bytes, reason: str) -> None:
    found = scan_bytes(DarknetScanner(), "x.weights", data, fmt=Format.DARKNET_WEIGHTS)
    (finding,) = [f for f in found if f.rule.id == "HEX-DRK-002"]
    assert reason in " ".join(finding.evidence["reasons"])


def test_implausible_cfg_values_and_unknown_sections() -> None:
    bad = CFG.replace("width=32", "width=99999999").replace("[maxpool]", "[maxpoo1]")
    found = scan_bytes(DarknetScanner(), "yolo.cfg", bad.encode(), fmt=Format.DARKNET_CFG)
    assert ids(found) == ["HEX-DRK-003", "HEX-DRK-003"]
    assert {f.effective_severity for f in found} == {Severity.MEDIUM, Severity.LOW}


def test_fuzzed_inputs_only_raise_parse_or_limit_errors(tmp_path: Path) -> None:
    cfg_scan = lambda d: scan_bytes(DarknetScanner(), "y.cfg", d,  # noqa: E731
                                    fmt=Format.DARKNET_CFG)
    outcome = fuzz(cfg_scan, [CFG.encode()], rounds=3000)
    assert outcome["ok"] > 0
    w_scan = lambda d: scan_bytes(DarknetScanner(), "y.weights", d,  # noqa: E731
                                  fmt=Format.DARKNET_WEIGHTS)
    fuzz(w_scan, [weights(256)], rounds=2000)
    for text in _mutated_cfgs(200):
        try:
            dk.weight_count(dk.parse_cfg(text))
        except (dk.ParseError, dk.LimitExceeded):
            pass


def _mutated_cfgs(n: int) -> list[str]:
    import random

    rng = random.Random(7)  # noqa: S311 - fuzzing
    lines = CFG.splitlines()
    out = []
    for _ in range(n):
        copy = list(lines)
        i = rng.randrange(len(copy))
        copy[i] = rng.choice(["layers=-9", "stride=0", "size=-3", "[route]", "filters=x",
                              "groups=0", "layers=", "[shortcut]\nweights_type=per_channel"])
        out.append("\n".join(copy))
    return out
