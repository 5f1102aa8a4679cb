"""Family: torch.package archives whose module source runs the payload when unpickled.

Every archive is written by torch.package.PackageExporter. The malicious module source is
handed to the exporter with save_source_string, so the payload never runs while the
archive is built; the object pickled is an instance of a class of the same name built here
from a harmless twin of that source. The loader ``torch-package`` calls
PackageImporter.load_pickle on the first pickle resource. Payload places: module top level
(plain, aliased, hidden behind getattr / __import__ / __builtins__ lookups, in a class
body, in a default argument, in a decorator), in __init__.py of a package, in a nested
package, in a module the class's module imports, and in methods that unpickling calls
(__setstate__, __reduce__ to a module function, __init__ through __reduce__). Externed or
mocked payload modules are not in the archive and cannot fire. Benign twins: real
nn.Modules and helpers exported the ordinary way, with only torch extern.
"""

from __future__ import annotations

import io
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.package

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "torch-package"

_CLASS = "class Thing:\n    def __init__(self, *args):\n        self.args = args\n"

#: name -> (module source with {P} for the payload source's repr, module of the class)
_TOP_LEVEL = {
    "exec": "exec({P})\n",
    "eval_compile": "eval(compile({P}, 'm', 'exec'))\n",
    "alias_builtins": "import builtins as b\nb.exec({P})\n",
    "from_import": "from builtins import exec as run\nrun({P})\n",
    "dunder_import": "__import__('builtins').exec({P})\n",
    "getattr_import": "getattr(__import__('builtins'), 'exec')({P})\n",
    "getattr_computed": "import builtins\ngetattr(builtins, 'ex' + 'ec')({P})\n",
    "builtins_subscript": "__builtins__['exec']({P}) if isinstance(__builtins__, dict) "
                          "else exec({P})\n",
    "subprocess": "import subprocess, sys\nsubprocess.run([sys.executable, '-c', {P}])\n",
    "os_system": "import os, sys, shlex\n"
                 "os.system(shlex.join([sys.executable, '-c', {P}]))\n",
    "importlib": "import importlib\nimportlib.import_module('builtins').exec({P})\n",
    "class_body": "class Hidden:\n    exec({P})\n",
    "default_arg": "def helper(x=exec({P})):\n    return x\n",
    "decorator": "def deco(f):\n    return f\n@deco if exec({P}) is None else deco\n"
                 "def helper():\n    return 1\n",
}

#: name -> class source with {P} (the payload runs in a method that unpickling calls)
_METHODS = {
    "setstate": "class Thing:\n    def __init__(self, *args):\n        self.args = args\n"
                "    def __setstate__(self, state):\n        exec({P})\n"
                "        self.__dict__.update(state)\n",
    "reduce_function": "def run(src):\n    exec(src)\n    return Thing()\n"
                       "class Thing:\n    def __init__(self, *args):\n        self.args = args\n"
                       "    def __reduce__(self):\n        return run, ({P},)\n",
    "reduce_init": "class Thing:\n    def __init__(self, *args):\n        self.args = args\n"
                   "        if args:\n            exec(args[0])\n"
                   "    def __reduce__(self):\n        return Thing, ({P},)\n",
}


#: Standard modules the exporter will not extern implicitly ("system level access").
_STDLIB = ("sys", "os", "subprocess", "shlex", "builtins", "importlib")


def _export(modules: dict[str, tuple[str, bool]], obj: object, extern: tuple[str, ...] = (),
            mock: tuple[str, ...] = ()) -> bytes:
    """An archive with ``modules`` (name -> (source, is_package)) and ``obj`` pickled."""
    buffer = io.BytesIO()
    with torch.package.PackageExporter(buffer) as exporter:
        exporter.extern(list(_STDLIB))  # what the payloads import from the environment
        for pattern in extern:
            exporter.extern(pattern)
        for pattern in mock:
            exporter.mock(pattern)
        for name, (source, is_package) in modules.items():
            exporter.save_source_string(name, source, is_package=is_package)
        exporter.save_pickle("model", "model.pkl", obj)
    return buffer.getvalue()


def _harmless_class(module: str, source: str) -> Any:
    """The class ``Thing`` of ``module``, built from a copy of ``source`` whose payload is
    a no-op string, so that the exporter can pickle an instance of it."""
    mod = types.ModuleType(module)
    exec(source.replace("exec(", "str(").replace("eval(", "str("), mod.__dict__)  # noqa: S102 - test-built, payload-free
    sys.modules[module] = mod
    parent, _, leaf = module.rpartition(".")
    if parent:
        setattr(sys.modules[parent], leaf, mod)
    return mod.Thing


def _packages(module: str) -> None:
    parts = module.split(".")
    for i in range(1, len(parts)):
        name = ".".join(parts[:i])
        pkg = sys.modules.setdefault(name, types.ModuleType(name))
        pkg.__path__ = []  # type: ignore[attr-defined]


def _malicious(payload: PayloadFor) -> Iterator[tuple[str, bytes]]:
    for name, body in _TOP_LEVEL.items():
        module = f"hexpkg_{name}"
        p = repr(payload(key_of(FAMILY, name)))
        source = body.replace("{P}", p) + _CLASS
        cls = _harmless_class(module, _CLASS)
        yield name, _export({module: (source, False)}, cls(1))
    for name, body in _METHODS.items():
        module = f"hexpkg_{name}"
        source = body.replace("{P}", repr(payload(key_of(FAMILY, name))))
        cls = _harmless_class(module, source)
        yield name, _export({module: (source, False)}, cls(None) if name != "reduce_init"
                            else cls())
    p = repr(payload(key_of(FAMILY, "init_py")))
    _packages("hexpkg_init.models")
    cls = _harmless_class("hexpkg_init.models", _CLASS)
    yield "init_py", _export({"hexpkg_init": (f"exec({p})\n", True),
                              "hexpkg_init.models": (_CLASS, False)}, cls(1))
    p = repr(payload(key_of(FAMILY, "nested")))
    _packages("hexpkg_nested.a.b.deep")
    cls = _harmless_class("hexpkg_nested.a.b.deep", _CLASS)
    yield "nested", _export({"hexpkg_nested": ("", True), "hexpkg_nested.a": ("", True),
                             "hexpkg_nested.a.b": ("", True),
                             "hexpkg_nested.a.b.deep": (f"exec({p})\n" + _CLASS, False)},
                            cls(1))
    p = repr(payload(key_of(FAMILY, "imported_dependency")))
    cls = _harmless_class("hexpkg_dep_main", _CLASS)
    yield "imported_dependency", _export({
        "hexpkg_dep_util": (f"exec({p})\nVALUE = 1\n", False),
        "hexpkg_dep_main": ("import hexpkg_dep_util\n" + _CLASS, False)}, cls(1))
    for how in ("extern", "mock"):
        p = repr(payload(key_of(FAMILY, f"{how}ed_payload")))
        cls = _harmless_class(f"hexpkg_{how}_main", _CLASS)
        util = f"hexpkg_{how}_util"
        yield f"{how}ed_payload", _export(
            {f"hexpkg_{how}_main": (f"import {util}\n" + _CLASS, False)}, cls(1),
            extern=(util,) if how == "extern" else (), mock=(util,) if how == "mock" else ())
        del p


_BENIGN_NET = '''import math
import torch
from torch import nn


def init_weights(module):
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=1 / math.sqrt(module.in_features))


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))
        self.apply(init_weights)

    def forward(self, x):
        return torch.softmax(self.layers(x), dim=-1)
'''

_BENIGN_PKG_INIT = "from .net import Net\n\n__all__ = ['Net']\n"


def _benign() -> Iterator[tuple[str, bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "hexbenign_net.py").write_text(_BENIGN_NET)
        pkg = root / "hexbenign_pkg"
        pkg.mkdir()
        (pkg / "__init__.py").write_text(_BENIGN_PKG_INIT)
        (pkg / "net.py").write_text(_BENIGN_NET)
        sys.path.insert(0, tmp)
        try:
            import hexbenign_net
            import hexbenign_pkg

            for label, module, width in (("module", hexbenign_net, 8),
                                         ("package", hexbenign_pkg, 16)):
                buffer = io.BytesIO()
                with torch.package.PackageExporter(buffer) as exporter:
                    exporter.extern(["torch", "torch.**"])
                    exporter.intern(["hexbenign_*", "hexbenign_*.**"])
                    exporter.save_pickle("model", "model.pkl", module.Net(width))
                yield label, buffer.getvalue()
        finally:
            sys.path.remove(tmp)


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for name, data in _malicious(payload):
        yield Variant(FAMILY, name, "model.pt", data, "torch-package")
    for name, data in _benign():
        yield Variant(FAMILY, f"benign_{name}", "model.pt", data, "torch-package",
                      malicious=False)
