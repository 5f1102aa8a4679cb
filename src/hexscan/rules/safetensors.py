"""HEX-SFT: safetensors header integrity and what its metadata carries."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_SPEC = "https://huggingface.co/docs/safetensors/index"

MALFORMED_SAFETENSORS_HEADER = Rule(
    id="HEX-SFT-001",
    title="Malformed safetensors header",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The 8-byte length or the JSON header of the safetensors file is broken.",
    doc=(
        "A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON "
        "that describe every tensor, and the raw tensor bytes. hex found a header length that "
        "points past the end of the file, a truncated file, bytes that are not UTF-8, text "
        "that is not JSON, or a JSON value that is not an object of tensor entries. The "
        "safetensors library refuses such a file, but hand-written readers and other tools "
        "may read it differently, which is how a file shows one thing to a scanner and "
        "another to a loader."
    ),
    remediation=(
        "Obtain an intact copy from the publisher and verify its checksum; re-save the "
        "tensors with the safetensors library if you produced the file yourself."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/20.html"),
)

HEADER_TOO_LARGE = Rule(
    id="HEX-SFT-002",
    title="safetensors header larger than the format allows",
    type="resource_limit",
    severity=Severity.MEDIUM,
    cwe=("CWE-400", "CWE-789"),
    summary="The declared JSON header is larger than the bound loaders accept (100 MB).",
    doc=(
        "The safetensors library rejects headers larger than 100,000,000 bytes because a "
        "reader must hold the whole header in memory before it can check anything; a "
        "header length close to the 64-bit maximum is a memory-exhaustion attack on tools "
        "that trust it. hex reads no more than its own bound and reports the file instead "
        "of allocating what the header claims. The same rule reports a header that is "
        "within the format's bound but larger than hex analyses."
    ),
    remediation=(
        "Do not load the file with readers that trust the header length. Legitimate "
        "safetensors headers are a few kilobytes to a few megabytes."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/789.html"),
)

DUPLICATE_KEYS = Rule(
    id="HEX-SFT-003",
    title="Duplicate keys in the safetensors header",
    type="parser_differential",
    severity=Severity.HIGH,
    cwe=("CWE-436",),
    summary="A tensor name, entry field or metadata key appears twice in the JSON header.",
    doc=(
        "JSON parsers disagree on duplicate keys: most keep the last value, some keep the "
        "first, some reject the document. No safetensors writer produces duplicates, so a "
        "header that has them was edited by hand, typically to show one tensor layout or "
        "one metadata value to a scanner or a review tool and another to the loader. hex "
        "inspects every copy and reports the duplication itself."
    ),
    remediation=(
        "Treat the file as tampered. Re-export the tensors with the safetensors library "
        "from a trusted source."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/436.html"),
)

INVALID_TENSOR_ENTRY = Rule(
    id="HEX-SFT-004",
    title="Invalid tensor entry in the safetensors header",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="A tensor has an unknown dtype, a bad shape or unusable data_offsets.",
    doc=(
        "Every tensor entry must name one of the dtypes the format defines, a shape made of "
        "non-negative integers and a pair of data_offsets [begin, end] with begin <= end. "
        "An entry that breaks these rules is rejected by the safetensors library and can "
        "drive naive readers into integer overflows or huge allocations (a shape whose "
        "product does not fit in 64 bits, a negative dimension). It does not occur in files "
        "written by the library."
    ),
    remediation=(
        "Do not load the file with custom readers; obtain a copy written by the "
        "safetensors library."
    ),
    references=(_SPEC,),
)

INCONSISTENT_OFFSETS = Rule(
    id="HEX-SFT-005",
    title="Tensor data offsets are inconsistent",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20", "CWE-125"),
    summary="Tensors overlap, leave gaps, point outside the data or disagree with dtype x shape.",
    doc=(
        "In a valid file each tensor's byte span equals the number of elements times the "
        "dtype size, and the spans tile the data section from offset 0 without gaps or "
        "overlaps. Overlapping spans make two tensors alias the same bytes, spans past the "
        "end make readers read out of bounds, and gaps hold bytes no tensor accounts for, a "
        "place to hide a payload. The safetensors library rejects all of these; other "
        "readers (memory-mapping tools, converters) may not."
    ),
    remediation=(
        "Obtain an intact copy. If the gaps hold data, inspect it; never load the file with "
        "readers that skip these checks."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/125.html"),
)

TRAILING_TENSOR_DATA = Rule(
    id="HEX-SFT-006",
    title="Bytes after the last tensor",
    type="hidden_data",
    severity=Severity.MEDIUM,
    cwe=("CWE-506",),
    summary="The file continues after the data the header describes.",
    doc=(
        "The header describes every byte of a safetensors data section, so bytes after the "
        "last tensor belong to nothing. The safetensors library refuses such a file "
        "('file not fully covered'), yet the bytes are a convenient place for a second "
        "file: a pickle, a zip or an executable appended to a model makes a polyglot that "
        "another loader or a script reads. The finding is HIGH when the extra bytes are "
        "recognisably such a payload."
    ),
    remediation=(
        "Inspect the extra bytes (their offset is in the evidence) and remove them, or "
        "obtain a clean copy of the model."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/506.html"),
)

METADATA_NOT_STRINGS = Rule(
    id="HEX-SFT-007",
    title="safetensors metadata is not a string-to-string map",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="__metadata__ is not an object, or holds values that are not strings.",
    doc=(
        "The format defines __metadata__ as a flat map from strings to strings. The "
        "safetensors library refuses anything else, so nested objects, numbers or lists in "
        "the metadata come from a hand-made file; tools that read the header with a plain "
        "JSON parser then pass structured, attacker-chosen values to their consumers."
    ),
    remediation="Re-save the model with the metadata as plain strings.",
    references=(_SPEC,),
)

METADATA_CODE = Rule(
    id="HEX-SFT-008",
    title="Code in safetensors metadata",
    type="code_injection",
    severity=Severity.HIGH,
    cwe=("CWE-94", "CWE-78"),
    summary="A metadata value holds a Python or shell snippet (eval, __import__, os.system ...).",
    doc=(
        "safetensors loaders never execute metadata, but the metadata is read by training "
        "scripts, model hubs and conversion tools, and a value such as "
        "\"import os; os.system(...)\" or \"curl ... | sh\" only makes sense if something is "
        "meant to run it (an eval in a loading script, a shell template). Ordinary metadata "
        "holds names, versions, formats and hyperparameters. hex matches patterns of "
        "executable code in every value, also after decoding base64, hex and escapes."
    ),
    remediation=(
        "Find out which tool reads the value and why it looks like code; remove it from "
        "the metadata and never pass metadata to eval, exec or a shell."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/94.html"),
)

METADATA_PICKLE = Rule(
    id="HEX-SFT-009",
    title="Pickle embedded in safetensors metadata",
    type="unsafe_deserialization",
    severity=Severity.CRITICAL,
    cwe=("CWE-502",),
    summary="A metadata value is a pickle stream (raw, base64 or hex).",
    doc=(
        "A pickle inside safetensors metadata smuggles exactly what the safetensors format "
        "exists to exclude: whoever unpickles the value (a custom loader that restores an "
        "optimizer state or a config object) runs its code. hex analyses the embedded "
        "stream with its symbolic pickle machine, without loading it, and reports the "
        "finding at the severity of the worst thing the pickle would do (MEDIUM when it "
        "only builds plain data)."
    ),
    remediation=(
        "Do not unpickle metadata values. Store configuration as JSON text and obtain the "
        "model from a trusted source."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/502.html"),
)

METADATA_EXECUTABLE = Rule(
    id="HEX-SFT-010",
    title="Executable embedded in safetensors metadata",
    type="embedded_executable",
    severity=Severity.HIGH,
    cwe=("CWE-506",),
    summary="A metadata value is (or decodes to) an ELF, PE or Mach-O binary or a script.",
    doc=(
        "A native executable or a shebang script inside metadata has no place in a weights "
        "file; it is a dropper waiting for a loading script or a user to write it out and run "
        "it. hex checks raw values and their base64 / hex decodings for executable magic "
        "numbers."
    ),
    remediation="Treat the file as malicious; obtain the model from a trusted source.",
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/506.html"),
)

METADATA_URL = Rule(
    id="HEX-SFT-011",
    title="Network indicator in safetensors metadata",
    type="network_indicator",
    severity=Severity.LOW,
    cwe=("CWE-200",),
    summary="A metadata value holds a URL; MEDIUM when it looks like a callback or a payload.",
    doc=(
        "URLs in model metadata are usually harmless provenance links, but a callback, "
        "webhook or download address for a script makes the model a pointer to content "
        "that can change after review, and a tool that follows it leaks the user's network "
        "position or fetches a payload. hex lists URLs outside well-known model hosts; the "
        "finding is MEDIUM when the URL uses a raw IP address, an unusual port, an "
        "executable file name or words such as callback, webhook, exfil or payload."
    ),
    remediation=(
        "Check that every URL in the metadata is a legitimate reference and that nothing "
        "fetches it automatically."
    ),
    references=(_SPEC,),
)

METADATA_MARKUP = Rule(
    id="HEX-SFT-012",
    title="Script or HTML injection in safetensors metadata",
    type="markup_injection",
    severity=Severity.MEDIUM,
    cwe=("CWE-79",),
    summary="A metadata value holds <script>, javascript: URLs or HTML event handlers.",
    doc=(
        "Model hubs, dashboards and notebooks display metadata; a value with a script tag or "
        "an event handler runs in the viewer's browser (stored XSS) when a page renders it "
        "without escaping. Legitimate metadata has no reason to carry active markup."
    ),
    remediation=(
        "Remove the markup from the metadata; make sure every tool that displays metadata "
        "escapes it."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/79.html"),
)
