"""HEX-TFG: what a TensorFlow SavedModel or frozen GraphDef would do when run."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_TF_REFS = ("https://www.tensorflow.org/api_docs/python/tf/raw_ops",
            "https://github.com/tensorflow/tensorflow/blob/master/SECURITY.md")

PYFUNC_OP = Rule(
    id="HEX-TFG-001",
    title="TensorFlow graph calls back into Python",
    type="code_execution",
    severity=Severity.HIGH,
    cwe=("CWE-94",),
    summary="A node is PyFunc, PyFuncStateless or EagerPyFunc: it runs a Python callable.",
    doc=(
        "tf.py_function and tf.numpy_function put a PyFunc/EagerPyFunc node in the graph that "
        "calls a Python function registered under a token in the running process. The graph "
        "is no longer a pure computation: whatever Python is registered under that token runs "
        "with the user's privileges when the node executes, and TensorFlow's security model "
        "states that models are programs. Models meant for sharing and serving never need it."
    ),
    remediation=(
        "Do not run the graph. Export the model without tf.py_function / tf.numpy_function "
        "(plain TensorFlow ops only) and load it in a sandbox until reviewed."
    ),
    references=_TF_REFS,
)

FILE_WRITE_OP = Rule(
    id="HEX-TFG-002",
    title="TensorFlow graph writes files or sends data out",
    type="file_access",
    severity=Severity.HIGH,
    cwe=("CWE-73", "CWE-200"),
    summary="An op writes a file, dumps tensors to a path or URL, or saves to a fixed path.",
    doc=(
        "Some TensorFlow ops write to the file system when they run: WriteFile, Save/SaveV2/"
        "SaveSlices and MergeV2Checkpoints given a fixed path instead of the saver's own "
        "filename input, PrintV2 with a file:// output stream, the Debug* ops with file:// or "
        "grpc:// debug URLs (tensor dumps to disk or to a remote host), summary writers with "
        "a fixed log directory, summary writes, tf.data snapshot/save ops and "
        "DatasetToTFRecord, remote file-system configuration. Ops that talk to other hosts "
        "(RpcClient/RpcCall/RpcServer*, the TF 1.x Rpc/TryRpc, tf.data service "
        "DataServiceDataset* and RegisterDataset*) are HIGH; collective ops and RemoteCall, "
        "which exchange tensors with other workers, MEDIUM. Running such a graph overwrites "
        "files or leaks data chosen by the model's author. The saver's standard wiring (a "
        "filename placeholder or argument) is not reported."
    ),
    remediation=(
        "Do not run the graph. Re-export the model without the writing ops, or serve it in a "
        "sandbox with a read-only file system and no network."
    ),
    references=_TF_REFS,
)

FILE_READ_OP = Rule(
    id="HEX-TFG-003",
    title="TensorFlow graph reads or lists files",
    type="file_access",
    severity=Severity.MEDIUM,
    cwe=("CWE-73", "CWE-200"),
    summary="An op reads a file, lists a directory, maps a file or restores from a fixed path.",
    doc=(
        "ReadFile, MatchingFiles, ImmutableConst (maps a file into a tensor), "
        "LoadAndRemapMatrix, the file readers and file datasets, lookup tables initialised "
        "from text files, and Restore ops given a fixed path read whatever path the graph "
        "names when it runs. A served model that reads a path under the author's control can "
        "exfiltrate it through its outputs. DecodeProtoV2/EncodeProto whose "
        "descriptor_source is a path (not local:// or bytes://) read that file and are HIGH. "
        "The finding is HIGH when the path is a constant "
        "that escapes the model (absolute, '..', a URL), MEDIUM otherwise."
    ),
    remediation=(
        "Check which paths the graph reads before serving it; serve models in a sandbox "
        "whose file system holds nothing secret."
    ),
    references=_TF_REFS,
)

ASSET_ESCAPE = Rule(
    id="HEX-TFG-004",
    title="SavedModel asset path escapes the model directory",
    type="path_traversal",
    severity=Severity.HIGH,
    cwe=("CWE-22",),
    summary="An AssetFileDef filename is absolute or climbs out with '..'.",
    doc=(
        "A SavedModel lists its asset files (vocabularies, lookup tables) by file name, and "
        "the loader joins each name to the SavedModel's assets/ directory and feeds the path "
        "to the graph, which then reads that file. An absolute name or one with '..' "
        "components makes loading read a file outside the model, for example a credentials "
        "file that then flows into the model's outputs."
    ),
    remediation=(
        "Do not load the SavedModel; re-export it so that its assets are plain names inside "
        "assets/."
    ),
    references=("https://www.tensorflow.org/guide/saved_model",),
)
