"""The pickle machine reads opcode arguments as CPython's two unpicklers do, follows the calls the
unpickler makes by itself, and judges functools.partial by what it wraps.

The literal tests are differential: the spellings are loaded by the real C and pure-Python
unpicklers in a throw-away subprocess (the streams hold only numbers, no global), and the
machine must agree with whichever accepts each spelling. Nothing is unpickled in this process.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import pickle
import struct
import subprocess
import sys
import types

import numpy
import pytest
from regression.pickle_asm import glob, sstr, ustr

from hexscan.formats.pickle_probe import looks_like_pickle
from hexscan.parsers.pickle_vm import PickleLimits, PickleView, analyze_pickle
from hexscan.policy.pickle_policy import judge, load_policy

INT_SPELLINGS = [
    b"0", b"7", b"-7", b"+7", b"00", b"01", b"+1", b"-0", b" 1", b"1 ", b"0x1f", b"0X1F",
    b"0o17", b"0O17", b"0b1", b"0B11", b"1_000", b"0x_1f", b"-0x1f", b" 0x1f ", b"\t7\t",
    b"\x0b5\x0c", b"010", b"0777", b"-017", b"08", b"0_7", b"7\x00junk", b"\x00", b"0\x00",
    b"0x1f\x00\xff", b"99999999999999999999999", b"0x7fffffffffffffff", b"0x8000000000000000",
    b"-0x8000000000000001", b"0b1_0", b"1__0", b"0x", b"abc", b"1.5", b"", b"+", b" ",
]
LONG_SPELLINGS = [b"5L", b"5", b"0x1fL", b"0o17", b"0b101L", b"1_0L", b" 5 ", b"-0x10L",
                  b"7\x00junkL", b"5LL", b"L", b"010L"]
FLOAT_SPELLINGS = [b"1.5", b"1E5", b".5", b"5.", b"inf", b"-nan", b"1_0.5", b" 1.5 ",
                   b"1e999", b"1.5\x00junk", b"0x1p3", b"abc"]
MEMO_SPELLINGS = [b"3", b"1_0", b" 3 ", b"+5", b"007", b"5\x00junk", b"-1", b"x"]

_LOADER = """
import json, pickle, sys
out = []
for hexdata in json.load(sys.stdin):
    row = []
    for load in (pickle.loads, lambda d: pickle._Unpickler(__import__('io').BytesIO(d)).load()):
        try:
            value = load(bytes.fromhex(hexdata))
            row.append([type(value).__name__, repr(value)])
        except Exception as exc:
            row.append(None)
    out.append(row)
json.dump(out, sys.stdout)
"""


def _real_loads(streams: list[bytes]) -> list[list[list[str] | None]]:
    """[C result, Python result] per stream: [type name, repr] or None when it refused."""
    # The real unpicklers on number-only streams, in their own process (differential test).
    proc = subprocess.run([sys.executable, "-c", _LOADER],  # noqa: S603
                          input=json.dumps([s.hex() for s in streams]), capture_output=True,
                          text=True, check=True, timeout=120)
    result: list[list[list[str] | None]] = json.loads(proc.stdout)
    return result


def _streams() -> list[tuple[str, bytes]]:
    cases = [(f"I{t!r}", b"I" + t + b"\n.") for t in INT_SPELLINGS]
    cases += [(f"L{t!r}", b"L" + t + b"\n.") for t in LONG_SPELLINGS]
    cases += [(f"F{t!r}", b"F" + t + b"\n.") for t in FLOAT_SPELLINGS]
    cases += [(f"p{t!r}", b"I42\np" + t + b"\n0g" + t + b"\n.") for t in MEMO_SPELLINGS]
    return cases


def test_text_literals_are_read_as_the_unpicklers_read_them() -> None:
    cases = _streams()
    real = _real_loads([data for _, data in cases])
    disagreements = []
    for (name, data), (c_result, py_result) in zip(cases, real, strict=True):
        view = analyze_pickle(data)
        expected = c_result or py_result
        if expected is None:  # both refuse: the machine must record the break, not pass it
            if not view.malformations:
                disagreements.append((name, "accepted what both unpicklers refuse"))
            continue
        got = view.streams[0].result if view.streams and view.streams[0].complete else None
        if view.malformations or got != expected[1]:
            disagreements.append((name, expected, got, view.malformations))
    assert not disagreements
    # the differential is not vacuous: the two unpicklers do disagree on some spellings
    assert any((c is None) != (p is None) for c, p in real)


def _verdicts(data: bytes) -> list[tuple[str, str, str]]:
    return [(v.severity, f"{v.module}.{v.name}", v.use) for v in judge(analyze_pickle(data),
                                                                       load_policy())]


def _worst(data: bytes) -> str:
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
    return min((v[0] for v in _verdicts(data)), key=order.index, default="NONE")


def _called(view: PickleView) -> dict[str, str]:
    return {g.full: g.expression for g in view.globals if g.use == "called"}


GADGET = glob("gadgets.lib", "run")
NAMESPACE = glob("types", "SimpleNamespace") + b"(tR"


def _plant(method: str, filler: int = 0) -> bytes:
    pairs = b"".join(ustr(f"k{i}") + b"K\x00" for i in range(filler))
    return NAMESPACE + b"(" + pairs + ustr(method) + GADGET + b"db"


@pytest.mark.parametrize(("method", "trigger"), [
    ("append", sstr("x") + b"a"),
    ("extend", b"(" + sstr("x") + b"e"),
    ("append", b"(" + sstr("x") + b"e"),  # APPENDS falls back to append
    ("extend", sstr("x") + b"a"),  # the C unpickler's APPEND calls extend([x])
    ("add", b"(" + sstr("x") + b"\x90"),
    ("__setstate__", sstr("x") + b"b"),
])
@pytest.mark.parametrize("filler", [0, 300, 3000])
def test_planted_protocol_method_is_a_call_of_what_was_planted(method: str, trigger: bytes,
                                                               filler: int) -> None:
    data = b"\x80\x02" + _plant(method, filler) + trigger + b"."
    view = analyze_pickle(data)
    assert "gadgets.lib.run" in _called(view), view.globals
    assert _worst(data) == "HIGH"


@pytest.mark.parametrize("filler", [0, 300])
def test_planted_under_a_computed_name_is_called(filler: int) -> None:
    name = (glob("builtins", "str") + b"(" + glob("pathlib", "PurePosixPath") + b"("
            + sstr("append") + b"tRtR")  # str(PurePosixPath('append')) == 'append'
    pairs = b"".join(ustr(f"k{i}") + b"K\x00" for i in range(filler))
    data = (b"\x80\x02" + NAMESPACE + b"(" + pairs + name + GADGET + b"db" + sstr("x")
            + b"a.")
    assert "gadgets.lib.run" in _called(analyze_pickle(data))
    assert _worst(data) == "HIGH"


def test_too_many_computed_names_are_a_limit() -> None:
    pairs = b"".join(glob("mylib", f"name{i}") + GADGET for i in range(40))
    data = b"\x80\x02" + NAMESPACE + b"(" + pairs + b"db."
    assert any(hit.limit == "max_kept_items" for hit in analyze_pickle(data).limit_hits)


def test_planted_on_the_class_is_called_on_its_instances() -> None:
    data = (b"\x80\x02" + glob("argparse", "Namespace") + b"(N(" + ustr("append") + GADGET
            + b"dtb0" + glob("argparse", "Namespace") + b"(tR" + sstr("x") + b"a.")
    assert "gadgets.lib.run" in _called(analyze_pickle(data))


def test_own_protocol_methods_are_recorded_by_type_and_judged_like_the_class() -> None:
    data = b"\x80\x02" + NAMESPACE + sstr("x") + b"a" + glob("mylib", "Box") + b")\x81(K\x01e."
    called = _called(analyze_pickle(data))
    assert "types.SimpleNamespace.append" in called
    assert "mylib.Box.extend" in called
    verdicts = _verdicts(data)
    assert ("LOW", "mylib.Box", "constructed") in verdicts  # trusted as far as the class is
    assert not [v for v in verdicts if v[0] in ("CRITICAL", "HIGH", "MEDIUM")]


def test_a_list_index_store_does_not_stop_the_machine() -> None:
    data = b"(I1\nI2\nlI0\nI5\ns" + glob("builtins", "exec") + b"(" + sstr("x") + b"tR."
    view = analyze_pickle(data)
    assert not view.malformations and "builtins.exec" in _called(view)


@pytest.mark.parametrize("value", [
    collections.OrderedDict(a=1), collections.deque([1, 2]), collections.defaultdict(list, a=[1]),
    {1, 2}, types.SimpleNamespace(append=1), argparse.Namespace(extend=[1]),
    collections.OrderedDict((f"k{i}", i) for i in range(600)),
])
@pytest.mark.parametrize("protocol", range(6))
def test_benign_containers_stay_quiet(value: object, protocol: int) -> None:
    assert _worst(pickle.dumps(value, protocol)) in ("NONE", "LOW", "INFO")


class _CallOf:
    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


@pytest.mark.parametrize("protocol", range(6))
def test_partial_is_judged_by_what_it_wraps(protocol: int) -> None:
    benign = pickle.dumps(functools.partial(numpy.add, 1), protocol)
    assert _worst(benign) == "NONE"
    wrapped_danger = pickle.dumps(functools.partial(os.system, "id"), protocol)
    assert _worst(wrapped_danger) == "CRITICAL"
    called_benign = pickle.dumps(_CallOf(functools.partial(numpy.add, 1), 2), protocol)
    calls = _called(analyze_pickle(called_benign))
    assert "numpy.add" in calls and "(2)" in calls["numpy.add"]
    called_danger = analyze_pickle(pickle.dumps(_CallOf(functools.partial(os.system, "id")),
                                                protocol))
    system = next(g for g in called_danger.globals
                  if g.canonical in ("posix.system", "os.system") and g.use == "called")
    assert "'id'" in system.expression


def test_partial_built_by_newobj_is_still_a_partial() -> None:
    data = (b"\x80\x02" + glob("functools", "partial") + b"(" + GADGET + sstr("x")
            + b"t\x81(tR.")
    assert "gadgets.lib.run" in _called(analyze_pickle(data))


def test_stop_inside_a_frame_also_reads_on_at_the_frame_end() -> None:
    payload = glob("builtins", "exec") + b"(" + sstr("x") + b"tR."
    body = b"N.\xff\xfe"
    data = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body + payload
    view = analyze_pickle(data)
    assert any("before the end of its FRAME" in m.message for m in view.malformations)
    assert any("builtins.exec" in _called(inner.view) for inner in view.nested)
    assert _worst(data) == "CRITICAL"


def test_pickles_past_the_nested_cap_are_a_limit_not_forgotten() -> None:
    inner = pickle.dumps([1, 2, 3], 2)
    data = pickle.dumps([inner] * 1 + [inner + bytes([i]) for i in range(5)], 2)
    view = analyze_pickle(data, PickleLimits(max_nested_pickles=2))
    assert any(hit.limit == "max_nested_pickles" for hit in view.limit_hits)


@pytest.mark.parametrize("data", [
    b"I0x1f\n0" + glob("os", "system") + b"(" + sstr("id") + b"tR.",
    b"I010\n0(I1\nI2\nl.",
    b"\x80\x01" + glob("os", "system") + b"(" + sstr("id") + b"tR.",
    b"\x80\x00(I1\nF1_0.5\nl.",
    b"(0" + glob("os", "system") + b"(" + sstr("id") + b"tR.",
])
def test_identification_takes_the_spellings_the_unpicklers_take(data: bytes) -> None:
    assert looks_like_pickle(data, complete=True)


@pytest.mark.parametrize("data", [b"\x80\x01\xff\xfe\x00\x00", b"\x80\x09(l.", b"\x80\x00",
                                  b"I0x\n.", b"Ifoo\n."])
def test_identification_still_refuses_what_no_unpickler_reads(data: bytes) -> None:
    assert not looks_like_pickle(data, complete=True)


def test_methods_called_on_what_an_embedded_pickle_returns_are_unresolved_calls() -> None:
    """torch.storage._load_from_bytes returns whatever its pickle built (a planted append, say):
    the unpickler's APPEND on it calls an unknown object's method, never an allowed one."""
    inner = pickle.dumps([1], 2)
    data = (b"\x80\x02" + glob("torch.storage", "_load_from_bytes") + b"(B"
            + struct.pack("<I", len(inner)) + inner + b"tR" + sstr("x") + b"a.")
    assert _worst(data) == "HIGH"


def test_names_planted_by_allowed_state_setters_are_seen() -> None:
    """torch._utils._set_obj_state(obj, state) is setattr per item and returns obj."""
    state = b"(" + ustr("append") + GADGET + b"d"
    data = (b"\x80\x02" + glob("torch._utils", "_set_obj_state") + b"(" + NAMESPACE + state
            + b"tR" + sstr("x") + b"a.")
    assert "gadgets.lib.run" in _called(analyze_pickle(data))
    tagged = (b"\x80\x02" + glob("torch.jit._pickle", "restore_type_tag") + b"(" + _plant("append")
              + sstr("List[int]") + b"tR" + sstr("x") + b"a.")
    assert "gadgets.lib.run" in _called(analyze_pickle(tagged))
