"""The ``torchscript`` scanner: the Python-like sources inside TorchScript archives.

torch.jit.load compiles every ``code/**.py`` member with the TorchScript compiler. TorchScript
has no exec/eval/__import__ and cannot import Python modules, and torch.jit.save never writes
them; an archive that names them, or that calls back into the interpreter through
``prim::PythonOp``, was edited to reach Python. The sources are read as text (bounded) and
matched line by line; nothing is compiled, imported or run. The pickles of the same archive
(data.pkl, constants.pkl, *.debug_pkl) are the pickle scanner's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import pickle as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext

#: Serialized TorchScript is compact; a larger member is read only this far.
MAX_SOURCE_BYTES = 8 << 20

_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
"""String literals: data (exception texts such as "builtins.ValueError"), blanked before the
name checks so that a message cannot raise an alarm; PythonOp is matched on the raw line."""

_CHECKS: tuple[tuple[re.Pattern[str], str, Severity, bool], ...] = (
    (re.compile(r"PythonOp\b"), "calls back into the Python interpreter (prim::PythonOp)",
     Severity.CRITICAL, True),
    (re.compile(r"\b__import__\b|\bimportlib\b"), "imports a Python module", Severity.CRITICAL,
     False),
    (re.compile(r"(?<![\w.])(?:exec|eval|execfile|compile)\s*\("),
     "evaluates a string as Python code", Severity.CRITICAL, False),
    (re.compile(r"(?<![\w.])(?:os|posix|nt|subprocess|sys|shutil|socket|pty|ctypes|pickle|"
                r"marshal|runpy|importlib|builtins)\s*\.\s*[A-Za-z_]"),
     "names a Python module that runs commands or code", Severity.CRITICAL, False),
    (re.compile(r"\btorch\.ops\.(?!aten\b|prim\b|quantized\b|_quantized\b|_caffe2\b|profiler\b"
                r"|quantized_decomposed\b|_c10d_functional\b|_nested_tensor\b)\w+\."),
     "calls a custom operator namespace (native code from a library the loader registered)",
     Severity.LOW, False),
)

#: Containers whose code/ sources torch.jit.load compiles.
_TORCHSCRIPT_PARENTS = frozenset({Format.TORCHSCRIPT, Format.PYTORCH_ZIP})


class TorchScriptScanner:
    """Flags Python escape hatches in the code of TorchScript archives."""

    name: ClassVar[str] = "torchscript"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.PYTHON_SOURCE})
    rules: ClassVar[tuple[Rule, ...]] = (rules.TORCHSCRIPT_PYTHON,)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        if artifact.parent_format not in _TORCHSCRIPT_PARENTS or "/code/" not in \
                f"/{artifact.name}":
            return
        with artifact.open() as stream:
            text = stream.read(MAX_SOURCE_BYTES).decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), 1):
            yield from _line_findings(number, line)


def _line_findings(number: int, line: str) -> Iterator[Finding]:
    """One finding per kind of escape hatch on this line."""
    code = _STRING.sub('""', line)
    for pattern, what, severity, raw in _CHECKS:
        match = pattern.search(line if raw else code)
        if match is None:
            continue
        yield Finding(
            rules.TORCHSCRIPT_PYTHON,
            f"TorchScript source line {number} {what}: {line.strip()[:160]}",
            key=f"{what}:{number}",
            severity=severity,
            confidence=0.9,
            evidence={"line": line.strip()[:400], "match": match.group(0), "check": what},
            line_number=number,
        )
