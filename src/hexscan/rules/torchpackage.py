"""HEX-TPK: torch.package archives, whose Python modules run when they are unpickled."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_TORCH_PACKAGE_DOC = "https://pytorch.org/docs/stable/package.html"

PACKAGE_CODE = Rule(
    id="HEX-TPK-001",
    title="torch.package module runs dangerous code",
    type="code_execution",
    severity=Severity.HIGH,
    cwe=("CWE-94", "CWE-502"),
    summary="A Python module shipped in a torch.package archive runs commands, code or I/O.",
    doc=(
        "A torch.package archive (torch.package.PackageExporter) ships the source of every "
        "interned module next to its pickles. PackageImporter.load_pickle imports those "
        "modules from the archive to resolve the classes and functions the pickle names, so "
        "their top-level code runs on load, and __reduce__, __setstate__ or any function "
        "the pickle calls runs during unpickling. hex reads each module with Python's ast "
        "parser (nothing is imported or run) and reports calls that start processes, "
        "execute code, import by name, open connections or write files: CRITICAL at import "
        "time, in a method unpickling calls or in a function a pickle names, HIGH in other "
        "functions. An archive whose "
        "modules do none of that is reported LOW: loading it still runs its code."
    ),
    remediation=(
        "Do not load the package. Review every module source in the archive, or ask for the "
        "model's weights (a state_dict in safetensors) and the model code from a trusted source."
    ),
    references=(_TORCH_PACKAGE_DOC,),
)

DANGEROUS_EXTERN = Rule(
    id="HEX-TPK-002",
    title="torch.package imports a dangerous module from the environment",
    type="untrusted_code_dependency",
    severity=Severity.MEDIUM,
    cwe=("CWE-829",),
    summary="The archive's extern_modules list names a module that runs commands or code.",
    doc=(
        "A torch.package archive lists in .data/extern_modules the modules that its code "
        "and pickles take from the loading environment instead of the archive. Model "
        "packages extern torch, numpy and the standard containers; a package that externs "
        "os, subprocess, socket, ctypes, runpy, importlib, pickle or builtins-level "
        "evaluation helpers gives its modules and pickles a direct path to commands and "
        "code execution on the loading machine."
    ),
    remediation=(
        "Find which module or pickle uses the extern module and why; re-export the package "
        "without it, or do not load it."
    ),
    references=(_TORCH_PACKAGE_DOC,),
)
