"""HEX-ARC: containers (zip, tar, compressed streams) walked as virtual directories."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

DECOMPRESSION_BOMB = Rule(
    id="HEX-ARC-001",
    title="Decompression bomb",
    type="decompression_bomb",
    severity=Severity.HIGH,
    cwe=("CWE-409",),
    summary="A member expands far beyond its compressed size or beyond the size limits.",
    doc=(
        "A container whose members decompress to many times their stored size, or beyond "
        "the configured total, exhausts disk and memory of whatever extracts it, including "
        "model loaders. hex stops reading at the bound and reports it."
    ),
    remediation="Do not extract or load the archive. Obtain the model from a trusted source.",
    references=("https://cwe.mitre.org/data/definitions/409.html",),
)

NESTING_TOO_DEEP = Rule(
    id="HEX-ARC-002",
    title="Containers nested too deep",
    type="archive_nesting",
    severity=Severity.MEDIUM,
    cwe=("CWE-674",),
    summary="Archives are nested deeper than the configured depth; inner members were not read.",
    doc=(
        "Nesting an archive in another (zip in tar in gzip ...) is a known way to hide a "
        "payload from scanners that stop at the first level. hex walks nested containers up "
        "to a bound and reports anything deeper as not inspected."
    ),
    remediation="Unpack the archive in a sandbox and scan its content, or raise max_depth.",
)

TOO_MANY_MEMBERS = Rule(
    id="HEX-ARC-003",
    title="Too many members in a container",
    type="archive_member_count",
    severity=Severity.MEDIUM,
    cwe=("CWE-400",),
    summary="The container holds more members than the configured bound; the rest were not read.",
    doc=(
        "A container with a huge number of entries is used to exhaust scanners (and hide a "
        "payload after the point where they stop). hex reads up to the bound and reports it."
    ),
    remediation="Inspect the archive by other means, or raise max_members in hex.toml.",
)

ENCRYPTED_MEMBER = Rule(
    id="HEX-ARC-004",
    title="Encrypted member cannot be inspected",
    type="encrypted_member",
    severity=Severity.LOW,
    cwe=("CWE-311",),
    summary="A container member is encrypted, so hex cannot see what it holds.",
    doc=(
        "Encryption hides a member's content from every scanner; a loader given the password "
        "(or a tool that ignores the flag) may still read it. hex cannot vouch for it, so the "
        "scan is reported incomplete (LOW: encryption alone is not an attack). A member that "
        "is flagged as encrypted but holds plain data is MEDIUM: the flag only serves to make "
        "strict readers skip it, while lenient loaders read it, and hex scans it."
    ),
    remediation="Decrypt the archive in a sandbox and scan the content before use.",
)
