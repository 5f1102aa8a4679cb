"""HEX-GGF: GGUF / legacy GGML structure (llama.cpp model files)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_SPEC = "https://github.com/ggml-org/ggml/blob/master/docs/gguf.md"
_TALOS = tuple(f"https://nvd.nist.gov/vuln/detail/{cve}" for cve in (
    "CVE-2024-21802", "CVE-2024-21825", "CVE-2024-21836", "CVE-2024-23496", "CVE-2024-23605"))

MALFORMED_GGUF_HEADER = Rule(
    id="HEX-GGF-001",
    title="Malformed GGUF header",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The GGUF header is truncated, has an unsupported version or a broken value.",
    doc=(
        "A GGUF file starts with the magic GGUF, a version (1 to 3), the tensor and "
        "key-value counts, the key-value pairs and the tensor descriptions. hex reads that "
        "header with its own bounded reader and found it truncated, of an unknown version, "
        "with an invalid general.alignment or otherwise not parseable. llama.cpp rejects "
        "such a file, but the history of GGUF parsing bugs shows that other readers "
        "may not fail safely."
    ),
    remediation="Obtain an intact copy from the publisher and verify its checksum.",
    references=(_SPEC,),
)

HOSTILE_LENGTH = Rule(
    id="HEX-GGF-002",
    title="GGUF count or length larger than the file",
    type="memory_corruption",
    severity=Severity.HIGH,
    cwe=("CWE-789", "CWE-190", "CWE-122"),
    summary="A tensor/key count, string length, array length or dimension exceeds what the "
            "file can hold.",
    doc=(
        "GGUF readers allocate from the counts and lengths in the header. A count that the "
        "rest of the file cannot possibly hold (a string of 2^63 bytes, a billion array "
        "elements in a 1 KB file, dimensions whose product overflows) is the pattern of the "
        "heap overflows Cisco Talos reported in llama.cpp's GGUF reader in 2024 "
        "(CVE-2024-21802, CVE-2024-21825, CVE-2024-21836, CVE-2024-23496, CVE-2024-23605). "
        "hex checks each value against the bytes that remain and never allocates what the "
        "file claims."
    ),
    remediation=(
        "Do not open the file with llama.cpp builds older than the fixes or with other "
        "unhardened GGUF readers; treat it as hostile."
    ),
    references=(_SPEC, *_TALOS),
)

BAD_TENSOR_LAYOUT = Rule(
    id="HEX-GGF-003",
    title="GGUF tensor data layout is invalid",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20", "CWE-125"),
    summary="A tensor's offset is unaligned, outside the file, overlapping another tensor, "
            "or inconsistent with its shape and type.",
    doc=(
        "ggml expects the tensors of a GGUF file to follow each other in the data section, "
        "each starting at a multiple of general.alignment, with a size given by the product "
        "of its dimensions and the block size of its type. Offsets that are unaligned, "
        "overlap, point past the end of the file or leave unexplained gaps, and shapes with "
        "more than four dimensions or a row length that is not a whole number of blocks, "
        "make readers read out of bounds or alias data. Files written by llama.cpp and the "
        "gguf library never have them."
    ),
    remediation="Obtain an intact copy; do not load the file with unhardened readers.",
    references=(_SPEC,),
)

UNKNOWN_TYPE = Rule(
    id="HEX-GGF-004",
    title="Unknown GGUF value or tensor type",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20", "CWE-843"),
    summary="A key-value pair or tensor uses a type code the format does not define.",
    doc=(
        "Each metadata value and each tensor carries a type code that tells the reader how "
        "many bytes follow. An unknown code leaves a reader guessing the size (type "
        "confusion); hex stops reading the metadata at an unknown value type because "
        "nothing after it can be located reliably, and reports tensors of unknown "
        "quantisation types."
    ),
    remediation=(
        "Check whether the file was written by a newer llama.cpp than hex knows; otherwise "
        "treat it as corrupt or crafted."
    ),
    references=(_SPEC,),
)

DUPLICATE_NAMES = Rule(
    id="HEX-GGF-005",
    title="Duplicate GGUF key or tensor name",
    type="parser_differential",
    severity=Severity.MEDIUM,
    cwe=("CWE-436",),
    summary="The same metadata key or tensor name appears twice.",
    doc=(
        "ggml rejects duplicate keys and tensor names, while dictionary-based readers keep "
        "one of the copies silently; which copy wins differs between tools. A duplicate "
        "chat template or tensor is therefore a way to show a reviewer one value and a "
        "runtime another. hex analyses every copy."
    ),
    remediation="Treat the file as tampered; obtain the model from a trusted source.",
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/436.html"),
)

GGUF_LIMIT = Rule(
    id="HEX-GGF-006",
    title="GGUF analysis stopped at a limit",
    type="resource_limit",
    severity=Severity.MEDIUM,
    cwe=("CWE-400",),
    summary="The header has more keys, tensors or metadata bytes than hex analyses.",
    doc=(
        "hex bounds the number of key-value pairs, tensors, array elements it walks and the "
        "time it spends on one header, so that a hostile file cannot exhaust the scanner. "
        "The part of the header past the bound was not inspected, which is reported rather "
        "than passed as clean."
    ),
    remediation=(
        "Inspect the file by other means, or raise the bound in the gguf policy if the "
        "model is legitimately this large."
    ),
    references=(_SPEC,),
)

BAD_GGML_HEADER = Rule(
    id="HEX-GGF-007",
    title="Implausible legacy GGML header",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="A pre-GGUF (ggml/ggmf/ggjt) file has an unknown version or impossible "
            "hyperparameters.",
    doc=(
        "Legacy GGML files (magics lmgg, fmgg, tjgg) have no self-describing metadata: after "
        "the magic and version come fixed hyperparameters (vocabulary size, embedding "
        "width, layer count ...) that readers use to size their buffers. hex checks only "
        "this header; a version that no writer produced or a hyperparameter that is "
        "negative or absurdly large is a corrupt or crafted file."
    ),
    remediation=(
        "Convert legacy models to GGUF with llama.cpp from a trusted copy; do not load this "
        "file."
    ),
    references=(_SPEC,),
)

GGUF_TRAILING_DATA = Rule(
    id="HEX-GGF-008",
    title="Data after the GGUF tensor data",
    type="hidden_data",
    severity=Severity.LOW,
    cwe=("CWE-506",),
    summary="The file continues past the last tensor (a polyglot or an appended payload).",
    doc=(
        "The tensor descriptions account for the data section of a GGUF file. Bytes after "
        "the last tensor are ignored by llama.cpp, which makes them a place to append a "
        "second file (llamafile-style executables, zip archives, pickles). The finding is "
        "LOW for unexplained bytes and HIGH when they start with the signature of an "
        "executable, an archive or a pickle."
    ),
    remediation="Inspect the appended bytes (offset in the evidence) before using the file.",
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/506.html"),
)
