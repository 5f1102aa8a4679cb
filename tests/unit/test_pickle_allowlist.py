"""The generated pickle allowlist: consistent, reproducible, never allowing the dangerous.

And the one judging change that came with it: a ``getattr`` whose object and name the machine
resolved statically is judged by what it reaches, while any other getattr stays dangerous.
Payload pickles are assembled byte by byte (no library writes them); nothing is ever loaded.
"""

from __future__ import annotations

import datetime
import json
import pickle
import subprocess
import sys
import tomllib
import zoneinfo
from pathlib import Path

import pytest
from conftest import REPO
from regression.pickle_asm import glob, sstr, tup, ustr

from hexscan.parsers.pickle_vm import analyze_pickle
from hexscan.policy.pickle_allowlist import (
    ALLOWLIST_FILE,
    GeneratedAllowlistError,
    load_generated,
    parse_generated,
)
from hexscan.policy.pickle_policy import judge, load_policy

POLICY = load_policy()
ALARM = ("CRITICAL", "HIGH", "MEDIUM")
GENERATOR = REPO / "tools" / "policy" / "gen_pickle_allowlist.py"
RECORDS = REPO / "tools" / "policy" / "records"
DATA = REPO / "src" / "hexscan" / "policy" / ALLOWLIST_FILE


def alarms(data: bytes) -> list[tuple[str, str, str]]:
    return [(v.severity, f"{v.module}.{v.name}", v.use)
            for v in judge(analyze_pickle(data), POLICY) if v.severity in ALARM]


def p2(body: bytes) -> bytes:
    """Protocol 2 framing around an opcode body (REDUCE is ``R``, STOP is ``.``)."""
    return b"\x80\x02" + body + b"."


def getattr_call(obj: bytes, name: bytes) -> bytes:
    return glob("builtins", "getattr") + tup(obj, name) + b"R"


# ------------------------------------------------------------------ the data file


def test_generated_allowlist_loads_validates_and_has_provenance() -> None:
    generated = load_generated()
    assert len(generated.uses) >= 300
    assert set(generated.uses) == set(generated.provenance)
    assert all(generated.provenance.values())
    libraries = {p.split(" ")[0] for ps in generated.provenance.values() for p in ps}
    assert {"stdlib", "numpy", "pandas", "scipy", "sklearn", "torch"} <= libraries
    assert {"current", "legacy-numpy1-pandas1"} <= set(generated.sources)
    assert generated.sources["legacy-numpy1-pandas1"]["numpy"].startswith("1.")
    # a record collected where an optional library was missing would silently drop its names
    assert {"torch", "pyarrow", "lightgbm", "tokenizers", "transformers"} <= set(
        generated.sources["current"])
    # names are written sorted, one per line: the file diffs cleanly when regenerated
    text = DATA.read_text(encoding="utf-8")
    names = [line.split('"')[1] for line in text.splitlines() if line.startswith('"') and
             "uses =" in line]
    assert names == sorted(names) and len(names) == len(generated.uses)


def test_no_generated_name_is_dangerous() -> None:
    clashes = [n for n in load_generated().uses if POLICY.danger(n)]
    assert clashes == []


def test_generated_entries_reach_the_policy() -> None:
    generated = load_generated()
    for name, uses in generated.uses.items():
        assert uses <= (POLICY.allowed_uses(name) or frozenset()), name
    assert "called" in (POLICY.allowed_uses("pandas.core.indexes.datetimes._new_DatetimeIndex")
                        or ())
    assert "numpy.core.multiarray._reconstruct" in generated.uses  # from numpy 1.26


def test_the_committed_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    """Deterministic: the committed records produce the committed data file byte for byte."""
    out = tmp_path / "allowlist.toml"
    proc = subprocess.run(  # noqa: S603 - this interpreter running the repo's own script
        [sys.executable, str(GENERATOR), "write", *map(str, sorted(RECORDS.glob("*.json"))),
         "--output", str(out)], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == DATA.read_text(encoding="utf-8")


def _record(names: dict[str, dict[str, list[str]]]) -> dict[str, object]:
    return {"versions": {"python": "3"}, "serialisations": 1, "names": names, "problems": []}


@pytest.mark.parametrize(("name", "use"), [
    ("os.system", "called"), ("builtins.getattr", "called"), ("numpy.load", "called"),
    ("posix", "referenced"), ("torch.serialization.load", "attribute"),
    ("sklearn.__dict__", "attribute"),
])
def test_generator_refuses_a_dangerous_name(tmp_path: Path, name: str, use: str) -> None:
    records = tmp_path / "records.json"
    benign = {"datetime.date": {"called": ["stdlib 3"]}}
    records.write_text(json.dumps(_record({**benign, name: {use: ["lib 1"]}})))
    out = tmp_path / "allowlist.toml"
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(GENERATOR), "write", str(records), "--output", str(out)],
        capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1
    assert "REFUSED" in proc.stderr and name in proc.stderr
    assert not out.exists()


def test_generator_refuses_a_use_hex_cannot_allow(tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    records.write_text(json.dumps(_record({"collections.OrderedDict": {"mutated": ["x 1"]}})))
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(GENERATOR), "write", str(records), "--output",
         str(tmp_path / "o.toml")], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1 and "mutated" in proc.stderr


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("sources"),
    lambda d: d.__setitem__("version", 2),
    lambda d: d["names"].__setitem__("x.y", {"uses": ["mutated"], "provenance": ["a 1"]}),
    lambda d: d["names"].__setitem__("x.y", {"uses": ["called"], "provenance": []}),
    lambda d: d["names"].__setitem__("x.y", {"uses": ["called"]}),
    lambda d: d["names"].__setitem__("x.*", {"uses": ["called"], "provenance": ["a 1"]}),
    lambda d: d["names"].__setitem__("x y", {"uses": [], "provenance": ["a 1"]}),
])
def test_a_malformed_allowlist_is_rejected(mutate) -> None:
    data = tomllib.loads(DATA.read_text(encoding="utf-8"))
    mutate(data)
    with pytest.raises(GeneratedAllowlistError):
        parse_generated(data)


# ------------------------------------------------------------------ getattr resolved statically


def test_zoneinfo_datetimes_are_silent_in_every_protocol() -> None:
    """CPython writes getattr(ZoneInfo, '_unpickle') in protocols < 4: judged by its target."""
    aware = datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(aware, protocol)
        assert alarms(data) == [], protocol
    assert b"getattr" in pickle.dumps(aware, 2)


@pytest.mark.parametrize(("obj", "name", "target"), [
    (glob("builtins", "__import__") + tup(ustr("os")) + b"R", "system", "os.system"),
    (glob("importlib", "import_module") + tup(ustr("subprocess")) + b"R", "Popen",
     "subprocess.Popen"),
    (glob("numpy", "lib"), "npyio", "numpy.lib.npyio"),
    (glob("torch", "serialization"), "load", "torch.serialization.load"),
    (glob("builtins", "object"), "__subclasses__", "builtins.object.__subclasses__"),
])
def test_getattr_resolved_to_a_dangerous_name_is_critical(obj: bytes, name: str,
                                                          target: str) -> None:
    data = p2(getattr_call(obj, ustr(name)) + tup(ustr("id")) + b"R")
    found = alarms(data)
    assert ("CRITICAL", target, "called") in found, found


def test_getattr_of_a_dangerous_global_is_critical() -> None:
    data = p2(getattr_call(glob("os", "system"), ustr("__call__")) + tup(ustr("id")) + b"R")
    assert [a for a in alarms(data) if a[0] == "CRITICAL"]


def test_getattr_of_an_allowed_class_to_a_dangerous_attribute_is_critical() -> None:
    data = p2(getattr_call(glob("collections", "OrderedDict"), ustr("__init__")) +
              b"0" + getattr_call(glob("zoneinfo", "ZoneInfo"), ustr("__reduce_ex__")) + b".")
    assert ("CRITICAL", "zoneinfo.ZoneInfo.__reduce_ex__", "attribute") in alarms(data)


def test_getattr_with_a_computed_name_stays_dangerous() -> None:
    name = glob("mylib", "make_name") + tup() + b"R"  # a name only known at load time
    data = p2(getattr_call(glob("zoneinfo", "ZoneInfo"), name) + tup(ustr("x")) + b"R")
    found = alarms(data)
    assert ("CRITICAL", "builtins.getattr", "called") in found


def test_getattr_on_an_unresolved_object_stays_dangerous() -> None:
    """The object is a persistent id: what the loader returns is unknown, so is the lookup."""
    unknown = ustr("anything") + b"Q"  # BINPERSID
    data = p2(getattr_call(unknown, ustr("run")) + tup() + b"R")
    assert ("CRITICAL", "builtins.getattr", "called") in alarms(data)


def test_getattr_called_through_a_memo_with_one_computed_use_stays_dangerous() -> None:
    """One resolved lookup does not launder a second, computed one of the same global."""
    resolved = getattr_call(glob("zoneinfo", "ZoneInfo"), ustr("_unpickle"))
    computed = b"h\x00" + tup(glob("zoneinfo", "ZoneInfo"),
                              glob("mylib", "make_name") + tup() + b"R") + b"R"
    data = p2(glob("builtins", "getattr") + b"q\x00" + b"0" + resolved + b"0" + computed + b".")
    assert any(a[0] == "CRITICAL" and a[1] == "builtins.getattr" for a in alarms(data))


def test_getattr_passed_as_a_value_stays_dangerous() -> None:
    data = p2(glob("collections", "defaultdict") + tup(glob("builtins", "getattr")) + b"R")
    assert ("CRITICAL", "builtins.getattr", "referenced") in alarms(data)


def test_numpy_load_is_still_critical() -> None:
    data = p2(glob("numpy", "load") + tup(ustr("x.npy")) + b"R")
    assert ("CRITICAL", "numpy.load", "called") in alarms(data)


# ------------------------------------------------------------------ hand-written entries


def test_hand_written_allow_entries_are_only_what_the_generator_cannot_produce() -> None:
    """An exact hand entry whose uses the generated file already grants is dead weight."""
    generated = load_generated().uses
    text = (REPO / "src" / "hexscan" / "policy" / "pickle.toml").read_text(encoding="utf-8")
    redundant = [
        name
        for rule in tomllib.loads(text)["allow"]
        for name in rule["names"]
        if not name.endswith(".*") and name in generated
        and set(rule["uses"]) - {"referenced", "attribute"} <= generated[name]
    ]
    assert redundant == []
    assert all(rule.get("reason") for rule in tomllib.loads(text)["allow"])


def test_numpy_before_1_17_random_state_is_allowed() -> None:
    """``numpy.random.__RandomState_ctor()`` + BUILD(state), as numpy < 1.17 wrote it."""
    state = tup(ustr("MT19937"), glob("builtins", "list") + tup() + b"R", b"K\x00")
    data = p2(glob("numpy.random", "__RandomState_ctor") + tup() + b"R" + state + b"b")
    assert alarms(data) == []
    assert alarms(p2(glob("numpy.random", "__RandomState_ctor_x") + tup() + b"R"))


def test_a_resolved_lookup_in_an_alarming_pickle_is_reported() -> None:
    """``apply(getattr(dict, 'get'), ...)``: the lookup resolves to an innocent method, but the
    pickle hands it to a dangerous call, so the lookup is part of the chain and is named."""
    lookup = getattr_call(glob("__builtin__", "dict"), sstr("get"))
    data = glob("__builtin__", "apply") + tup(lookup, b"(" + sstr("k") + b"l") + b"R."
    found = alarms(data)
    assert ("CRITICAL", "builtins.getattr", "resolved") in found, found
    assert ("CRITICAL", "__builtin__.apply", "called") in found
