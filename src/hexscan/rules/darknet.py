"""HEX-DRK: Darknet .weights files and their .cfg network definitions."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_DARKNET = "https://github.com/pjreddie/darknet"

WEIGHT_COUNT_MISMATCH = Rule(
    id="HEX-DRK-001",
    title="Darknet weights size disagrees with the network in the .cfg",
    type="size_mismatch",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The .weights file holds more (or fewer) floats than the .cfg beside it needs.",
    doc=(
        "Darknet reads a .weights file layer by layer, exactly as many floats as each layer "
        "of the .cfg needs, and ignores the rest. Bytes beyond that count are never used as "
        "weights, which makes them a place to hide a payload that travels with the model "
        "(MEDIUM). A file that is too short is truncated or belongs to another network (LOW)."
    ),
    remediation="Use the .cfg the weights were trained with, or obtain an intact copy.",
    references=(_DARKNET,),
)

IMPLAUSIBLE_WEIGHTS = Rule(
    id="HEX-DRK-002",
    title="Darknet weights file does not look like weights",
    type="implausible_header",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The header is implausible or the body is not float32 weights.",
    doc=(
        "A .weights file is a 16 or 20 byte header (version, images seen) followed by float32 "
        "values of ordinary magnitude. A header with no weights after it, an absurd 'seen' "
        "counter or a body whose values are mostly NaN, infinite or huge is not a trained "
        "network but other data wearing the extension."
    ),
    remediation="Do not use the file as a model; find out what it really is.",
    references=(_DARKNET,),
)

CFG_IMPLAUSIBLE = Rule(
    id="HEX-DRK-003",
    title="Darknet .cfg has implausible or unknown settings",
    type="config_sanity",
    severity=Severity.MEDIUM,
    cwe=("CWE-789",),
    summary="Sizes in the .cfg would make Darknet allocate huge buffers, or a section is "
            "unknown.",
    doc=(
        "Darknet trusts the .cfg: width, height, channels, filters and batch are multiplied "
        "into allocation sizes without checks, so absurd values exhaust memory or overflow "
        "size computations in the loader (MEDIUM). Unknown section names are skipped by some "
        "forks and fatal in others, so the same file means different networks (LOW)."
    ),
    remediation="Review the .cfg against the network it claims to be before loading it.",
    references=(_DARKNET, "https://cwe.mitre.org/data/definitions/789.html"),
)
