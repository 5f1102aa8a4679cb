"""Reported bypasses of the pickle machine, as real files scanned by ``hex scan``: opcode
spellings CPython's unpicklers accept (base-prefixed and NUL-terminated numbers, text memo
keys, PROTO 0/1 heads, STOP inside a FRAME), calls the unpickler makes by itself on objects the
pickle built (a planted ``append``/``extend``/``add``/``__setstate__``, also past hundreds of
other keys), and functools.partial judged by what it wraps. Streams no pickler writes are
assembled with ``pickle_asm``; the rest are written by CPython's pickler. Nothing is loaded.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy
import pytest
from conftest import run_hex

from regression.pickle_asm import glob, sstr, ustr

RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFO": 0}
GADGET = glob("gadgets.lib", "run")
SYSTEM = glob("os", "system") + b"(" + sstr("id") + b"tR."


class _CallOf:
    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


def _planted(method: str, trigger: bytes, filler: int = 0) -> bytes:
    pairs = b"".join(ustr(f"k{i}") + b"K\x00" for i in range(filler))
    return (b"\x80\x02" + glob("types", "SimpleNamespace") + b"(tR(" + pairs + ustr(method)
            + GADGET + b"db" + trigger + b".")


# name -> (bytes, least severity hex must report, text a finding at that severity must contain)
MALICIOUS: dict[str, tuple[bytes, str, str]] = {
    "int_hex": (b"I0x1f\n0" + SYSTEM, "CRITICAL", "system"),
    "int_binary_underscore": (b"I0b1_0\n0" + SYSTEM, "CRITICAL", "system"),
    "int_c_octal": (b"I010\n0" + SYSTEM, "CRITICAL", "system"),
    "int_c_nul_junk": (b"I7\x00junk\n0" + SYSTEM, "CRITICAL", "system"),
    "long_hex": (b"L0x1fL\n0" + SYSTEM, "CRITICAL", "system"),
    "float_c_nul_junk": (b"F1.5\x00x\n0" + SYSTEM, "CRITICAL", "system"),
    "memo_underscore_key": (glob("os", "system") + b"p1_0\n0g10\n(" + sstr("id") + b"tR.",
                            "CRITICAL", "system"),
    "proto1_head": (b"\x80\x01" + SYSTEM, "CRITICAL", "system"),
    "proto0_head": (b"\x80\x00" + SYSTEM, "CRITICAL", "system"),
    "pop_of_mark": (b"(0" + SYSTEM, "CRITICAL", "system"),
    "stop_inside_frame": (b"\x80\x04" + _frame(b"N.\xff\xfe") + SYSTEM, "CRITICAL", "system"),
    "planted_append": (_planted("append", sstr("x") + b"a"), "HIGH", "gadgets.lib.run"),
    "planted_extend_by_append": (_planted("extend", sstr("x") + b"a"), "HIGH", "gadgets.lib.run"),
    "planted_add": (_planted("add", b"(" + sstr("x") + b"\x90"), "HIGH", "gadgets.lib.run"),
    "planted_setstate_past_cap": (_planted("__setstate__", sstr("x") + b"b", 400), "HIGH",
                                  "gadgets.lib.run"),
    "partial_of_system": (pickle.dumps(functools.partial(os.system, "id"), 2), "CRITICAL",
                          "system"),
    "partial_called": (pickle.dumps(_CallOf(functools.partial(numpy.add, 1), 2), 2), "HIGH",
                       "functools.partial(numpy.add, 1)(2)"),
}
BENIGN: dict[str, bytes] = {
    "partial_numpy_add": pickle.dumps(functools.partial(numpy.add, 1), 4),
    "ordered_dict_p0": pickle.dumps(collections.OrderedDict(a=1), 0),
    "deque_p2": pickle.dumps(collections.deque([1, 2]), 2),
    "big_ordered_dict_p4": pickle.dumps(collections.OrderedDict((str(i), i) for i in range(500)),
                                        4),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("grammar")
    for name, (data, _, _) in MALICIOUS.items():
        (root / f"{name}.pkl").write_bytes(data)
    for name, data in BENIGN.items():
        (root / f"benign_{name}.pkl").write_bytes(data)
    run = run_hex("scan", str(root), "--json", cwd=root)
    findings: dict[str, list[dict[str, Any]]] = {}
    for finding in json.loads(run.stdout)["results"]:
        findings.setdefault(Path(finding["file_path"]).stem, []).append(finding)
    return findings


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_bypass_is_caught(report: dict[str, list[dict[str, Any]]], name: str) -> None:
    _, least, must_contain = MALICIOUS[name]
    strong = [f for f in report.get(name, []) if RANK[f["severity"]] >= RANK[least]]
    assert strong, [(f["severity"], f["description"]) for f in report.get(name, [])]
    assert any(must_contain in f["description"] for f in strong)


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_twin_is_quiet(report: dict[str, list[dict[str, Any]]], name: str) -> None:
    loud = [(f["severity"], f["description"]) for f in report.get(f"benign_{name}", [])
            if RANK[f["severity"]] >= RANK["MEDIUM"]]
    assert not loud
