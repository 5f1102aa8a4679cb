"""HEX-TFL: TensorFlow Lite flatbuffers (operators and buffers)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_SELECT = "https://www.tensorflow.org/lite/guide/ops_select"
_CUSTOM = "https://www.tensorflow.org/lite/guide/ops_custom"

FLEX_DANGEROUS_OP = Rule(
    id="HEX-TFL-001",
    title="TFLite model uses a TF Select op that touches files, the network or code",
    type="dangerous_operator",
    severity=Severity.HIGH,
    cwe=("CWE-73", "CWE-94"),
    summary="A Flex (TF Select) operator reads or writes files, talks to the network or runs "
            "Python when the model is invoked.",
    doc=(
        "TFLite models can embed full TensorFlow operators (TF Select, custom_code 'Flex<Op>') "
        "that the Flex delegate executes with the real TensorFlow kernels. Ops such as "
        "ReadFile, WriteFile, MatchingFiles, SaveV2, PrintV2 or PyFunc let a model read or "
        "overwrite files chosen by its author, leak data or run Python on the machine that "
        "invokes it, which an image classifier or language model never needs."
    ),
    remediation=(
        "Do not run the model with the Flex delegate. Rebuild it with builtin operators only "
        "(converter target_spec.supported_ops = TFLITE_BUILTINS) from a trusted source."
    ),
    references=(_SELECT, "https://cwe.mitre.org/data/definitions/73.html"),
)

FLEX_OP = Rule(
    id="HEX-TFL-002",
    title="TFLite model needs TF Select (Flex) ops",
    type="select_operator",
    severity=Severity.LOW,
    cwe=("CWE-829",),
    summary="The model runs full TensorFlow kernels through the Flex delegate.",
    doc=(
        "A Flex op makes the interpreter run a TensorFlow kernel instead of a TFLite builtin, "
        "which needs the much larger TensorFlow runtime linked into the application and widens "
        "the attack surface of the loader to every kernel bug of that runtime. It is not "
        "dangerous by itself; hex lists which ops are needed so that a review can judge them."
    ),
    remediation=(
        "Check that every listed op is expected for this model; prefer a model converted with "
        "builtin ops only."
    ),
    references=(_SELECT,),
)

CUSTOM_OP = Rule(
    id="HEX-TFL-003",
    title="TFLite model uses an unknown custom operator",
    type="custom_operator",
    severity=Severity.LOW,
    cwe=("CWE-829",),
    summary="An operator is implemented by native code that the application has to supply.",
    doc=(
        "A CUSTOM operator names a kernel (custom_code) that the application registers with "
        "the interpreter. The model cannot carry that code, but it decides which registered "
        "native kernel runs and with which custom_options bytes, so an unknown custom op means "
        "the model's behaviour depends on code hex cannot see. Well-known custom ops of the "
        "TFLite support libraries are listed in policy/tflite.toml and not reported."
    ),
    remediation="Find out which library provides the kernel and review it before running.",
    references=(_CUSTOM,),
)

BUFFER_OUT_OF_BOUNDS = Rule(
    id="HEX-TFL-004",
    title="TFLite buffer or table points outside the file",
    type="out_of_bounds_reference",
    severity=Severity.MEDIUM,
    cwe=("CWE-125",),
    summary="A buffer's offset and size (or a tensor's buffer index) lie outside the model.",
    doc=(
        "Buffers of large TFLite models are addressed by an offset and a size relative to the "
        "start of the file, and tensors refer to buffers by index. References past the end of "
        "the file or the buffer table are how out-of-bounds reads in TFLite interpreters were "
        "triggered (several CVEs in tf.lite), and they never occur in a file written by the "
        "converter."
    ),
    remediation="Do not load the model; obtain an intact copy from a trusted source.",
    references=("https://cwe.mitre.org/data/definitions/125.html",),
)
