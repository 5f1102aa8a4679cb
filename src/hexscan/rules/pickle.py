"""HEX-PKL: what a pickle stream would do when loaded (CWE-502)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_REFS = ("https://cwe.mitre.org/data/definitions/502.html",
         "https://docs.python.org/3/library/pickle.html#restricting-globals")

DANGEROUS_GLOBAL = Rule(
    id="HEX-PKL-001",
    title="Pickle imports a dangerous callable or module",
    type="unsafe_deserialization",
    severity=Severity.CRITICAL,
    cwe=("CWE-502",),
    summary="Loading the pickle imports or calls something that runs commands, code or I/O.",
    doc=(
        "A pickle is a program for a small stack machine, and loading it imports and calls "
        "whatever globals the stream names. hex follows the stream symbolically, without "
        "importing anything, and found a global such as os.system, builtins.eval, "
        "subprocess.Popen, importlib or marshal that gives the file's author code execution "
        "on the machine that loads it (torch.load with weights_only=False, joblib.load, "
        "pickle.load, numpy.load with allow_pickle)."
    ),
    remediation=(
        "Do not load this file. Obtain the model in a format that cannot run code "
        "(safetensors, ONNX, GGUF) or from a source you trust, and load PyTorch checkpoints "
        "with torch.load's weights_only mode switched on."
    ),
    references=_REFS,
)

UNSAFE_CALL = Rule(
    id="HEX-PKL-002",
    title="Pickle calls a callable outside the allow-list",
    type="unsafe_deserialization",
    severity=Severity.HIGH,
    cwe=("CWE-502",),
    summary="Loading the pickle calls a function that ordinary model files never call.",
    doc=(
        "Model pickles rebuild tensors, arrays and estimators through a small, known set of "
        "functions. This stream calls (REDUCE, INST/OBJ, __setstate__) or overwrites a global "
        "that is on neither the allow-list nor the deny-list, with arguments chosen by the "
        "file's author; published bypasses use exactly such lesser-known gadgets."
    ),
    remediation=(
        "Review what the named function does with the arguments shown before loading; if it "
        "is a legitimate part of your model's library, allow it in the pickle_policy table "
        "of hex.toml."
    ),
    references=_REFS,
)

UNKNOWN_CLASS = Rule(
    id="HEX-PKL-003",
    title="Pickle constructs a class that requires code you trust",
    type="unsafe_deserialization",
    severity=Severity.LOW,
    cwe=("CWE-502",),
    summary="Loading the pickle instantiates (or imports) a class outside the allow-list.",
    doc=(
        "The stream creates an instance of a class through the standard object protocol "
        "(for example a user's own __main__.Net saved by a whole-model torch.save). That "
        "alone runs no attacker-chosen call, but loading it imports the class's module, so "
        "the file is only as safe as that code. hex reports it so it is never silent."
    ),
    remediation=(
        "Make sure the module that defines the class is code you trust, or save the model's "
        "state_dict / weights instead of the whole object."
    ),
    references=_REFS,
)

UNKNOWN_EXTENSION = Rule(
    id="HEX-PKL-004",
    title="Pickle uses an unregistered extension code",
    type="unsafe_deserialization",
    severity=Severity.HIGH,
    cwe=("CWE-502",),
    summary="EXT1/EXT2/EXT4 opcodes name a global through the copyreg registry.",
    doc=(
        "Extension codes import a global by number through copyreg's extension registry, "
        "which is empty in a standard interpreter. A loader with a custom registry decides "
        "what the number imports, so a scanner cannot see the name; ordinary model files "
        "never use extension codes."
    ),
    remediation="Do not load the file unless you know which registry the loader uses.",
    references=_REFS,
)

MALFORMED_PICKLE = Rule(
    id="HEX-PKL-005",
    title="Malformed pickle stream",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-502", "CWE-20"),
    summary="The pickle breaks part way; a loader runs what came before the break.",
    doc=(
        "The unpickler executes opcodes as it reads them, so a stream that is truncated or "
        "corrupt after a REDUCE has already run its payload when the error is raised. "
        "Broken streams are also a known way to make scanners give up. hex judges everything "
        "up to the break and reports the break itself."
    ),
    remediation="Do not load the file; obtain an intact copy and verify its checksum.",
    references=_REFS,
)

PICKLE_LIMIT = Rule(
    id="HEX-PKL-006",
    title="Pickle analysis stopped at a limit",
    type="resource_limit",
    severity=Severity.MEDIUM,
    cwe=("CWE-400",),
    summary="The stream exceeds an analysis bound; the part past it was not judged.",
    doc=(
        "hex bounds the opcodes, memo, stack, value sizes and time it spends on one pickle so "
        "that a hostile stream cannot exhaust the scanner. When a bound is reached the rest "
        "of the stream was not analysed, which is reported rather than passed as clean."
    ),
    remediation="Inspect the file by other means before loading it.",
    references=_REFS,
)

NESTED_PICKLE = Rule(
    id="HEX-PKL-007",
    title="Pickle embedded in a pickled value",
    type="unsafe_deserialization",
    severity=Severity.LOW,
    cwe=("CWE-502",),
    summary="A str/bytes value holds another pickle (raw, base64 or hex).",
    doc=(
        "A pickle hidden inside a string of another pickle runs when something loads it "
        "(for example a custom __setstate__ or torch.storage._load_from_bytes). hex "
        "analyses embedded pickles recursively and reports their findings with their own "
        "severity; this finding marks where one was found."
    ),
    remediation="Review the embedded pickle's findings; do not load it if any is serious.",
    references=_REFS,
)

TORCHSCRIPT_PYTHON = Rule(
    id="HEX-PKL-008",
    title="TorchScript code reaches the Python interpreter",
    type="unsafe_deserialization",
    severity=Severity.CRITICAL,
    cwe=("CWE-502", "CWE-94"),
    summary="A code/ member of a TorchScript archive names Python ops, builtins or modules.",
    doc=(
        "torch.jit.load compiles the Python-like sources under code/ with the TorchScript "
        "compiler, which has no exec, eval or __import__ and cannot import Python modules. "
        "torch.jit.save never writes such names, so their presence means the archive was "
        "edited by hand: prim::PythonOp calls back into the interpreter, and exec/eval, "
        "__import__ or os/subprocess names are Python escape hatches meant for a lenient or "
        "patched loader. Calls to a custom operator namespace need a native library that the "
        "loading process has registered and are reported at low severity."
    ),
    remediation=(
        "Do not load the archive. Re-export the model from its source with torch.jit.save, or "
        "obtain it in a format without code (safetensors, ONNX)."
    ),
    references=("https://cwe.mitre.org/data/definitions/502.html",
                "https://pytorch.org/docs/stable/jit_language_reference.html"),
)

RULE_FOR_KIND = {
    "dangerous-global": DANGEROUS_GLOBAL,
    "unsafe-call": UNSAFE_CALL,
    "unknown-class": UNKNOWN_CLASS,
    "unknown-extension": UNKNOWN_EXTENSION,
    "malformed": MALFORMED_PICKLE,
    "limit": PICKLE_LIMIT,
    "nested-pickle": NESTED_PICKLE,
}
