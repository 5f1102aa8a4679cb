"""The shipped capability map catches gadgets inside trusted libraries, under their alias paths,
and stays silent on what benign model pickles call.

Each gadget is a pickle *calling* the library function (assembled with ``pickle_asm``: nothing
here imports or runs the libraries); hex scans them all in one run.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from conftest import run_hex

from hexscan.parsers.pickle_view import GlobalUse
from hexscan.policy.capabilities import load_capabilities
from regression.pickle_asm import call, glob, pkl, sglob, ustr

RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFO": 0}

#: (module, qualname, a capability the map must show, the least severity hex must report).
#: Names the dangerous list already makes CRITICAL keep that (the map never lowers it).
GADGETS = [
    ("torch.utils.model_zoo", "load_url", "deserialise", "CRITICAL"),
    ("torch.hub", "load_state_dict_from_url", "deserialise", "CRITICAL"),
    ("numpy.lib._datasource", "open", "file", "HIGH"),
    ("numpy.lib._datasource", "DataSource", "file", "HIGH"),
    ("pandas", "read_pickle", "deserialise", "CRITICAL"),
    ("pandas", "read_csv", "network", "HIGH"),
    ("pandas.io.common", "urlopen", "network", "HIGH"),
    ("pandas.io.parsers.readers", "read_csv", "network", "HIGH"),
    ("pandas.compat.pickle_compat", "loads", "deserialise", "CRITICAL"),
    ("sklearn.datasets", "fetch_openml", "network", "HIGH"),
    ("sklearn.datasets", "fetch_california_housing", "deserialise", "CRITICAL"),
    ("scipy.io", "loadmat", "file", "HIGH"),
    ("torch.serialization", "_load", "deserialise", "CRITICAL"),
    ("numpy.lib.format", "read_array", "deserialise", "CRITICAL"),
    ("numpy.lib._format_impl", "read_array", "deserialise", "CRITICAL"),
    ("joblib.numpy_pickle", "load", "deserialise", "CRITICAL"),
    ("joblib", "load", "deserialise", "CRITICAL"),
    ("keras.utils", "get_file", "network", "HIGH"),
    ("keras.src.utils", "get_file", "network", "HIGH"),
    ("keras.src.utils.python_utils", "func_load", "deserialise", "CRITICAL"),
    ("sympy", "sympify", "eval", "CRITICAL"),
    ("sympy.parsing.sympy_parser", "parse_expr", "eval", "CRITICAL"),
    ("numpy", "memmap", "file", "HIGH"),
    ("gzip", "open", "file", "HIGH"),
    ("joblib", "dump", "file", "HIGH"),
]

#: What benign model pickles call or construct (pickle.toml's allowlist), with the use.
BENIGN = [
    ("numpy.core.multiarray", "_reconstruct", "called"),
    ("numpy._core.multiarray", "_reconstruct", "called"),
    ("numpy.random._pickle", "__randomstate_ctor", "called"),
    ("torch._utils", "_rebuild_tensor_v2", "called"),
    ("torch._utils", "_rebuild_parameter", "called"),
    ("torch._utils", "_rebuild_parameter_with_state", "called"),
    ("torch.storage", "_load_from_bytes", "called"),
    ("torch._tensor", "_rebuild_from_type_v2", "called"),
    ("torch.nn.modules.linear", "Linear", "constructed"),
    ("torch.optim.adam", "Adam", "constructed"),
    ("pandas.core.internals.blocks", "new_block", "called"),
    ("pandas.core.indexes.base", "_new_Index", "called"),
    ("pandas.core.internals.managers", "BlockManager", "called"),
    ("pandas.core.frame", "DataFrame", "constructed"),
    ("pandas.core.series", "Series", "constructed"),
    ("sklearn.linear_model._logistic", "LogisticRegression", "constructed"),
    ("sklearn.ensemble._forest", "RandomForestClassifier", "constructed"),
    ("sklearn.pipeline", "Pipeline", "constructed"),
    ("zoneinfo", "ZoneInfo", "called"),
    ("collections", "OrderedDict", "called"),
    ("pathlib", "PosixPath", "called"),
]


def _use(module: str, qualname: str, use: str) -> GlobalUse:
    full = f"{module}.{qualname}"
    return GlobalUse(module, qualname, use, 0, f"{full}(...)", full, "REDUCE", 0)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    """file stem -> hex findings, for one pickle per gadget and per benign helper."""
    root = tmp_path_factory.mktemp("gadgets")
    for i, (module, qualname, _, _) in enumerate(GADGETS):
        body = call(glob(module, qualname), ustr("model.bin"))
        (root / f"gadget{i}.pkl").write_bytes(pkl(body))
        (root / f"gadget{i}_p4.pkl").write_bytes(pkl(call(sglob(module, qualname),
                                                          ustr("model.bin")), 4))
    for i, (module, qualname, use) in enumerate(BENIGN):
        if use == "called":
            (root / f"benign{i}.pkl").write_bytes(pkl(call(glob(module, qualname))))
    report = json.loads(run_hex("scan", str(root), "--json", "--fail-on", "CRITICAL").stdout)
    found: dict[str, list[dict[str, object]]] = {}
    for finding in report["results"]:
        found.setdefault(Path(finding["file_path"]).stem, []).append(finding)
    return found


@pytest.mark.parametrize(("index", "gadget"), list(enumerate(GADGETS)),
                         ids=[f"{m}.{q}" for m, q, _, _ in GADGETS])
def test_gadget_is_caught(scanned: dict[str, list[dict[str, object]]], index: int,
                          gadget: tuple[str, str, str, str]) -> None:
    module, qualname, capability, severity = gadget
    for stem in (f"gadget{index}", f"gadget{index}_p4"):
        findings = scanned.get(stem, [])
        worst = max((RANK[str(f["severity"]).upper()] for f in findings), default=-1)
        assert worst >= RANK[severity], (stem, [(f["severity"], f["description"])
                                                for f in findings])
    found = load_capabilities().gadget(_use(module, qualname, "called"))
    assert found is not None and capability in found.capabilities, found


def test_map_messages_name_the_chain(scanned: dict[str, list[dict[str, object]]]) -> None:
    index = next(i for i, g in enumerate(GADGETS) if g[:2] == ("torch.utils.model_zoo",
                                                                "load_url"))
    messages = [str(f["description"]) for f in scanned[f"gadget{index}"]]
    assert any("torch.utils.model_zoo.load_url reaches torch.load through "
               "torch.hub.load_state_dict_from_url" in m for m in messages), messages


@pytest.mark.parametrize(("index", "benign"), list(enumerate(BENIGN)),
                         ids=[f"{m}.{q}" for m, q, _ in BENIGN])
def test_benign_helper_not_flagged(scanned: dict[str, list[dict[str, object]]], index: int,
                                   benign: tuple[str, str, str]) -> None:
    module, qualname, use = benign
    assert load_capabilities().gadget(_use(module, qualname, use)) is None
    if use == "called":
        findings = scanned.get(f"benign{index}", [])
        assert not [f for f in findings if "reaches" in str(f["description"])], findings


def _allow_entries() -> list[tuple[str, str]]:
    text = resources.files("hexscan.policy").joinpath("pickle.toml").read_text("utf-8")
    return [(name, use) for rule in tomllib.loads(text).get("allow", [])
            for name in rule["names"] if not name.endswith(".*")
            for use in rule["uses"] if use in ("called", "constructed")]


def test_no_exact_allowlist_entry_is_a_gadget() -> None:
    """What the allowlist lets benign pickles call or construct reaches no sink in the map."""
    cmap = load_capabilities()
    flagged = []
    for name, use in _allow_entries():
        module, _, qualname = name.rpartition(".")
        gadget = cmap.gadget(_use(module, qualname, use))
        if gadget:
            flagged.append((name, use, gadget.chain))
    assert not flagged, flagged


def test_map_records_its_sources() -> None:
    cmap = load_capabilities()
    assert {"python", "numpy", "torch", "pandas", "sklearn"} <= set(cmap.versions)
    data = resources.files("hexscan.policy").joinpath("pickle_capabilities.json.gz").read_bytes()
    assert len(data) < 3_000_000
