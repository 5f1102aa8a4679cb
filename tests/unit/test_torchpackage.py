"""The torchpackage scanner and the ast reader of Python sources, on archives written by
torch.package.PackageExporter (module sources given with save_source_string, never run)."""

from __future__ import annotations

import io
import sys
import types
import zipfile
from pathlib import Path

import pytest

torch_package = pytest.importorskip("torch.package")

from fixtures.mlscan import describe, scan_file, serious  # noqa: E402

from hexscan.model.severity import Severity  # noqa: E402
from hexscan.parsers.pysource import analyse, looks_like_python  # noqa: E402

_CLASS = "class Thing:\n    def __init__(self, *args):\n        self.args = args\n"


def _archive(tmp_path: Path, module: str, source: str, extern: tuple[str, ...] = ()) -> Path:
    mod = types.ModuleType(module)
    exec(_CLASS, mod.__dict__)  # noqa: S102 - the harmless class pickled below
    sys.modules[module] = mod
    path = tmp_path / "pkg.pt"
    buffer = io.BytesIO()
    with torch_package.PackageExporter(buffer) as exporter:
        exporter.extern(["sys", "os", "subprocess", "socket", "builtins", *extern])
        exporter.save_source_string(module, source + _CLASS)
        exporter.save_pickle("model", "model.pkl", mod.Thing(1))
    path.write_bytes(buffer.getvalue())
    return path


def _package_findings(path: Path) -> list:
    return [f for f in scan_file(path).findings if f.rule.id.startswith("HEX-TPK")]


def test_benign_package_is_low(tmp_path: Path) -> None:
    path = _archive(tmp_path, "hexunit_benign", "import os\nROOT = os.path.dirname('x')\n"
                    "def save(self, p):\n    return getattr(self, 'args')\n")
    result = scan_file(path)
    assert not serious(result), describe(result.findings)
    summary = [f for f in result.findings if f.rule.id == "HEX-TPK-001"]
    assert len(summary) == 1 and summary[0].effective_severity is Severity.LOW
    assert summary[0].evidence["modules"] == ["hexunit_benign"]


@pytest.mark.parametrize(("source", "severity"), [
    ("import os\nos.system('id')\n", Severity.CRITICAL),
    ("class A:\n    def __setstate__(self, s):\n        import subprocess\n"
     "        subprocess.run(['id'])\n", Severity.CRITICAL),
    ("def forward(x):\n    import socket\n    return socket.create_connection(('h', 1))\n",
     Severity.HIGH),
    ("def dump(p):\n    with open(p, 'w') as f:\n        f.write('x')\n", Severity.MEDIUM),
])
def test_dangerous_module_code(tmp_path: Path, source: str, severity: Severity) -> None:
    hits = [f for f in _package_findings(_archive(tmp_path, "hexunit_bad", source))
            if f.evidence.get("call")]
    assert hits and max(f.effective_severity for f in hits) is severity, describe(hits)


def test_dangerous_extern_is_medium(tmp_path: Path) -> None:
    path = _archive(tmp_path, "hexunit_extern", "import socket\nPORT = 1\n")
    hits = [f for f in _package_findings(path) if f.rule.id == "HEX-TPK-002"]
    assert [f.evidence["extern"] for f in hits] == ["socket"]
    assert hits[0].effective_severity is Severity.MEDIUM


def test_unparsable_module_is_medium(tmp_path: Path) -> None:
    path = _archive(tmp_path, "hexunit_ok", "X = 1\n")
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("hexunit_ok.py"):
                data = b"def (:\n" + data
            dst.writestr(info, data)
    hits = [f for f in _package_findings(broken) if "could not be analysed" in f.message]
    assert hits and hits[0].effective_severity is Severity.MEDIUM


def test_plain_zip_with_python_is_not_a_package(tmp_path: Path) -> None:
    path = tmp_path / "code.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("code/run.py", "import os\nos.system('id')\n")
    assert not _package_findings(path)


@pytest.mark.parametrize(("source", "name", "import_time"), [
    ("import os as o\no.system('x')", "os.system", True),
    ("from subprocess import Popen as P\ndef f():\n    P(['x'])", "subprocess.Popen", False),
    ("getattr(__import__('os'), 'system')('x')", "os.system", True),
    ("__builtins__['eval']('1')", "builtins.eval", True),
    ("import importlib\nimportlib.import_module('os').popen('x')", "os.popen", True),
    ("def f(a=exec('1')):\n    pass", "builtins.exec", True),
    ("@print if exec('1') else print\ndef f():\n    pass", "builtins.exec", True),
    ("class A:\n    def __reduce__(self):\n        return eval('1')", "builtins.eval", False),
])
def test_pysource_resolves_calls(source: str, name: str, import_time: bool) -> None:
    calls = analyse(source).calls
    assert any(c.name == name and c.import_time is import_time for c in calls), calls


def test_pysource_is_quiet_on_model_code_and_never_raises() -> None:
    benign = ("import torch\nfrom torch import nn\nclass M(nn.Module):\n"
              "    def forward(self, x):\n        return getattr(self, 'l')(x).relu()\n"
              "with open('labels.txt') as f:\n    LABELS = f.read().split()\n")
    assert analyse(benign).calls == ()
    assert not analyse("(" * 10_000).parsed
    assert not analyse("def (:").parsed
    assert looks_like_python("import os\nos.getcwd()") and not looks_like_python("hello")


def test_function_the_pickle_calls_is_critical(tmp_path: Path) -> None:
    """A module function named by the pickle (REDUCE) runs during load_pickle."""
    module = "hexunit_reduce"
    harmless = ("def run(src):\n    return Thing()\n" + _CLASS +
                "    def __reduce__(self):\n        return run, ('x',)\n")
    mod = types.ModuleType(module)
    exec(harmless, mod.__dict__)  # noqa: S102 - the harmless twin pickled below
    sys.modules[module] = mod
    buffer = io.BytesIO()
    with torch_package.PackageExporter(buffer) as exporter:
        exporter.extern(["subprocess"])
        exporter.save_source_string(module, harmless.replace(
            "    return Thing()", "    import subprocess\n    subprocess.run(src)\n"
            "    return Thing()"))
        exporter.save_pickle("model", "model.pkl", mod.Thing())
    path = tmp_path / "reduce.pt"
    path.write_bytes(buffer.getvalue())
    hits = [f for f in _package_findings(path) if f.evidence.get("call") == "subprocess.run"]
    assert hits and hits[0].effective_severity is Severity.CRITICAL, describe(hits)
    assert "pickle calls" in hits[0].message
