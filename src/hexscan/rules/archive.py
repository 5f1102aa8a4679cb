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

PATH_TRAVERSAL = Rule(
    id="HEX-ARC-005",
    title="Member path escapes the archive (zip-slip / tar traversal)",
    type="path_traversal",
    severity=Severity.HIGH,
    cwe=("CWE-22",),
    summary="A member name is absolute, names a drive or UNC share, or climbs out with '..'.",
    doc=(
        "Extracting an archive writes each member at its stored name. Names such as "
        "'../../.bashrc', '/etc/cron.d/x', 'C:\\Windows\\...', '\\\\server\\share\\x' or "
        "'..\\..\\x' (a separator on Windows) make naive extractors, including several model "
        "loaders and hub tools, write outside the target directory (zip-slip). hex never "
        "extracts; it reports the name."
    ),
    remediation="Do not extract the archive with tools that trust member names; rebuild it.",
    references=("https://security.snyk.io/research/zip-slip-vulnerability",
                "https://cwe.mitre.org/data/definitions/22.html"),
)

LINK_ESCAPE = Rule(
    id="HEX-ARC-006",
    title="Archive link points outside the archive",
    type="link_traversal",
    severity=Severity.HIGH,
    cwe=("CWE-59",),
    summary="A symbolic or hard link member targets an absolute path or climbs out of the "
            "archive root.",
    doc=(
        "A link member that points to '/etc/passwd' or '../../x' turns extraction into a read "
        "or write of an arbitrary file: a later member written through the link lands outside "
        "the directory, and a loader that follows the link reads a host file as model data "
        "(CVE-2007-4559 and its many descendants). Links that stay inside the archive are "
        "listed as skipped members, not reported."
    ),
    remediation="Do not extract the archive; remove link members when repackaging.",
    references=("https://nvd.nist.gov/vuln/detail/CVE-2007-4559",
                "https://cwe.mitre.org/data/definitions/59.html"),
)

SPECIAL_MEMBER = Rule(
    id="HEX-ARC-007",
    title="Archive holds a device or FIFO member",
    type="special_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-66",),
    summary="A tar member is a character or block device or a named pipe.",
    doc=(
        "Model archives hold regular files and directories. Device nodes and FIFOs, when "
        "extracted with privileges (or by tools that preserve them), create handles to "
        "hardware or blocking pipes that hang readers; they have no place in a model "
        "distribution and indicate a crafted archive."
    ),
    remediation="Repackage the model with regular files only.",
    references=("https://cwe.mitre.org/data/definitions/66.html",),
)

DUPLICATE_MEMBER = Rule(
    id="HEX-ARC-008",
    title="Archive holds two members with the same name",
    type="duplicate_member",
    severity=Severity.MEDIUM,
    cwe=("CWE-436",),
    summary="The same member name appears more than once; loaders disagree on which wins.",
    doc=(
        "Python's zipfile returns the last entry for a name, miniz-based readers (PyTorch) "
        "and extractors may take the first, and tar extraction overwrites in order. A "
        "duplicate name therefore lets a scanner read one copy while the loader reads the "
        "other, a published scanner bypass. hex scans every copy and reports the duplication."
    ),
    remediation="Repackage the archive with unique names and check which copy is the real one.",
    references=("https://cwe.mitre.org/data/definitions/436.html",),
)

POLYGLOT = Rule(
    id="HEX-ARC-009",
    title="File is two formats at once (polyglot)",
    type="polyglot",
    severity=Severity.MEDIUM,
    cwe=("CWE-436",),
    summary="A zip archive is embedded in a file of another format, or data precedes a zip.",
    doc=(
        "Zip readers locate the archive from the end of the file, while other loaders read "
        "from the start, so a PNG, pickle or model with a zip appended (or data prepended to "
        "a zip) is read as different content by different tools. Scanners that pick one "
        "reading miss what the other loader sees; hex scans the file both ways and reports "
        "the double identity."
    ),
    remediation="Treat the file as hostile: find out which tool reads which part.",
    references=("https://cwe.mitre.org/data/definitions/436.html",),
)
