"""HEX-FMT: what a file is, and whether hex could read it."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

EXTENSION_MISMATCH = Rule(
    id="HEX-FMT-001",
    title="File content does not match its extension",
    type="format_mismatch",
    severity=Severity.LOW,
    cwe=("CWE-646",),
    summary="The bytes of the file are another format than its name says.",
    doc=(
        "Loaders pick their parser by content (torch.load, joblib.load and pickle.load "
        "read a pickle whatever the file is called), while people and many scanners trust the "
        "extension. A pickle named .safetensors, .png or .json is a classic way to slip "
        "executable content past a review. The finding is MEDIUM when the content can run "
        "code on load and the name claims a data-only format, LOW otherwise."
    ),
    remediation=(
        "Rename the file after its real format, or replace it with a file in the format its "
        "name claims. Treat a code-capable file in disguise as hostile until reviewed."
    ),
    references=("https://cwe.mitre.org/data/definitions/646.html",),
)

MALFORMED = Rule(
    id="HEX-FMT-002",
    title="Malformed or truncated file",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The file is broken in a way that hides its content from a strict reader.",
    doc=(
        "A file that a strict parser rejects may still be read, partly or wholly, by a more "
        "lenient loader: PyTorch ignores zip CRC errors, pickle runs opcodes before it meets "
        "a truncation. Malformed structure is how several published scanner bypasses worked, "
        "so hex reports it instead of passing the file as clean."
    ),
    remediation=(
        "Obtain an intact copy from a trusted source and verify its checksum. Do not load "
        "the broken file."
    ),
)

LIMIT_EXCEEDED = Rule(
    id="HEX-FMT-003",
    title="A scan limit was exceeded",
    type="resource_limit",
    severity=Severity.MEDIUM,
    cwe=("CWE-400",),
    summary="The file needs more work than hex's limits allow, so part of it was not inspected.",
    doc=(
        "Every reader in hex is bounded in size, depth, count and time so that a hostile "
        "file cannot exhaust the scanner. Content past the bound was not inspected, and a "
        "file built to exceed a scanner's bounds is itself suspicious."
    ),
    remediation=(
        "Inspect the file by other means, or raise the limit in hex.toml if the file is "
        "legitimately this large."
    ),
)
