"""HEX-ONX: what loading an ONNX model would read, import or trust."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_ONNX_REFS = ("https://onnx.ai/onnx/repo-docs/ExternalData.html",)

EXTERNAL_DATA_ESCAPE = Rule(
    id="HEX-ONX-001",
    title="ONNX external data points outside the model directory",
    type="path_traversal",
    severity=Severity.HIGH,
    cwe=("CWE-22", "CWE-59"),
    summary="A tensor's external_data location reaches a file outside the model's directory.",
    doc=(
        "ONNX tensors can keep their bytes in a separate file named by the external_data "
        "'location' key, which the loader resolves relative to the model file's directory. A "
        "location with '..' components, an absolute path, or a name that is a symbolic link "
        "to somewhere else makes onnx.load (and tools that save the model again) read or "
        "overwrite arbitrary files: CVE-2022-25882, its bypass CVE-2024-27318, the write side "
        "CVE-2025-51480 and the symlink variant CVE-2026-27489. hex resolves the location "
        "against the model's directory on disk without reading the target."
    ),
    remediation=(
        "Do not load the model. Legitimate external data sits beside the model file under a "
        "plain relative name; re-export the model with save_as_external_data and a simple "
        "location, and upgrade onnx to a release with the path checks."
    ),
    references=_ONNX_REFS + ("https://nvd.nist.gov/vuln/detail/CVE-2022-25882",
                             "https://nvd.nist.gov/vuln/detail/CVE-2024-27318"),
)

PYTHON_OP = Rule(
    id="HEX-ONX-002",
    title="ONNX graph uses an operator that runs Python code",
    type="code_execution",
    severity=Severity.CRITICAL,
    cwe=("CWE-94",),
    summary="A node is a Python operator (PyOp, PythonOp, PyCustomOp ...) that runs Python.",
    doc=(
        "onnxruntime builds with language interop run a PyOp node by importing the module and "
        "class named in the node's attributes and calling its compute method; ORT training's "
        "PythonOp imports the autograd function named by func_name. The model file therefore "
        "chooses Python code that the runtime imports and executes, which is code execution "
        "as soon as the session runs, not a tensor computation. onnxruntime-extensions registers "
        "Python functions as operators of the ai.onnx.contrib domain (PyCustomOp, onnx_op): "
        "such a node runs whatever Python the loading program registered under that name."
    ),
    remediation=(
        "Do not run the model unless the named Python code is yours and reviewed. Export the "
        "computation with standard ONNX operators instead of Python operators."
    ),
    references=("https://onnxruntime.ai/docs/reference/operators/add-custom-op.html",),
)

CUSTOM_DOMAIN_OP = Rule(
    id="HEX-ONX-003",
    title="ONNX graph uses a custom-domain operator",
    type="untrusted_code_dependency",
    severity=Severity.MEDIUM,
    cwe=("CWE-829",),
    summary="A node's operator is outside the ONNX standard and onnxruntime's contrib set.",
    doc=(
        "Operators outside the standard domains (ai.onnx, ai.onnx.ml, training) and "
        "onnxruntime's documented com.microsoft contrib operators are implemented by a "
        "custom-operator library that the program loading the model must register. The model "
        "cannot run without that native or Python code, so it is only as trustworthy as the "
        "library providing the operator, and a look-alike domain can be used to make users "
        "install an attacker's package."
    ),
    remediation=(
        "Make sure the custom-operator library that provides the domain is code you trust, "
        "pinned and reviewed, or replace the operator with standard ones."
    ),
    references=("https://onnx.ai/onnx/operators/",),
)

FUNCTION_SHADOWS_OP = Rule(
    id="HEX-ONX-004",
    title="ONNX model function shadows a standard operator",
    type="integrity",
    severity=Severity.MEDIUM,
    cwe=("CWE-349",),
    summary="A model-local function has the domain and name of a standard operator.",
    doc=(
        "Model-local functions (ModelProto.functions) are sub-graphs that nodes call by domain "
        "and name. A function that reuses the identity of a standard operator such as "
        "ai.onnx Relu changes what a node that looks standard computes, depending on which "
        "definition the runtime prefers; viewers and reviewers show the standard operator. "
        "Exporters name their functions in their own domains, so this is a masquerade."
    ),
    remediation=(
        "Inspect the function's body; re-export the model so that its functions live in the "
        "exporter's own domain."
    ),
    references=("https://onnx.ai/onnx/repo-docs/IR.html#functions",),
)

IMPLAUSIBLE_TENSOR = Rule(
    id="HEX-ONX-005",
    title="ONNX tensor has implausible dimensions or sizes",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20", "CWE-190"),
    summary="Negative or overflowing dims, or stored bytes that disagree with the shape.",
    doc=(
        "Every ONNX tensor declares a data type and dims, and its bytes (raw_data, typed "
        "fields or an external_data range) must match their product. Negative dimensions, "
        "products that overflow 64 bits, and byte counts that disagree with the shape are not "
        "written by exporters; they are how memory-safety bugs in runtimes and converters "
        "(out-of-bounds reads on shape/size mismatches) are reached, and how a scanner that "
        "trusts the header is made to skip data."
    ),
    remediation=(
        "Do not load the model in a native runtime; obtain an intact export and check it with "
        "onnx.checker.check_model."
    ),
    references=("https://onnx.ai/onnx/repo-docs/IR.html#tensor-definition",),
)

EXTERNAL_DATA_RANGE = Rule(
    id="HEX-ONX-006",
    title="ONNX external data range runs outside its file",
    type="out_of_bounds_read",
    severity=Severity.HIGH,
    cwe=("CWE-125", "CWE-190"),
    summary="An external_data offset or length is negative, overflows, or passes the file's end.",
    doc=(
        "A tensor kept in external data names a byte range of its file with the 'offset' and "
        "'length' keys. A range that starts or ends past the end of the file, a negative "
        "offset or length, or a value beyond 64 bits is never written by onnx's "
        "save_as_external_data: loaders without bounds checks read past the file (memory "
        "safety bugs, information disclosure from a mapped region), and runtimes that "
        "parse the numbers differently read different bytes than a reviewer sees. Ranges "
        "of two tensors that overlap, or a range inside the model file itself, make one "
        "set of bytes serve as several tensors (MEDIUM). hex checks the range against the "
        "size of the file on disk, without reading it."
    ),
    remediation=(
        "Do not load the model. Re-export it with onnx's save_as_external_data, which writes "
        "each tensor's range within its file."
    ),
    references=_ONNX_REFS,
)

CODE_IN_METADATA = Rule(
    id="HEX-ONX-007",
    title="ONNX metadata or attribute carries code",
    type="code_in_metadata",
    severity=Severity.HIGH,
    cwe=("CWE-94", "CWE-506"),
    summary="A metadata_props value, doc_string or string attribute holds code or a payload.",
    doc=(
        "ONNX models carry free text: metadata_props, doc_string of the model, graph and "
        "nodes, and string attributes of nodes. Runtimes do not execute it, but serving "
        "code and post-processing scripts read it back (a pre-processing recipe, a label "
        "map, a base64 blob), and a pickle, Python source, a shell command or an "
        "executable stored there is a payload waiting for that reader. Ordinary metadata is "
        "short readable text."
    ),
    remediation=(
        "Do not pass the model's metadata to pickle, eval, exec or a shell. Remove the value "
        "or re-export the model without it."
    ),
    references=("https://onnx.ai/onnx/repo-docs/IR.html#metadata",),
)
