"""HEX-KER: what loading a Keras model (H5, .keras, JSON config) would import or run."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_KERAS_REFS = ("https://keras.io/api/models/model_saving_apis/model_saving_and_loading/",
               "https://cwe.mitre.org/data/definitions/502.html")

LAMBDA_CODE = Rule(
    id="HEX-KER-001",
    title="Keras Lambda layer carries executable code",
    type="code_execution",
    severity=Severity.HIGH,
    cwe=("CWE-502", "CWE-94"),
    summary="A Lambda layer (or lambda object) holds marshalled Python bytecode or source.",
    doc=(
        "Keras saves a Lambda layer's function as base64 of marshal.dumps(func.__code__) and "
        "rebuilds it with marshal.loads when the model is loaded, so the file ships Python "
        "bytecode that runs on the loading machine (CVE-2024-3660). Keras 3 refuses it only "
        "with safe_mode on, and the legacy H5 path ignores safe_mode (CVE-2025-9905). hex "
        "reads the marshal structure without unmarshalling it and lists the names and strings "
        "the code uses: CRITICAL when they reach the OS, imports or eval, HIGH for any other "
        "bytecode (its names can be hidden in strings decoded at run time) or when the code "
        "cannot be read, MEDIUM for source text, which keras never compiles. Lambda objects "
        "are found wherever keras deserialises them: the Lambda layer's function and "
        "output_shape ('code'), and any nested __lambda__ object such as an activation or "
        "initializer ('value', a string or a [code, defaults, closure] list)."
    ),
    remediation=(
        "Load the model only with safe_mode=True in a current Keras 3, or rebuild the model "
        "in code and load just its weights. Replace Lambda layers with registered custom "
        "layers whose code you ship and review."
    ),
    references=_KERAS_REFS + ("https://nvd.nist.gov/vuln/detail/CVE-2024-3660",
                              "https://nvd.nist.gov/vuln/detail/CVE-2025-9905"),
)

DANGEROUS_REFERENCE = Rule(
    id="HEX-KER-002",
    title="Keras config references a dangerous module or callable",
    type="unsafe_deserialization",
    severity=Severity.CRITICAL,
    cwe=("CWE-502", "CWE-470"),
    summary="A module/class_name/function entry names os, subprocess, builtins.eval and the like.",
    doc=(
        "Keras configs name the objects to rebuild by module and class or function name, and "
        "the deserializer imports that module and looks the name up. Before Keras 3.9 any "
        "module could be named even with safe_mode on (CVE-2025-1550), and a Lambda's "
        "'function' with a 'module' resolves a named function in Keras 2. A config entry "
        "that names os.system, subprocess, builtins.exec/eval, importlib or similar makes "
        "loading the model call it with arguments from the file."
    ),
    remediation=(
        "Do not load the model. Upgrade Keras (3.9 or later restricts modules in safe mode) "
        "and load untrusted models with safe_mode=True in a sandbox."
    ),
    references=_KERAS_REFS + ("https://nvd.nist.gov/vuln/detail/CVE-2025-1550",),
)

CUSTOM_OBJECT = Rule(
    id="HEX-KER-003",
    title="Keras model needs custom code to load",
    type="untrusted_code_dependency",
    severity=Severity.LOW,
    cwe=("CWE-829",),
    summary="A layer or object is not a Keras built-in: loading imports or calls user code.",
    doc=(
        "A class_name that is not a Keras built-in layer or object, or a module outside the "
        "Keras namespaces, is resolved through custom_objects, the registration table or an "
        "import of the named module. Loading then runs that module's code, so the model is "
        "only as safe as the package providing it; a model that asks its users to install a "
        "package is a supply-chain foothold. hex reports it so it is never silent: LOW for a "
        "bare class name (resolved only through objects the user registers), HIGH for a "
        "Keras 3 'module' outside Keras and the known Keras libraries, which Keras before 3.9 "
        "imports with importlib while deserialising, even in safe mode (CVE-2025-1550)."
    ),
    remediation=(
        "Make sure the package that provides the custom objects is one you trust, pinned and "
        "reviewed, before loading the model."
    ),
    references=_KERAS_REFS,
)

SAFE_MODE_BYPASS = Rule(
    id="HEX-KER-004",
    title="Keras config uses a known safe_mode bypass gadget",
    type="unsafe_deserialization",
    severity=Severity.CRITICAL,
    cwe=("CWE-502", "CWE-693"),
    summary="The config names a Keras API that disables safe_mode, downloads or nests models.",
    doc=(
        "Published Keras exploits stay inside the keras namespace so that module checks pass: "
        "keras.config.enable_unsafe_deserialization switches safe_mode off while the model "
        "loads (CVE-2025-9906), keras.utils.get_file downloads attacker files to chosen paths "
        "(CVE-2025-8747), keras.models.load_model nests a second model load, "
        "TorchModuleWrapper unpickles a torch module (CVE-2025-49655), and TFOpLambda can name "
        "TensorFlow file or Python ops. Naming them in a saved config has no benign use."
    ),
    remediation=(
        "Do not load the model. Upgrade Keras to a release with the fixes and load untrusted "
        "models with safe_mode=True in a sandbox."
    ),
    references=_KERAS_REFS + ("https://nvd.nist.gov/vuln/detail/CVE-2025-9906",
                              "https://nvd.nist.gov/vuln/detail/CVE-2025-8747",
                              "https://nvd.nist.gov/vuln/detail/CVE-2025-49655"),
)

REGISTRATION_MISMATCH = Rule(
    id="HEX-KER-005",
    title="Keras registered_name disagrees with the object's class",
    type="integrity",
    severity=Severity.MEDIUM,
    cwe=("CWE-349",),
    summary="registered_name resolves a different object than class_name/module show.",
    doc=(
        "Keras 3 looks an object up by its registered_name ('package>Name') before it looks "
        "at module and class_name. A config that shows a built-in class_name such as Dense "
        "while registered_name names another package or callable makes the loader build "
        "something other than what a reviewer or a module-based check sees. Keras writes "
        "registered_name equal to the class (or null for built-ins), so a mismatch is a "
        "masquerade."
    ),
    remediation=(
        "Do not load the model until the registered objects are explained; re-save it with "
        "the code that really defines its objects."
    ),
    references=_KERAS_REFS,
)
