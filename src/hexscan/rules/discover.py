"""HEX-DSC: what discovery notices while walking the scanned tree."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

SYMLINK_ESCAPE = Rule(
    id="HEX-DSC-001",
    title="Symbolic link points outside the scanned tree",
    type="symlink_escape",
    severity=Severity.MEDIUM,
    cwe=("CWE-59",),
    summary="A link in the model tree leads outside it; hex does not follow it.",
    doc=(
        "A model directory that links to files outside itself (for example to ~/.ssh or "
        "/etc) makes loaders and packagers read or ship files the user never meant to "
        "include. hex never follows such a link and reports it."
    ),
    remediation="Replace the link with the file it should be, or remove it.",
    references=("https://cwe.mitre.org/data/definitions/59.html",),
)
