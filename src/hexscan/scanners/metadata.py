"""The ``metadata`` scanner: secrets, commands, URLs and provenance claims in JSON configs.

It reads a model config, tokenizer config or other JSON file (bounded by policy/metadata.toml),
walks its values (bounded in depth and count) and checks every string value for credentials
(HEX-MET-001), shell commands or code (HEX-MET-002, reusing the code patterns of
policy/safetensors.toml) and callback / exfiltration-style URLs (HEX-MET-003, reusing the
safetensors URL checks). transformers-style configs are checked for provenance claims that
contradict themselves (HEX-MET-004..006) and for references to custom code (HEX-MET-007).
Nothing is ever loaded or executed, and no claim of origin lowers any finding.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import urlsplit

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import read_up_to
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import metadata as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import KindQuota, ScanContext
from hexscan.scanners.modelcard import model_config_facts
from hexscan.scanners.safetensors import (
    MetadataCheck,
    Pattern,
    SafetensorsPolicy,
    _as_text,
    _snippet,
    compile_patterns,
    load_safetensors_policy,
)

_ORG_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)$")
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class MetadataPolicy:
    limits: dict[str, int]
    secrets: tuple[tuple[str, re.Pattern[str]], ...]
    secret_keys: re.Pattern[str]
    secret_min_length: int
    placeholder_words: tuple[str, ...]
    code: tuple[Pattern, ...]
    url_words: tuple[str, ...]
    name_fields: tuple[str, ...]
    author_fields: tuple[str, ...]
    legal_suffixes: frozenset[str]
    authority_words: tuple[str, ...]
    max_typo_distance: int
    min_typo_length: int
    remote_code_keys: frozenset[str]


@cache
def load_metadata_policy() -> MetadataPolicy:
    """policy/metadata.toml, compiled once per process."""
    text = resources.files("hexscan.policy").joinpath("metadata.toml").read_text("utf-8")
    data = tomllib.loads(text)
    prov = data["provenance"]
    keys = data["secret_keys"]
    return MetadataPolicy(
        limits={k: int(v) for k, v in data["limits"].items()},
        secrets=tuple((p["id"], re.compile(p["pattern"])) for p in data["secrets"]),
        secret_keys=re.compile(keys["pattern"]),
        secret_min_length=int(keys["min_length"]),
        placeholder_words=tuple(w.lower() for w in keys["placeholder_words"]),
        code=compile_patterns(data["code"], "MEDIUM"),
        url_words=tuple(data["urls"]["extra_indicator_words"]),
        name_fields=tuple(prov["name_fields"]),
        author_fields=tuple(prov["author_fields"]),
        legal_suffixes=frozenset(prov["legal_suffixes"]),
        authority_words=tuple(prov["authority_words"]),
        max_typo_distance=int(prov["max_typo_distance"]),
        min_typo_length=int(prov["min_typo_length"]),
        remote_code_keys=frozenset(prov["remote_code_keys"]),
    )


class MetadataScanner:
    """Checks JSON configs for secrets, commands, suspicious URLs and provenance claims."""

    name: ClassVar[str] = "metadata"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset(
        {Format.MODEL_CONFIG, Format.TOKENIZER_CONFIG, Format.JSON})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.CONFIG_SECRET, rules.CONFIG_COMMAND, rules.CONFIG_URL, rules.PUBLISHER_MISMATCH,
        rules.NAMESPACE_TYPOSQUAT, rules.AUTHORITY_CLAIM, rules.REMOTE_CODE,
        rules.CONFIG_UNREADABLE,
    )

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        policy = load_metadata_policy()
        limit = policy.limits["max_bytes"]
        if artifact.size is not None and artifact.size > limit:
            yield _unreadable(f"config of {artifact.size} bytes is larger than the {limit} "
                              "bytes hex analyses", "too-large")
            return
        with artifact.open() as stream:
            raw = read_up_to(stream, limit + 1)
        if len(raw) > limit:
            yield _unreadable(f"config is larger than the {limit} bytes hex analyses",
                              "too-large")
            return
        root, error = parse_config(raw)
        if error:
            yield _unreadable(error, "invalid")
            return
        card = model_config_facts(root)
        if card:  # architecture, task, licence... for the SBOM's model card
            ctx.record("model-config", **card)
        yield from ConfigCheck(policy, load_safetensors_policy()).run(root)


def parse_config(raw: bytes) -> tuple[Any, str]:
    """(parsed JSON, '') or (None, why it is not readable). Never raises."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"config is not UTF-8 (byte {exc.start})"
    try:
        return json.loads(text), ""
    except RecursionError:
        return None, "config is nested too deeply to parse"
    except ValueError as exc:
        return None, f"config is not valid JSON: {str(exc)[:200]}"


def _unreadable(message: str, key: str) -> Finding:
    return Finding(rules.CONFIG_UNREADABLE, message, key=key, confidence=0.9,
                   evidence={"reason": key})


class ConfigCheck:
    """One pass over one parsed config."""

    def __init__(self, policy: MetadataPolicy, st_policy: SafetensorsPolicy) -> None:
        self.policy = policy
        self.st = st_policy
        self.st_check = MetadataCheck(st_policy)
        self.findings: dict[str, Finding] = {}
        self.quota = KindQuota(policy.limits["max_findings_per_rule"])
        self.truncated = False

    def run(self, root: Any) -> Iterator[Finding]:
        for path, key, value in self.walk(root):
            if isinstance(value, str):
                text = value[:self.policy.limits["max_value_chars"]]
                self.check_secret(path, key, text)
                self.check_code(path, text)
                self.check_urls(path, text)
            if key.lower() in self.policy.remote_code_keys and value not in (None, False, "",
                                                                               {}, []):
                self.remote_code(path, key, value)
        if isinstance(root, dict):
            for finding in provenance(root, self.policy):
                self.add(finding)
        if self.truncated:
            self.add(Finding(rules.CONFIG_UNREADABLE, "config has more values or nesting than "
                             "hex walks; the rest was not checked", key="truncated",
                             confidence=0.9, evidence={"reason": "truncated"}))
        return iter(self.findings.values())

    def add(self, finding: Finding) -> None:
        key = f"{finding.rule.id}:{finding.key}"
        old = self.findings.get(key)
        if old is None:
            if self.quota.allow(finding.rule.id):
                self.findings[key] = finding
        elif finding.effective_severity > old.effective_severity:
            self.findings[key] = finding

    def walk(self, root: Any) -> Iterator[tuple[str, str, Any]]:
        """(path, last key, value) for every value, bounded in depth and count."""
        limits = self.policy.limits
        stack: list[tuple[str, str, Any, int]] = [("$", "", root, 0)]
        seen = 0
        while stack:
            path, key, value, depth = stack.pop()
            seen += 1
            if seen > limits["max_values"]:
                self.truncated = True
                return
            yield path, key, value
            if isinstance(value, dict | list) and depth >= limits["max_depth"]:
                self.truncated = True
                continue
            if isinstance(value, dict):
                items = [(f"{path}.{str(k)[:100]}", str(k), v) for k, v in value.items()]
            elif isinstance(value, list):
                items = [(f"{path}[{i}]", key, v) for i, v in enumerate(value)]
            else:
                continue
            stack.extend((p, k, v, depth + 1) for p, k, v in reversed(items))

    # HEX-MET-001
    def check_secret(self, path: str, key: str, value: str) -> None:
        for pattern_id, regex in self.policy.secrets:
            match = regex.search(value)
            if match:
                self.secret(path, pattern_id, match.group(0))
                return
        if not self.policy.secret_keys.match(key.lower()):
            return
        candidate = value.strip()
        lowered = candidate.lower()
        if (len(candidate) < self.policy.secret_min_length or any(c.isspace() for c in candidate)
                or len(set(candidate)) < 4
                or any(w in lowered for w in self.policy.placeholder_words)):
            return
        self.secret(path, f"key:{key.lower()[:60]}", candidate)

    def secret(self, path: str, kind: str, secret: str) -> None:
        shown = redact(secret)
        self.add(Finding(rules.CONFIG_SECRET, f"{path} holds a secret ({kind}): {shown}",
                         key=f"{path}", confidence=0.8 if kind.startswith("key:") else 0.9,
                         evidence={"path": path, "kind": kind, "redacted": shown,
                                   "length": len(secret)}))

    # HEX-MET-002
    def check_code(self, path: str, text: str) -> None:
        self.code_in(path, text, "")
        for how, data in self.st_check.decodings(text):
            if how == "raw":
                continue
            decoded = _as_text(data)
            if decoded:
                self.code_in(path, decoded, how)

    def code_in(self, path: str, text: str, how: str) -> None:
        via = f" (after {how} decoding)" if how else ""
        own = [(p.id, p.severity, p.regex) for p in self.policy.code]
        reused = [(f"sft:{p.id}", min(p.severity, Severity.MEDIUM), p.regex)
                  for p in self.st.code]
        for pattern_id, severity, regex in own + reused:
            match = regex.search(text)
            if match:
                self.add(Finding(rules.CONFIG_COMMAND, f"{path} holds a command or code{via}: "
                                 f"{_snippet(text, match)}", key=pattern_id, severity=severity,
                                 confidence=0.85,
                                 evidence={"path": path, "pattern": pattern_id,
                                           "match": match.group(0)[:200], "decoding": how}))

    # HEX-MET-003
    def check_urls(self, path: str, text: str) -> None:
        for match in self.st.url.finditer(text):
            url = match.group(0).rstrip(".,;:)]}")
            reasons = self.url_reasons(url)
            if reasons:
                self.add(Finding(rules.CONFIG_URL, f"{path} points to {url[:200]} "
                                 f"({'; '.join(reasons)})", key=url[:500], confidence=0.8,
                                 evidence={"path": path, "url": url[:500],
                                           "reasons": reasons}))

    def url_reasons(self, url: str) -> list[str]:
        """Why a URL is callback / exfiltration-like; [] for an ordinary URL."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return []
        if not host or any(host == t or host.endswith("." + t) for t in self.st.trusted_hosts):
            return []
        path, rest = parts.path.lower(), (parts.path + "?" + parts.query).lower()
        reasons = [r for r in self.st_check.url_reasons("", host, port, path, rest)
                   if not r.startswith("port ")]
        words = [w for w in self.policy.url_words if w not in self.st.indicator_words
                 and re.search(rf"(?<![a-z]){re.escape(w)}", f"{host} {path}")]
        if words:
            reasons.append("words " + ", ".join(words[:5]))
        return reasons

    # HEX-MET-007
    def remote_code(self, path: str, key: str, value: Any) -> None:
        refs = sorted({str(v)[:200] for v in _leaves(value)})[:10]
        self.add(Finding(rules.REMOTE_CODE, f"{path} makes loaders import custom code"
                         + (f": {', '.join(refs[:3])}" if refs else ""),
                         key=key.lower(), confidence=0.9,
                         evidence={"path": path, "references": refs}))


def _leaves(value: Any, depth: int = 0) -> Iterator[Any]:
    if depth > 4:
        return
    if isinstance(value, dict):
        for v in list(value.values())[:50]:
            yield from _leaves(v, depth + 1)
    elif isinstance(value, list):
        for v in value[:50]:
            yield from _leaves(v, depth + 1)
    else:
        yield value


def redact(secret: str) -> str:
    """Enough of a secret to recognise it, never the secret: a short prefix and the length."""
    keep = 4 if len(secret) >= 16 else 2
    return f"{secret[:keep]}…({len(secret)} chars)"


# HEX-MET-004..006
def provenance(root: dict[str, Any], policy: MetadataPolicy) -> Iterator[Finding]:
    """Findings for a claimed org/name that contradicts the config's own author fields."""
    claim = next((root[f] for f in policy.name_fields if isinstance(root.get(f), str)), None)
    if claim is None:
        return
    match = _ORG_NAME.match(claim.strip())
    if match is None:
        return
    org = match.group(1)
    org_tokens = _tokens(org, policy)
    org_norm = "".join(org_tokens)
    claimed = [w for w in policy.authority_words
               if any(t.startswith(w) or t.endswith(w) for t in org_tokens)]
    if claimed:
        yield Finding(rules.AUTHORITY_CLAIM, f"_name_or_path {claim[:120]!r} claims authority "
                      f"in its namespace ({', '.join(claimed)}); the name is not a verification",
                      key=org.lower()[:100], confidence=0.7,
                      evidence={"name_or_path": claim[:200], "org": org, "words": claimed})
    author_field, author = next(((f, root[f]) for f in policy.author_fields
                                 if isinstance(root.get(f), str) and root[f].strip()),
                                (None, None))
    if author is None or not org_norm:
        return
    author_tokens = _tokens(author, policy)
    author_norm = "".join(author_tokens)
    if not author_norm or org_norm == author_norm:
        return
    evidence = {"name_or_path": claim[:200], "org": org, "author_field": author_field,
                "author": author[:200]}
    variants = {author_norm, *author_tokens}
    near = sorted(v for v in variants if len(v) >= policy.min_typo_length
                  and len(org_norm) >= policy.min_typo_length
                  and 0 < levenshtein(org_norm, v, policy.max_typo_distance)
                  <= policy.max_typo_distance)
    if near:
        yield Finding(rules.NAMESPACE_TYPOSQUAT, f"_name_or_path namespace {org!r} is a near "
                      f"miss of {author_field} {author[:80]!r}", key=org.lower()[:100],
                      confidence=0.8, evidence={**evidence, "near": near[0]})
        return
    yield Finding(rules.PUBLISHER_MISMATCH, f"_name_or_path namespace {org!r} is not the "
                  f"{author_field} {author[:80]!r}", key=org.lower()[:100], confidence=0.7,
                  evidence=evidence)


def _tokens(text: str, policy: MetadataPolicy) -> list[str]:
    tokens = _WORDS.findall(text.lower()[:200])
    while len(tokens) > 1 and tokens[-1] in policy.legal_suffixes:
        tokens.pop()
    return tokens


def levenshtein(a: str, b: str, cap: int) -> int:
    """Edit distance of a and b, or cap + 1 once it is known to exceed cap."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        if min(current) > cap:
            return cap + 1
        previous = current
    return previous[-1]
