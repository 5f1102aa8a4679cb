"""HEX-SUP: supply-chain risk around a model: its dependencies and its own reputation."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

VULNERABLE_DEPENDENCY = Rule(
    id="HEX-SUP-001",
    title="Dependency with a known vulnerability",
    type="vulnerable_dependency",
    severity=Severity.HIGH,
    cwe=("CWE-1395",),
    summary="A pinned or locked dependency of the model matches a published advisory.",
    doc=(
        "A requirements file, lock file or manifest beside the model pins a package version "
        "that an OSV advisory (GHSA, PYSEC, CVE) lists as affected. Installing the model's "
        "environment installs the vulnerable code; for the ML stack that often means remote "
        "code execution while loading a model (torch.load, Keras Lambda, transformers "
        "checkpoints). One finding per package version and bug: the GHSA, PYSEC and CVE ids "
        "of the same bug are grouped, and the CVE is shown when there is one. Severity comes "
        "from the CVSS base score (computed from the vector, never copied) and is raised one "
        "level when EPSS says exploitation within 30 days is likely (>= 0.1) and when CISA "
        "lists the CVE as known exploited (KEV); an advisory without a vector is MEDIUM."
    ),
    remediation=(
        "Upgrade the package to a fixed version (named in the finding) and regenerate the lock "
        "file; if no fix exists, avoid the affected API or replace the package."
    ),
    references=("https://osv.dev/", "https://www.first.org/epss/",
                "https://www.cisa.gov/known-exploited-vulnerabilities-catalog"),
)

MALICIOUS_PACKAGE = Rule(
    id="HEX-SUP-002",
    title="Dependency is a known malicious package",
    type="malicious_package",
    severity=Severity.CRITICAL,
    cwe=("CWE-506",),
    summary="A dependency matches an OSV malicious-package (MAL-) advisory.",
    doc=(
        "OSV's MAL- advisories record packages published to steal credentials, install "
        "backdoors or run code at install time (dependency confusion such as torchtriton, "
        "typosquats of popular names). Installing the model's requirements runs the attacker's "
        "code with the user's rights before the model is even loaded, so this is CRITICAL "
        "whatever version is pinned."
    ),
    remediation=(
        "Remove the package from every manifest and lock file, do not install the environment; "
        "if it was installed, treat the machine and its credentials as compromised."
    ),
    references=("https://github.com/ossf/malicious-packages",),
)

TYPOSQUAT = Rule(
    id="HEX-SUP-003",
    title="Dependency name looks like a typosquat of an ML package",
    type="typosquat",
    severity=Severity.HIGH,
    cwe=("CWE-829",),
    summary="A dependency's name is one or two edits away from a well-known ML package.",
    doc=(
        "Attackers publish packages whose names differ from popular ones by a letter "
        "(tourch, numpyy, scikit-lern) and wait for a typo in a requirements file. hex "
        "compares every dependency name, after PEP 503 normalisation, with the list of the "
        "ML stack's packages in policy/ml_packages.toml: a Damerau-Levenshtein distance of 1 "
        "(2 for names of 8 characters or more) to a listed name, and not itself a listed or "
        "allow-listed real package, is reported HIGH."
    ),
    remediation=(
        "Check the name against the package you meant; fix the typo, and if the wrong package "
        "was ever installed, treat that environment as compromised."
    ),
    references=("https://cwe.mitre.org/data/definitions/829.html",),
)

COMPROMISED_MODEL = Rule(
    id="HEX-SUP-004",
    title="Model file matches a known-malicious model hash",
    type="compromised_model",
    severity=Severity.CRITICAL,
    cwe=("CWE-506",),
    summary="The file's SHA-256 is in the compromised-model hash feed of the vulnerability DB.",
    doc=(
        "The vulnerability DB holds SHA-256 hashes (and sizes) of model files known to be "
        "malicious or tampered, from the model-hash feed (`hex vulnfetch fetch --source "
        "models`). A scanned file with the same hash is that file, whatever its name, so this "
        "is CRITICAL even when no other check fires. hex hashes only files whose size matches "
        "a known entry (or every file with --hash), so it still reads headers, not gigabytes."
    ),
    remediation=(
        "Delete the file and obtain the model from its original publisher; check where this "
        "copy came from and what else that source supplied."
    ),
)

VULNERABLE_FRAMEWORK = Rule(
    id="HEX-SUP-005",
    title="Model was saved by a framework version with known vulnerabilities",
    type="vulnerable_framework_version",
    severity=Severity.LOW,
    cwe=("CWE-1395",),
    summary="A version recorded inside the model (transformers_version, ONNX producer...) "
            "is affected by advisories.",
    doc=(
        "Model files and configs record the framework version that wrote them "
        "(transformers_version in config.json, keras_version, the ONNX producer). That version "
        "says what the publisher ran, not what you will run, so it is LOW: a hint that the "
        "model's own tooling, and any environment pinned to match it, has known "
        "vulnerabilities (listed in the finding with their fixed versions)."
    ),
    remediation=(
        "Load the model with a current, fixed version of the framework rather than the "
        "recorded one; re-export the model with it if you publish it."
    ),
    references=("https://osv.dev/",),
)

DIRECT_REFERENCE = Rule(
    id="HEX-SUP-006",
    title="Dependency installed from outside the package index",
    type="untrusted_code_dependency",
    severity=Severity.MEDIUM,
    cwe=("CWE-829", "CWE-494"),
    summary="A requirements file pins code by URL, VCS, local path, editable install, "
            "--find-links or a non-default index.",
    doc=(
        "A requirement written as name @ https://..., a bare URL or path, -e git+..., or "
        "one resolved through --find-links, --index-url or --extra-index-url to another "
        "index installs code that the public index and its advisories do not cover: whoever "
        "controls that host or repository decides what runs when the model's environment is "
        "installed, and an extra index invites dependency confusion. The finding is HIGH "
        "when the code travels over plain http (or git://, svn://, ftp://), where anyone on "
        "the network path can replace it. When the URL's wheel or sdist file name names a "
        "version, that version is also matched against advisories like an == pin."
    ),
    remediation=(
        "Install the dependency from the package index with an exact pin and --hash, or "
        "vendor and review the code; never fetch it over plain http."
    ),
    references=("https://pip.pypa.io/en/stable/reference/requirements-file-format/",
                "https://peps.python.org/pep-0440/#direct-references"),
)
