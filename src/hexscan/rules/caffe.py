"""HEX-CAF: Caffe models (.caffemodel NetParameter, .prototxt text)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

PYTHON_LAYER = Rule(
    id="HEX-CAF-001",
    title="Caffe net has a Python layer",
    type="code_execution",
    severity=Severity.HIGH,
    cwe=("CWE-94",),
    summary="A layer of type Python makes Caffe import a module and call a name from it.",
    doc=(
        "A Caffe layer with type 'Python' (V1: PYTHON) carries python_param { module, layer, "
        "param_str }. pycaffe imports the module and calls module.layer with the layer "
        "parameters when the net is built, so the file decides which Python code runs in "
        "the loading process. A module that is a standard library entry point for commands, "
        "code or I/O (os, subprocess, builtins ...) is CRITICAL."
    ),
    remediation=(
        "Load the net only with the named module reviewed and installed from a trusted source; "
        "never with an unknown module name on the Python path."
    ),
    references=("https://caffe.berkeleyvision.org/tutorial/layers/python.html",
                "https://cwe.mitre.org/data/definitions/94.html"),
)

FILE_WRITING_LAYER = Rule(
    id="HEX-CAF-002",
    title="Caffe layer writes a file chosen by the model",
    type="file_write",
    severity=Severity.MEDIUM,
    cwe=("CWE-73",),
    summary="An HDF5Output layer writes its inputs to a file path stored in the net.",
    doc=(
        "HDF5Output layers write blobs to hdf5_output_param.file_name whenever the net runs "
        "forward. The path comes from the model file, so running someone else's net can "
        "create or overwrite files wherever the process may write; absolute paths and paths "
        "with '..' are HIGH."
    ),
    remediation="Remove the layer from the net definition before running it.",
    references=("https://caffe.berkeleyvision.org/tutorial/layers/hdf5output.html",),
)
