"""HEX-CML: Core ML models (.mlmodel protobuf, .mlpackage directories)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_SPEC = "https://apple.github.io/coremltools/mlmodel/index.html"

CUSTOM_LAYER = Rule(
    id="HEX-CML-001",
    title="Core ML neural network uses a custom layer",
    type="custom_layer",
    severity=Severity.MEDIUM,
    cwe=("CWE-470",),
    summary="A layer names an Objective-C/Swift class (className) that the app instantiates.",
    doc=(
        "A NeuralNetwork layer of type custom names a class by string; Core ML looks the "
        "class up in the running application and instantiates it to evaluate the layer. The "
        "model's author therefore chooses which code in the host process runs, with "
        "parameters and weights of their choosing. Legitimate uses exist, but a downloaded "
        "model should not need classes the app did not knowingly ship."
    ),
    remediation=(
        "Check that the named class is part of your application and expected for this model; "
        "otherwise do not load it."
    ),
    references=(_SPEC, "https://cwe.mitre.org/data/definitions/470.html"),
)

CUSTOM_MODEL = Rule(
    id="HEX-CML-002",
    title="Core ML model is a customModel",
    type="custom_model",
    severity=Severity.MEDIUM,
    cwe=("CWE-470",),
    summary="The whole model is implemented by a class named in the file (className).",
    doc=(
        "A CustomModel tells Core ML to instantiate the named class (MLCustomModel) and hand "
        "it the parameters stored in the file; nothing of the model's computation is defined "
        "by the file itself. The model's author picks which host class runs, which is the "
        "same class-selection risk as a custom layer, for the whole model."
    ),
    remediation="Load it only if the named class is your own, reviewed implementation.",
    references=(_SPEC,),
)

LINKED_MODEL = Rule(
    id="HEX-CML-003",
    title="Core ML model links to an external model file",
    type="external_reference",
    severity=Severity.MEDIUM,
    cwe=("CWE-73",),
    summary="A linkedModel makes the loader open another compiled model by name and search "
            "path.",
    doc=(
        "A LinkedModel refers to a separate compiled model file by file name and search path; "
        "what runs depends on a file outside the scanned artifact, which hex cannot vouch "
        "for. A path that is absolute or climbs out of the model's directory with '..' lets "
        "the model pull in any file on the machine and is reported HIGH."
    ),
    remediation="Scan the linked model too, and keep linked paths relative and inside the "
                "package.",
    references=(_SPEC,),
)

MANIFEST_PATH_ESCAPE = Rule(
    id="HEX-CML-004",
    title="Core ML package manifest path escapes the package",
    type="path_traversal",
    severity=Severity.HIGH,
    cwe=("CWE-22",),
    summary="An item of Manifest.json points outside the .mlpackage directory.",
    doc=(
        "An .mlpackage is a directory whose Manifest.json lists its items by path relative to "
        "Data/. A path that is absolute, names a drive or climbs out with '..' makes tools "
        "that open the package read (or, when they copy or compile it, write) files outside "
        "it: a classic path traversal, which no package written by coremltools contains."
    ),
    remediation="Do not open the package; rebuild it with coremltools from a trusted model.",
    references=("https://cwe.mitre.org/data/definitions/22.html",),
)
