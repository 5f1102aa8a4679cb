"""The capability map: the source analysis on small synthetic trees, and the map's query.

Each tree is written to a temporary directory and read by the generator exactly as it reads
the installed libraries (``ast`` only). The data it produces is fed to the runtime loader, so
every test also exercises the shipped format end to end.
"""

from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from regression.pickle_asm import call, glob, pkl, ustr

from hexscan.parsers.pickle_view import GlobalUse
from hexscan.parsers.pickle_vm import analyze_pickle
from hexscan.policy.capabilities import CapabilityError, CapabilityMap, parse_capabilities
from hexscan.policy.pickle_policy import Verdict, judge, load_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "policy"))

import gen_capabilities as gen  # noqa: E402

DEPTH = dict.fromkeys(gen.CAPABILITIES, 8)


def _tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def _build(root: Path, files: Mapping[str, str], depth: Mapping[str, int] = DEPTH,
           **kw: Any) -> dict[str, Any]:
    _tree(root, files)
    tops = sorted({rel.split("/")[0].removesuffix(".py") for rel in files})
    return gen.build([(root, tops)], gen.SINKS, depth, **kw)


def _map(data: dict[str, Any]) -> CapabilityMap:
    return parse_capabilities(json.loads(json.dumps(data)))


def _use(full: str, use: str = "called", module: str | None = None) -> GlobalUse:
    module = module or full.rsplit(".", 1)[0]
    qualname = full[len(module) + 1:]
    return GlobalUse(module, qualname, use, 0, f"{full}(...)", full, "REDUCE", 0)


def _gadget(cmap: CapabilityMap, full: str, use: str = "called",
            module: str | None = None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """What the map says of ``full`` (its module is everything before the last dot, unless given:
    ``find_class`` imports the module part, so a class method needs the module spelled out)."""
    found = cmap.gadget(_use(full, use, module))
    return (found.capabilities, found.chain) if found else None


CHAIN = {
    "pkg/__init__.py": "from .io import fetch as load_remote\nfrom .io import *\n",
    "pkg/io.py": """
        import pickle
        import urllib.request as ur

        def _read(path):
            with open(path, "rb") as f:
                return pickle.load(f)

        def fetch(url):
            ur.urlopen(url)
            return _read(url)

        def _private():
            return fetch("x")
        """,
}


def test_chain_reexport_and_star_import(tmp_path: Path) -> None:
    cmap = _map(_build(tmp_path, CHAIN))
    caps, chain = _gadget(cmap, "pkg.load_remote") or ((), ())
    assert set(caps) == {"deserialise", "file", "network"}
    assert chain == ("pkg.io.fetch", "pkg.io._read", "pickle.load")
    assert _gadget(cmap, "pkg.fetch") == _gadget(cmap, "pkg.io.fetch")  # star re-export
    assert _gadget(cmap, "pkg._private") is None  # `import *` skips private names
    assert _gadget(cmap, "pkg.io._private") is not None
    assert _gadget(cmap, "pkg.load_remote", use="referenced") is None  # only imported: no run


def test_aliases_assignments_and_function_local_imports(tmp_path: Path) -> None:
    files = {
        "lib/__init__.py": "",
        "lib/core.py": """
            import os.path as osp
            import subprocess as sp
            from . import helpers as h

            def run(cmd):
                return sp.check_output(cmd)

            go = run
            alias_of_helper = h.evaluate

            def lazy(name):
                import importlib
                return importlib.import_module(name)

            def lazy_fixed():
                import importlib
                return importlib.import_module("json")

            def join(a, b):
                return osp.join(a, b)

            def retrying(url):
                from urllib.request import urlopen
                return h.retry(3)(urlopen)(url)

            def is_socket(x):
                import socket
                return isinstance(x, socket.socket)
            """,
        "lib/helpers.py": """
            def evaluate(text):
                return eval(text)

            def retry(n):
                return lambda f: f
            """,
    }
    cmap = _map(_build(tmp_path, files))
    assert _gadget(cmap, "lib.core.go") == (
        ("process",), ("lib.core.run", "subprocess.check_output"))
    assert _gadget(cmap, "lib.core.alias_of_helper") == (
        ("eval",), ("lib.helpers.evaluate", "builtins.eval"))
    assert _gadget(cmap, "lib.core.lazy") == (
        ("import",), ("lib.core.lazy", "importlib.import_module"))
    assert _gadget(cmap, "lib.core.lazy_fixed") is None  # literal arguments cannot be steered
    assert _gadget(cmap, "lib.core.join") is None
    assert _gadget(cmap, "lib.core.retrying") == (
        ("network",), ("lib.core.retrying", "urllib.request.urlopen"))  # passed as a callback
    assert _gadget(cmap, "lib.core.is_socket") is None  # only inspected


def test_shadowed_names_are_not_resolved(tmp_path: Path) -> None:
    files = {"shadow.py": """
        def f(open, data):
            return open(data)

        def g(x):
            eval = len
            return eval(x)
        """}
    data = _build(tmp_path, files)
    assert data["names"] == {}


def test_methods_self_super_and_construction(tmp_path: Path) -> None:
    files = {"cls/__init__.py": """
        import os

        class Base:
            def __init__(self, cmd):
                self.cmd = cmd

            def run(self):
                return self._spawn(self.cmd)

            def _spawn(self, cmd):
                return os.system(cmd)

        class Child(Base):
            def run(self):
                return super().run()

            def __setstate__(self, state):
                self.run()

        class Plain(Base):
            pass

        class Quiet(Base):
            def run(self):
                return 0
        """}
    cmap = _map(_build(tmp_path, files))
    assert _gadget(cmap, "cls.Child.run", module="cls") == (
        ("process",), ("cls.Child.run", "cls.Base.run", "cls.Base._spawn", "os.system"))
    inherited = _gadget(cmap, "cls.Plain.run", module="cls")
    assert inherited == _gadget(cmap, "cls.Base.run", module="cls") and inherited
    assert _gadget(cmap, "cls.Quiet.run", module="cls") is None  # overridden, reaches nothing
    assert _gadget(cmap, "cls.Quiet._spawn", module="cls") is not None
    assert _gadget(cmap, "cls.Child.run") is None  # find_class('cls.Child', 'run'): no module
    assert _gadget(cmap, "cls.Child", use="constructed") is not None  # __setstate__ runs
    assert _gadget(cmap, "cls.Plain", use="constructed") is None
    assert _gadget(cmap, "cls.Plain") is None  # calling runs __init__ only


def test_depth_limit(tmp_path: Path) -> None:
    body = "".join(f"def f{i}(x):\n    return f{i + 1}(x)\n\n" for i in range(9))
    files = {"deep.py": body + "def f9(x):\n    return eval(x)\n"}
    depth = {**DEPTH, "eval": 4}
    cmap = _map(_build(tmp_path, files, depth))
    reached = sorted(i for i in range(10) if _gadget(cmap, f"deep.f{i}"))
    assert reached == [6, 7, 8, 9]
    assert _gadget(cmap, "deep.f6") == (("eval",), ("deep.f6", "deep.f7", "deep.f8", "deep.f9",
                                                    "builtins.eval"))


def test_barriers_and_exclusions(tmp_path: Path) -> None:
    files = {"bar.py": """
        def parse(text):
            return compile(text, "<x>", "exec")

        def safe_api(text):
            return parse(text)

        def excluded(text):
            return eval(text)
        """}
    data = _build(tmp_path, files, barriers={"bar.parse": "only builds a tree"},
                  excluded={"bar.excluded": "reviewed"})
    cmap = _map(data)
    assert _gadget(cmap, "bar.safe_api") is None
    assert _gadget(cmap, "bar.parse") is not None  # a pickle calling it directly still counts
    assert _gadget(cmap, "bar.excluded") is None
    assert data["excluded"] == {"bar.excluded": "reviewed"}


def test_dotted_qualname_through_submodules_and_sink_reexports(tmp_path: Path) -> None:
    files = {
        "top/__init__.py": "from . import sub\n",
        "top/sub/__init__.py": "from .impl import loader\nfrom pickle import loads as fast\n",
        "top/sub/impl.py": "import marshal\n\ndef loader(b):\n    return marshal.loads(b)\n",
    }
    cmap = _map(_build(tmp_path, files))
    direct = _gadget(cmap, "top.sub.loader")
    assert direct == (("deserialise",), ("top.sub.impl.loader", "marshal.loads"))
    assert _gadget(cmap, "top.sub.loader", module="top") == direct  # ('top', 'sub.loader')
    assert _gadget(cmap, "top.sub.fast") == (("deserialise",), ("pickle.loads",))


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = json.dumps(_build(tmp_path / "a", CHAIN), sort_keys=True)
    second = json.dumps(_build(tmp_path / "b", CHAIN), sort_keys=True)
    assert first == second


def test_unparseable_files_are_counted_not_fatal(tmp_path: Path) -> None:
    data = _build(tmp_path, {**CHAIN, "pkg/broken.py": "def (:\n"})
    assert data["stats"]["unparsed_files"] == 1  # type: ignore[index]
    assert _gadget(_map(data), "pkg.load_remote") is not None


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(format=99),
    lambda d: d.update(capabilities=["teleport"]),
    lambda d: d["nodes"].append(["x", 1, []]),
    lambda d: d["nodes"].append(["x", 1, [10**6]]),
    lambda d: d.update(sink_bits=[]),
    lambda d: d["names"].update(bad={"x": "zero"}),
    lambda d: d["classes"].update({"999999": [[], {}]}),
])
def test_malformed_data_is_rejected(tmp_path: Path, mutate: Any) -> None:
    data = json.loads(json.dumps(_build(tmp_path, CHAIN)))
    mutate(data)
    with pytest.raises(CapabilityError):
        parse_capabilities(data)


# ------------------------------------------------------------------ the judge and the shipped map


def _verdicts(stream: bytes, extra: Mapping[str, Any] | None = None) -> list[Verdict]:
    return judge(analyze_pickle(io.BytesIO(stream)), load_policy(extra))


def test_judge_flags_a_called_gadget_with_its_chain() -> None:
    verdicts = _verdicts(pkl(call(glob("torch.utils.model_zoo", "load_url"), ustr("x"))))
    top = verdicts[0]
    assert (top.severity, top.kind) == ("CRITICAL", "dangerous-global")
    assert "reaches torch.load through torch.hub.load_state_dict_from_url" in top.message


def test_dangerous_list_wins_over_the_map() -> None:
    verdicts = _verdicts(pkl(call(glob("torch.hub", "load_state_dict_from_url"), ustr("x"))))
    assert verdicts[0].severity == "CRITICAL" and "reaches" not in verdicts[0].message


def test_only_imported_gadget_is_not_raised_by_the_map() -> None:
    stream = pkl(glob("sympy", "sympify"))
    assert not [v for v in _verdicts(stream) if "reaches" in v.message]


def test_map_never_lowers_a_stricter_user_severity() -> None:
    stream = pkl(call(glob("numpy.lib._datasource", "open"), ustr("x")))  # file only: HIGH
    assert _verdicts(stream)[0].severity == "HIGH"
    strict = _verdicts(stream, {"severity": {"called": "CRITICAL"}})
    assert strict[0].severity == "CRITICAL" and "reaches" in strict[0].message
