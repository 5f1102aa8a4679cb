"""HEX-PAY: data hidden inside or beside model content (the ``entropy`` scanner)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_CWE506 = "https://cwe.mitre.org/data/definitions/506.html"

EMBEDDED_EXECUTABLE = Rule(
    id="HEX-PAY-001",
    title="Executable code embedded in or shipped with a model",
    type="embedded_executable",
    severity=Severity.HIGH,
    cwe=("CWE-506",),
    summary="An ELF, PE or Mach-O binary or a script sits inside a model file or container.",
    doc=(
        "Model files hold tensors and metadata, never machine code. A native executable or "
        "shared library (ELF, PE, Mach-O) found inside a model's bytes, or packed as a member "
        "of a model container (a .so inside a PyTorch zip), is a dropper waiting for a "
        "loader gadget or a user to run it. Scripts with a shebang or Python source packed "
        "into data-only containers are reported too (MEDIUM, LOW in generic archives)."
    ),
    remediation=(
        "Do not run or load anything from the artifact; extract the binary in a sandbox and "
        "analyse it, and obtain the model from a trusted source."
    ),
    references=(_CWE506,),
)

TRAILING_DATA = Rule(
    id="HEX-PAY-002",
    title="Data after the format's logical end",
    type="trailing_data",
    severity=Severity.MEDIUM,
    cwe=("CWE-506",),
    summary="Bytes follow the last tensor, array, chunk or central directory of the file.",
    doc=(
        "Every format hex understands has a logical end: safetensors and GGUF end with the "
        "last tensor's data, NPY after the array, PNG at IEND, zip at the end of the central "
        "directory. Loaders never read what follows, so appended bytes are invisible to them "
        "and to users, and are where payloads and second formats (polyglots) are hidden. "
        "HIGH when the appended bytes are themselves code (an executable, pickle or script)."
    ),
    remediation="Strip the appended data or obtain a clean copy; analyse what was appended.",
    references=(_CWE506,),
)

HIGH_ENTROPY_BLOB = Rule(
    id="HEX-PAY-003",
    title="High-entropy blob in model metadata or configuration",
    type="encoded_blob",
    severity=Severity.MEDIUM,
    cwe=("CWE-506",),
    summary="A long base64, hex or random-looking string sits where structure is expected.",
    doc=(
        "Configs and metadata of models are short, readable values. A long base64 or hex "
        "string, or random-looking text, in a JSON config or in safetensors/GGUF metadata is "
        "how encoded payloads are smuggled (Keras Lambda layers store marshalled bytecode "
        "this way). hex decodes the blob and reports what it is; HIGH when it decodes to "
        "code (marshalled Python, a pickle, an executable or an archive)."
    ),
    remediation="Decode and review the value; remove it if it is not needed by the model.",
    references=(_CWE506, "https://nvd.nist.gov/vuln/detail/CVE-2024-3660"),
)

LSB_PAYLOAD = Rule(
    id="HEX-PAY-004",
    title="Payload hidden in the low bits of float weights",
    type="weight_steganography",
    severity=Severity.HIGH,
    cwe=("CWE-506",),
    summary="The lowest mantissa bits of a float tensor carry a file or structured data.",
    doc=(
        "Malware has been hidden in neural networks by overwriting the lowest mantissa bits "
        "of float weights (EvilModel, StegoNet, MaleficNet): accuracy barely changes, and a "
        "small loader script reassembles the payload. hex reassembles the low 1 to 8 bits of "
        "sampled weights and reports a recognisable file header there, or bit statistics of "
        "the low planes that disagree with the planes right above them, which trained and "
        "quantised weights do not show."
    ),
    remediation=(
        "Treat the model as a malware carrier: do not run scripts shipped with it, and "
        "obtain the weights from a trusted source."
    ),
    references=(_CWE506, "https://arxiv.org/abs/2107.08590"),
)
