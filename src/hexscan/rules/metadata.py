"""HEX-MET: what model and tokenizer configs (and other JSON beside models) carry."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

CONFIG_SECRET = Rule(
    id="HEX-MET-001",
    title="Hard-coded secret in a config value",
    type="hardcoded_secret",
    severity=Severity.MEDIUM,
    cwe=("CWE-798",),
    summary="A config value looks like an API key, access token, password or private key.",
    doc=(
        "Configs are published with the model and copied into every downstream repository, "
        "cache and container image. A value shaped like a provider token (OpenAI sk-, AWS "
        "AKIA, GitHub ghp_/github_pat_, Hugging Face hf_, Slack xox), a PEM private key, or a "
        "non-placeholder value under a key such as api_key, secret, token or password is a "
        "credential leaked to everyone who downloads the model, or bait that makes tools call "
        "an attacker's service. hex reports the key path and a redacted value only."
    ),
    remediation=(
        "Remove the value from the config and rotate the credential at its provider; pass "
        "secrets through the environment or a secret store at run time instead."
    ),
    references=("https://cwe.mitre.org/data/definitions/798.html",),
)

CONFIG_COMMAND = Rule(
    id="HEX-MET-002",
    title="Shell command or code in a config value",
    type="embedded_command",
    severity=Severity.MEDIUM,
    cwe=("CWE-78", "CWE-94"),
    summary="A config value holds a shell command or Python code.",
    doc=(
        "Model configs hold numbers, names and paths. A value such as 'rm -rf /', "
        "'curl ... | sh', 'bash -c', 'nc -e', 'python -c', os.system(...) or __import__(...) "
        "has no purpose there except to be run by a loader, a training script, or a tool that "
        "interpolates config values into a shell or eval. The finding is HIGH when the value "
        "downloads something and pipes it into an interpreter, MEDIUM otherwise."
    ),
    remediation=(
        "Do not run any tooling that reads this config until the value is removed; find out "
        "who added it and treat the model as untrusted."
    ),
    references=("https://cwe.mitre.org/data/definitions/78.html",),
)

CONFIG_URL = Rule(
    id="HEX-MET-003",
    title="Suspicious URL in a config value",
    type="suspicious_url",
    severity=Severity.MEDIUM,
    cwe=("CWE-200", "CWE-829"),
    summary="A config value points to a raw IP address or a callback / exfiltration-style URL.",
    doc=(
        "Configs legitimately link to model hubs and papers; hex does not report those. A URL "
        "whose host is a bare IP address, or whose host or path carries words such as exfil, "
        "c2, attacker, evil, payload, callback or webhook, or that ends in an executable file "
        "name, is how a config points tooling at a command-and-control server or a place to "
        "send data, and is reported MEDIUM."
    ),
    remediation=(
        "Find out what reads the value and where it points; remove it, and do not let tools "
        "that consume the config reach the host until it is understood."
    ),
)

PUBLISHER_MISMATCH = Rule(
    id="HEX-MET-004",
    title="Claimed namespace and publisher disagree",
    type="provenance_mismatch",
    severity=Severity.MEDIUM,
    cwe=("CWE-345",),
    summary="The org in _name_or_path is not the author / publisher the config names.",
    doc=(
        "transformers writes the repository id the model came from into _name_or_path "
        "(org/name). When the org there and the author or publisher field of the same config "
        "name different parties (after ignoring case, punctuation and legal suffixes such as "
        "Inc or Ltd), one of the two claims is false, which is how a re-uploaded or tampered "
        "model borrows the reputation of a known publisher. hex never trusts either claim and "
        "never lowers another finding because of them."
    ),
    remediation=(
        "Obtain the model from the publisher's own namespace and compare checksums; treat "
        "the file as of unknown origin until the provenance is verified."
    ),
)

NAMESPACE_TYPOSQUAT = Rule(
    id="HEX-MET-005",
    title="Claimed namespace is a near miss of the publisher's name",
    type="typosquat",
    severity=Severity.MEDIUM,
    cwe=("CWE-345",),
    summary="The org in _name_or_path differs from the publisher's name by one or two letters.",
    doc=(
        "A namespace one or two edits away from a publisher's name (acne for Acme) is the "
        "classic typosquat: a reader sees the familiar name and a hub search for the real one "
        "finds the impostor. A config that names the real publisher as author while its "
        "_name_or_path uses the near miss is strong evidence of impersonation."
    ),
    remediation=(
        "Do not use the model; obtain it from the real publisher's namespace and verify its "
        "checksum."
    ),
)

AUTHORITY_CLAIM = Rule(
    id="HEX-MET-006",
    title="Self-asserted authority in the claimed namespace",
    type="provenance_claim",
    severity=Severity.MEDIUM,
    cwe=("CWE-345",),
    summary="The org in _name_or_path calls itself official, trusted, verified, secure ...",
    doc=(
        "Anyone can create a namespace named official, trusted-org or verified-models; the word "
        "is a claim, not a verification, and it exists to lower a reviewer's guard. hex reports "
        "such namespaces and never treats the claim as evidence of origin."
    ),
    remediation=(
        "Verify the publisher through the hub's own verification (organisation badge, signed "
        "commits, published checksums), not through the namespace's name."
    ),
)

REMOTE_CODE = Rule(
    id="HEX-MET-007",
    title="Config references custom code",
    type="remote_code_reference",
    severity=Severity.LOW,
    cwe=("CWE-829",),
    summary="auto_map or trust_remote_code makes loaders import code shipped with the model.",
    doc=(
        "A transformers config with auto_map (or trust_remote_code set) tells AutoModel / "
        "AutoTokenizer to import a Python module from the model repository when the user passes "
        "trust_remote_code=True. That code runs with the user's privileges; the config is only "
        "as safe as the code it names, which hex reports so that it is reviewed."
    ),
    remediation=(
        "Review the referenced modules before loading with trust_remote_code=True, pin the "
        "revision you reviewed, or use a model that needs no custom code."
    ),
)

CONFIG_UNREADABLE = Rule(
    id="HEX-MET-008",
    title="Config is not valid JSON or is too large to analyse",
    type="malformed_config",
    severity=Severity.LOW,
    cwe=("CWE-20",),
    summary="The config could not be parsed (invalid, too large or too deeply nested).",
    doc=(
        "hex reads JSON configs with bounds on size, depth and the number of values. A config "
        "that is invalid JSON, or exceeds those bounds, was not checked for secrets, commands, "
        "URLs or provenance claims; lenient loaders may still read it."
    ),
    remediation=(
        "Fix or regenerate the config with a standard JSON writer, and inspect it by hand if "
        "it is legitimately this large."
    ),
)
