"""Bypasses the differential fuzzer (``tests/differential/families/fuzz_pickle.py``) found.

Each stream below made CPython's unpickler run ``exec`` before it failed or finished, and hex
once passed it at LOW ("unrecognised content"). They are kept as fixed bytes so the regression
stays even when the seeded mutations change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_hex

_CALL0 = b"c__builtin__\nexec\np0\n(Vprint(1)\np1\ntp2\nR"

CASES = {
    # PROTO 1 is legal (the unpickler accepts every protocol up to its highest), and opcodes of
    # a later protocol after it still run: identification once required PROTO 2-5.
    "proto1_with_frame": (b"\x80\x01\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94"
                          b"\x8c\x04exec\x94\x93\x94\x8c\x08print(1)\x94\x85\x94R\x94."),
    "proto0_marker": b"\x80\x00" + _CALL0 + b"p3\n.",
    # A stack underflow after the call: SETITEMS with no MARK, POP of an empty stack, STOP
    # with an open MARK. CPython raises only after REDUCE ran.
    "setitems_without_mark": _CALL0 + b"p3\nu.",
    "pop_of_empty_stack": _CALL0 + b"0p3\n.",
    "stop_with_open_mark": _CALL0 + b"p3\n(.",
    # The data ends inside INST's name line: readline returns "exec." and the opcode drops
    # its last byte as if it were the newline, then calls builtins.exec; EOFError comes after.
    "name_line_cut_by_the_end": b'(S"print(1)"\nibuiltins\nexec.',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz_find_is_critical(tmp_path: Path, name: str) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(CASES[name])
    report = run_hex("scan", str(path), "--json").json()
    names = [r["evidence"].get("global") for r in report["results"]
             if r["severity"] == "CRITICAL"]
    assert any(n and n.endswith(".exec") for n in names), report["results"]
