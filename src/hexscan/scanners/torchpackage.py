"""The ``torchpackage`` scanner: the Python modules and extern list of torch.package archives.

torch.package.PackageExporter writes a zip with one root folder: ``.data/`` (storages,
``extern_modules``, ``version``), the pickles saved with save_pickle, and the source of
every interned module as ``<root>/<dotted/path>.py`` (``__init__.py`` for packages).
PackageImporter.load_pickle imports those modules from the archive while unpickling. The
modules are read here as text (bounded, straight from the zip, never extracted) and walked
with parsers/pysource; the pickles are members like any other and go to the pickle scanner.
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from hexscan.discover.archives import zip_names
from hexscan.discover.artifact import Artifact
from hexscan.errors import ParseError
from hexscan.formats.kinds import ZIP_BASED, Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers import pysource
from hexscan.rules import torchpackage as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext

#: Bytes read of one module, of all modules of one archive, and of extern_modules.
MAX_MODULE_BYTES = 2 << 20
MAX_TOTAL_BYTES = 32 << 20
MAX_EXTERN_BYTES = 1 << 20
#: Modules analysed per archive; findings reported per archive.
MAX_MODULES = 10_000
_MAX_FINDINGS = 100

_MARKER = re.compile(r"^([^/]+)/\.data/(?:extern_modules|version)$")
#: Methods that unpickling calls (BUILD, NEWOBJ, REDUCE of a class) or that run when a
#: class or instance is merely touched: their code runs during load_pickle.
UNPICKLE_METHODS = frozenset({
    "__reduce__", "__reduce_ex__", "__setstate__", "__getstate__", "__new__", "__init__",
    "__getattr__", "__getattribute__", "__setattr__", "__setitem__", "__set_name__",
    "__init_subclass__", "__class_getitem__", "__del__", "__instancecheck__", "__hash__",
    "__eq__",
})
#: Extern modules that only serve to run commands, code or connections (MEDIUM); the
#: standard library's os, shutil, importlib... are externed implicitly by the exporter
#: and are judged through the calls the modules make.
DANGEROUS_EXTERNS = frozenset({
    "subprocess", "pty", "socket", "ctypes", "runpy", "pickle", "_pickle", "marshal",
    "dill", "cloudpickle", "code", "codeop", "webbrowser", "requests", "urllib.request",
    "http.client", "ftplib", "smtplib", "telnetlib", "posix", "nt", "commands",
})


@dataclass(frozen=True, slots=True)
class PackageModule:
    """One module source of the archive: member name, dotted module name, analysis."""

    member: str
    module: str
    facts: pysource.PySource
    cut: bool


class TorchPackageScanner:
    """Judges the code a torch.package archive makes its importer run."""

    name: ClassVar[str] = "torchpackage"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset(ZIP_BASED)
    rules: ClassVar[tuple[Rule, ...]] = (rules.PACKAGE_CODE, rules.DANGEROUS_EXTERN)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        try:
            names = zip_names(artifact)
        except ParseError:
            return
        roots = sorted({m.group(1) for n in names if (m := _MARKER.match(n))})
        if not roots:
            return
        with artifact.open() as stream:
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise ParseError(f"unreadable torch.package zip: {exc}") from exc
            with archive:
                for root in roots:
                    yield from _package(archive, root, names)


def _package(archive: zipfile.ZipFile, root: str, names: list[str]) -> Iterator[Finding]:
    modules = list(_modules(archive, root, names))
    called = _pickled_names(archive, root, names)
    reported = 0
    for mod in modules:
        for finding in _module_findings(mod, called):
            reported += 1
            if reported > _MAX_FINDINGS:
                return
            yield finding
    externs = _externs(archive, root)
    for extern in externs:
        if extern in DANGEROUS_EXTERNS or extern.split(".")[0] in DANGEROUS_EXTERNS:
            yield Finding(rules.DANGEROUS_EXTERN,
                          f"torch.package {root!r} takes the module {extern} from the loading "
                          "environment", key=f"{root}:extern:{extern}",
                          evidence={"package": root, "extern": extern})
    if modules:
        yield Finding(rules.PACKAGE_CODE,
                      f"torch.package {root!r} ships {len(modules)} Python module(s) that "
                      "PackageImporter imports when it unpickles: loading it runs their code",
                      key=f"{root}:modules", severity=Severity.LOW, confidence=0.9,
                      evidence={"package": root, "modules": [m.module for m in modules[:50]],
                                "externs": externs[:50]})


def _modules(archive: zipfile.ZipFile, root: str, names: list[str]) -> Iterator[PackageModule]:
    total = 0
    sources = [n for n in names if n.startswith(f"{root}/") and n.endswith(".py")
               and not n.startswith(f"{root}/.data/")]
    for member in sources[:MAX_MODULES]:
        if total >= MAX_TOTAL_BYTES:
            return
        try:
            with archive.open(member) as handle:
                raw = handle.read(MAX_MODULE_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
                RuntimeError) as exc:
            raise ParseError(f"unreadable torch.package module {member}: {exc}") from exc
        total += len(raw)
        cut = len(raw) > MAX_MODULE_BYTES
        source = raw[:MAX_MODULE_BYTES].decode("utf-8", "replace")
        dotted = member[len(root) + 1:-3].replace("/", ".").removesuffix(".__init__")
        yield PackageModule(member, dotted, pysource.analyse(source), cut)


def _pickled_names(archive: zipfile.ZipFile, root: str, names: list[str]) -> set[str]:
    """``module.name`` of every global the archive's pickles name: functions a REDUCE
    calls while load_pickle runs. Read with pickletools' opcode walk, never unpickled."""
    found: set[str] = set()
    budget = MAX_TOTAL_BYTES
    for member in names:
        if not member.startswith(f"{root}/") or not member.endswith(".pkl") or \
                member.startswith(f"{root}/.data/") or budget <= 0:
            continue
        try:
            with archive.open(member) as handle:
                data = handle.read(min(MAX_MODULE_BYTES * 4, budget))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
                RuntimeError):
            continue
        budget -= len(data)
        found.update(pickle_globals(data))
    return found


def pickle_globals(data: bytes) -> set[str]:
    """Dotted names of GLOBAL / STACK_GLOBAL opcodes (the two strings pushed before it)."""
    out: set[str] = set()
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                out.add(arg.replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                out.add(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings = (strings + [arg])[-2:]
            if len(out) > 10_000:
                break
    except (ValueError, EOFError, IndexError, KeyError, UnicodeDecodeError):
        pass  # the walk stops at the first broken opcode; what came before counts
    return out


def _module_findings(mod: PackageModule, called: set[str]) -> Iterator[Finding]:
    if not mod.facts.parsed:
        # The importer compiles the source too: one that ast cannot read fails to import,
        # unless the two disagree; either way nothing can vouch for it.
        yield Finding(rules.PACKAGE_CODE, f"module {mod.module} of a torch.package could not "
                      f"be analysed ({mod.facts.error})", key=f"{mod.member}:unparsed",
                      severity=Severity.MEDIUM,
                      evidence={"module": mod.module, "error": mod.facts.error})
    for call in mod.facts.calls:
        reached = call.import_time or call.function in UNPICKLE_METHODS or \
            f"{mod.module}.{call.function}" in called
        if reached:
            severity = Severity.CRITICAL
        else:
            severity = Severity.MEDIUM if call.what == "writes a file" else Severity.HIGH
        when = "at import" if call.import_time else f"in {call.function}()"
        if f"{mod.module}.{call.function}" in called and not call.import_time:
            when += ", which the package's pickle calls"
        yield Finding(rules.PACKAGE_CODE,
                      f"module {mod.module} of a torch.package {call.what} {when}: "
                      f"{call.name} (line {call.line})",
                      key=f"{mod.member}:{call.name}:{call.line}", severity=severity,
                      line_number=call.line,
                      evidence={"module": mod.module, "member": mod.member,
                                "call": call.name, "does": call.what,
                                "import_time": call.import_time, "function": call.function,
                                "source_cut": mod.cut})


def _externs(archive: zipfile.ZipFile, root: str) -> list[str]:
    try:
        with archive.open(f"{root}/.data/extern_modules") as handle:
            raw = handle.read(MAX_EXTERN_BYTES)
    except KeyError:
        return []
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
            RuntimeError) as exc:
        raise ParseError(f"unreadable extern_modules of {root}: {exc}") from exc
    return [line.strip() for line in raw.decode("utf-8", "replace").splitlines()
            if line.strip()][:10_000]
