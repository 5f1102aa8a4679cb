"""The pickle and torchscript scanners on artifacts built in memory (no pipeline, no CLI)."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile

import pytest

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.formats.identify import Identification
from hexscan.formats.kinds import Format
from hexscan.model.severity import Severity
from hexscan.scanners.pickle import PickleScanner
from hexscan.scanners.torchscript import TorchScriptScanner

OS_SYSTEM = b"\x80\x02cposix\nsystem\nX\x07\x00\x00\x00echo hi\x85R."


def artifact(data: bytes, name: str = "model.pkl", parent: Format | None = None) -> Artifact:
    member = name if parent else None
    return Artifact("/virtual/file", "file", member, len(data), lambda: io.BytesIO(data),
                    depth=1 if parent else 0, parent_format=parent)


def ctx(fmt: Format) -> object:
    from hexscan.scanners.base import ScanContext

    return ScanContext(Identification(fmt, fmt, None, False), ResourceLimits(), {})


def test_pickle_scanner_reports_the_global_with_its_offset() -> None:
    findings = list(PickleScanner().scan(artifact(OS_SYSTEM), ctx(Format.PICKLE)))
    assert [f.rule.id for f in findings] == ["HEX-PKL-001"]
    assert findings[0].evidence["global"] == "posix.system"
    assert findings[0].offset == OS_SYSTEM.index(b"R")


def test_object_npy_is_judged_from_the_pickle_after_the_header() -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False,
                                               "shape": (1,)})
    data = buf.getvalue() + OS_SYSTEM
    findings = list(PickleScanner().scan(artifact(data, "a.npy"), ctx(Format.NUMPY)))
    assert findings and findings[0].offset == len(buf.getvalue()) + OS_SYSTEM.index(b"R")


def test_numeric_npy_is_not_read_as_a_pickle() -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(OS_SYSTEM + b"\x00" * (-len(OS_SYSTEM) % 8), dtype="<f8"))
    assert not list(PickleScanner().scan(artifact(buf.getvalue(), "a.npy"), ctx(Format.NUMPY)))


def test_user_policy_override_changes_the_verdict() -> None:
    data = pickle.dumps(collections_counter(), protocol=2)
    options = {"pickle_policy": {"dangerous": [{"names": ["collections.Counter"]}]}}
    from hexscan.scanners.base import ScanContext

    context = ScanContext(Identification(Format.PICKLE, Format.PICKLE, None, False),
                          ResourceLimits(), options)
    assert not list(PickleScanner().scan(artifact(data), ctx(Format.PICKLE)))
    findings = list(PickleScanner().scan(artifact(data), context))
    assert findings and findings[0].effective_severity is Severity.CRITICAL


def collections_counter() -> object:
    import collections

    return collections.Counter("abc")


# ---------------------------------------------------------------------------- torchscript


def _torchscript_sources() -> list[tuple[str, bytes]]:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return self.body(x)
            return x

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(Net(), torch.ones(1, 2)), buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        return [(n, zf.read(n)) for n in zf.namelist() if "/code/" in n and n.endswith(".py")]


def scan_source(text: bytes, parent: Format = Format.TORCHSCRIPT,
                name: str = "archive/code/__torch__.py") -> list:
    art = artifact(text, name, parent)
    return list(TorchScriptScanner().scan(art, ctx(Format.PYTHON_SOURCE)))


def test_real_torchscript_sources_are_clean() -> None:
    sources = _torchscript_sources()
    assert sources
    for name, text in sources:
        assert not scan_source(text, name=name), name


@pytest.mark.parametrize("line, check", [
    ("    x = __import__('os').system('echo hi')", "imports a Python module"),
    ("    ops.prim.PythonOp('builtins', 'exec')", "prim::PythonOp"),
    ("    eval('1')", "evaluates a string"),
    ("    os.system('echo hi')", "names a Python module"),
    ("    y = torch.ops.evilns.run(x)", "custom operator"),
])
def test_escape_hatches_are_reported(line: str, check: str) -> None:
    findings = scan_source(b"def forward(self):\n" + line.encode() + b"\n")
    assert findings and check in findings[0].message
    assert findings[0].rule.id == "HEX-PKL-008" and findings[0].line_number == 2
    expected = Severity.LOW if "custom" in check else Severity.CRITICAL
    assert findings[0].effective_severity is expected


def test_names_inside_string_literals_are_data() -> None:
    """Serialized TorchScript raises with texts like "builtins.ValueError"."""
    text = b'    ops.prim.RaiseException("os.system is not allowed", "builtins.ValueError")\n'
    assert not scan_source(text)


def test_python_files_outside_torchscript_archives_are_not_this_scanners() -> None:
    assert not scan_source(b"import os\nos.system('x')\n", parent=Format.ZIP)
    assert not scan_source(b"os.system('x')\n", name="archive/extra/tool.py")
