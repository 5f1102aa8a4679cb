"""The ``template`` scanner: Jinja2 chat templates that escape the template language (SSTI).

Templates come from chat-template files, from JSON files (``tokenizer_config.json``
``chat_template`` as a string or a list of ``{name, template}``, ``chat_template.json``,
any key naming a template, any string with Jinja markers), from GGUF metadata
(``tokenizer.chat_template[.name]``) and from text files that contain Jinja markers. Each is
parsed, never rendered (parsers/jinja), and judged with policy/templates.toml.
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

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import read_up_to
from hexscan.formats.kinds import Format
from hexscan.formats.probes import looks_like_text
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.gguf import parse_gguf
from hexscan.parsers.jinja import JinjaLimits, TemplateView, analyze_template
from hexscan.rules import template as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext
from hexscan.scanners.gguf import load_gguf_policy

_DUNDER = re.compile(r"^__\w+__$")
_PRIVATE = re.compile(r"^_[A-Za-z]\w*$")
_MARKERS = (b"{{", b"{%")
#: Payload fragments looked for in the raw text of a template that does not parse.
_RAW_INDICATORS = re.compile(
    r"__(?:class|mro|subclasses|globals|builtins|import|init|base|bases|getattribute|"
    r"reduce_ex|dict|code)__|\b(?:popen|subprocess|os\.system|lipsum|cycler)\b")
_JINJA_EXTENSIONS = (".jinja", ".jinja2", ".j2")


@dataclass(frozen=True)
class TemplatePolicy:
    """policy/templates.toml, validated."""

    limits: dict[str, int]
    template_keys: tuple[str, ...]
    gguf_keys: tuple[str, ...]
    internals: frozenset[str]
    private_severity: Severity
    free_names: frozenset[str]
    attributes: frozenset[str]
    called: frozenset[str]
    gadgets: frozenset[str]
    benign_methods: frozenset[str]


@cache
def load_template_policy() -> TemplatePolicy:
    """The built-in template policy (read once per process)."""
    text = resources.files("hexscan.policy").joinpath("templates.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return TemplatePolicy(
        limits={k: int(v) for k, v in data["limits"].items()},
        template_keys=tuple(data["sources"]["template_keys"]),
        gguf_keys=tuple(data["sources"]["gguf_keys"]),
        internals=frozenset(data["internals"]["names"]),
        private_severity=Severity.parse(data["internals"]["private_severity"]),
        free_names=frozenset(data["dangerous"]["free_names"]),
        attributes=frozenset(data["dangerous"]["attributes"]),
        called=frozenset(data["dangerous"]["called"]),
        gadgets=frozenset(data["gadgets"]["names"]),
        benign_methods=frozenset(data["gadgets"]["benign_methods"]),
    )


@dataclass(frozen=True)
class TemplateSource:
    """One template found in an artifact."""

    text: str
    origin: str
    """Where it came from: ``file``, ``json:chat_template``, ``gguf:tokenizer.chat_template``."""
    declared: bool
    """The artifact says this is a template (a syntax error is then a finding)."""
    complete: bool = True
    offset: int | None = None


class TemplateScanner:
    """Finds server-side template injection in chat templates."""

    name: ClassVar[str] = "template"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({
        Format.CHAT_TEMPLATE, Format.TOKENIZER_CONFIG, Format.MODEL_CONFIG, Format.JSON,
        Format.GGUF, Format.TEXT, Format.UNKNOWN,
    })
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.INTERNALS_ACCESS, rules.DANGEROUS_NAME, rules.SSTI_GADGET, rules.OBFUSCATED_NAME,
        rules.DYNAMIC_ATTRIBUTE, rules.RESOURCE_ABUSE, rules.UNPARSEABLE, rules.TEMPLATE_LOADS,
        rules.TEMPLATE_LIMIT,
    )

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        policy = load_template_policy()
        seen: set[str] = set()
        for source in template_sources(artifact, ctx.format, policy):
            for finding in judge_template(source, policy):
                if finding.key not in seen:
                    seen.add(finding.key)
                    yield finding


# ---------------------------------------------------------------------------- sources


def template_sources(artifact: Artifact, fmt: Format,
                     policy: TemplatePolicy) -> Iterator[TemplateSource]:
    """Every template in the artifact (bounded by the policy's limits)."""
    limits = policy.limits
    if fmt is Format.GGUF:
        yield from _gguf_templates(artifact, policy)
        return
    if fmt is Format.CHAT_TEMPLATE:
        data = _read(artifact, limits["max_template_bytes"] + 1)
        yield TemplateSource(data.decode("utf-8", "replace"), "file", _declared_file(artifact),
                             len(data) <= limits["max_template_bytes"])
        return
    head = artifact.head()
    if fmt in (Format.TEXT, Format.UNKNOWN):
        if not looks_like_text(head) or not any(m in head for m in _MARKERS):
            return
        data = _read(artifact, limits["max_text_bytes"])
        yield TemplateSource(data.decode("utf-8", "replace"), "text", False)
        return
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start not in (b"{", b"[") or (artifact.size or 0) > limits["max_json_bytes"]:
        return
    data = _read(artifact, limits["max_json_bytes"])
    if b"template" not in data and not any(m in data for m in _MARKERS):
        return
    yield from _json_templates(data, policy)


def _declared_file(artifact: Artifact) -> bool:
    base = artifact.basename.lower()
    return base.endswith(_JINJA_EXTENSIONS) or "chat_template" in base


def _read(artifact: Artifact, limit: int) -> bytes:
    with artifact.open() as stream:
        return read_up_to(stream, limit)


def _gguf_templates(artifact: Artifact, policy: TemplatePolicy) -> Iterator[TemplateSource]:
    with artifact.open() as stream:
        view = parse_gguf(stream, artifact.size, limits=load_gguf_policy().limits,
                          capture=policy.gguf_keys,
                          capture_bytes=policy.limits["max_template_bytes"])
    for kv in view.kvs:
        if isinstance(kv.value, str) and _is_gguf_template_key(kv.key, policy):
            yield TemplateSource(kv.value, f"gguf:{kv.key}", True, kv.complete, kv.offset)


def _is_gguf_template_key(key: str, policy: TemplatePolicy) -> bool:
    return any(key == k or key.startswith(k + ".") for k in policy.gguf_keys)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its pairs: duplicate keys (a template hidden in the first copy) survive."""


def _json_templates(data: bytes, policy: TemplatePolicy) -> Iterator[TemplateSource]:
    try:
        root = json.loads(data.decode("utf-8-sig", "replace"), object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return
    budget = [policy.limits["max_json_nodes"], policy.limits["max_templates_per_file"]]
    yield from _walk_json(root, "", policy, budget, 0)


def _walk_json(value: Any, path: str, policy: TemplatePolicy, budget: list[int],
               depth: int) -> Iterator[TemplateSource]:
    """Depth-first over the JSON value; ``budget`` = [values left, templates left]."""
    budget[0] -= 1
    if budget[0] < 0 or budget[1] <= 0 or depth > 64:
        return
    if isinstance(value, _Pairs):
        for key, item in value:
            child = f"{path}.{key}" if path else key
            if _is_template_key(key, policy):
                yield from _declared_json(item, child, policy, budget)
            elif isinstance(item, str) and "template" in key.lower():
                budget[1] -= 1
                yield TemplateSource(item, f"json:{child}", False)
            else:
                yield from _walk_json(item, child, policy, budget, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_json(item, f"{path}[{index}]", policy, budget, depth + 1)
    elif isinstance(value, str) and ("{{" in value or "{%" in value):
        budget[1] -= 1
        yield TemplateSource(value, f"json:{path}", False)


def _is_template_key(key: str, policy: TemplatePolicy) -> bool:
    lowered = key.lower()
    return any(lowered == k or lowered.endswith("_" + k) for k in policy.template_keys)


def _declared_json(item: Any, path: str, policy: TemplatePolicy,
                   budget: list[int]) -> Iterator[TemplateSource]:
    """``chat_template``: a string, or a list of ``{"name": ..., "template": ...}``."""
    if isinstance(item, str):
        budget[1] -= 1
        yield TemplateSource(item, f"json:{path}", True)
    elif isinstance(item, list):
        for index, entry in enumerate(item[:policy.limits["max_templates_per_file"]]):
            fields = dict(entry) if isinstance(entry, _Pairs) else {}
            text = fields.get("template")
            if isinstance(text, str) and budget[1] > 0:
                budget[1] -= 1
                name = fields.get("name")
                label = f"{path}[{name!r}]" if isinstance(name, str) else f"{path}[{index}]"
                yield TemplateSource(text, f"json:{label}", True)
    else:
        yield from _walk_json(item, path, policy, budget, 1)


# ---------------------------------------------------------------------------- judging


def judge_template(source: TemplateSource, policy: TemplatePolicy) -> Iterator[Finding]:
    """Findings for one template."""
    limits = policy.limits
    jinja_limits = JinjaLimits(max_source_chars=limits["max_template_bytes"],
                               max_nodes=limits["max_nodes"])
    if not source.complete:
        yield _finding(rules.TEMPLATE_LIMIT, source, "limit:size",
                       f"template is larger than the {limits['max_template_bytes']} bytes hex "
                       "analyses; only its beginning was analysed")
    view = analyze_template(source.text, jinja_limits)
    if view.limit:
        yield _finding(rules.TEMPLATE_LIMIT, source, "limit", view.limit)
    if view.error is not None:
        yield from _unparseable(source, view)
        return
    judge = _Judge(source, policy, view)
    yield from judge.run()


def _unparseable(source: TemplateSource, view: TemplateView) -> Iterator[Finding]:
    if source.declared:
        where = f" (line {view.error_line})" if view.error_line else ""
        yield _finding(rules.UNPARSEABLE, source, "syntax",
                       f"template does not parse as Jinja2{where}: {view.error}",
                       evidence={"error": view.error, "line": view.error_line})
    hits = sorted({m.group(0) for m in _RAW_INDICATORS.finditer(source.text[:1 << 20])})
    if hits:
        yield _finding(rules.INTERNALS_ACCESS, source, "raw:" + ",".join(hits[:8]),
                       "template does not parse, but its text contains injection payload "
                       f"fragments: {', '.join(hits[:8])}", severity=Severity.HIGH,
                       confidence=0.7, evidence={"fragments": hits[:20]})


class _Judge:
    """Applies the policy to one template view."""

    def __init__(self, source: TemplateSource, policy: TemplatePolicy,
                 view: TemplateView) -> None:
        self.source = source
        self.policy = policy
        self.view = view

    def run(self) -> Iterator[Finding]:
        yield from self.accesses()
        yield from self.free_names()
        yield from self.built()
        yield from self.bounds()
        for tag, line in self.view.loads[:1]:
            yield _finding(rules.TEMPLATE_LOADS, self.source, f"load:{tag}",
                           f"template uses {{% {tag} %}} (line {line}) to load other templates",
                           evidence={"tag": tag, "line": line})

    def classify(self, name: str, called: bool) -> tuple[Rule, Severity] | None:
        """The rule and severity an attribute/item/free name deserves, if any."""
        policy = self.policy
        if _DUNDER.match(name) or name in policy.internals:
            return rules.INTERNALS_ACCESS, Severity.CRITICAL
        if name in policy.attributes or called and name in policy.called:
            return rules.DANGEROUS_NAME, Severity.HIGH
        if _PRIVATE.match(name):
            return rules.INTERNALS_ACCESS, policy.private_severity
        return None

    def accesses(self) -> Iterator[Finding]:
        for access in self.view.accesses:
            line = access.lineno
            if access.name is None:
                if access.via in ("attr-filter", "getattr-call", "attribute-arg", "getitem"):
                    yield _finding(rules.DYNAMIC_ATTRIBUTE, self.source, f"dynamic:{access.via}",
                                   f"attribute read through {access.via} with a name computed "
                                   f"at run time (line {line})",
                                   evidence={"via": access.via, "line": line})
                continue
            verdict = self.classify(access.name, access.called)
            if verdict is not None:
                rule, severity = verdict
                how = "computed " if access.computed else ""
                yield _finding(rule, self.source, f"access:{access.name}",
                               f"template reads {how}attribute {access.name!r} via "
                               f"{access.via}{_root_text(access.root)} (line {line})",
                               severity=severity,
                               evidence={"name": access.name, "via": access.via,
                                         "root": access.root, "line": line,
                                         "computed": access.computed})
            if access.root in self.policy.gadgets and \
                    access.name not in self.policy.benign_methods:
                yield self.gadget(access.root, line, attribute=access.name)

    def gadget(self, name: str, line: int, attribute: str | None = None) -> Finding:
        if attribute is None:
            return _finding(rules.SSTI_GADGET, self.source, f"gadget:{name}",
                            f"template refers to {name!r}, a usual starting point of template "
                            f"injection (line {line})", evidence={"name": name, "line": line})
        return _finding(rules.SSTI_GADGET, self.source, f"gadget-attr:{name}",
                        f"template reads attributes of {name!r} ({attribute!r}, line {line}), "
                        "a usual starting point of template injection", severity=Severity.HIGH,
                        evidence={"name": name, "attribute": attribute, "line": line})

    def free_names(self) -> Iterator[Finding]:
        for use in self.view.names:
            name, line = use.name, use.lineno
            if _DUNDER.match(name) or name in self.policy.internals:
                yield _finding(rules.INTERNALS_ACCESS, self.source, f"name:{name}",
                               f"template uses the interpreter name {name!r} (line {line})",
                               severity=Severity.CRITICAL, evidence={"name": name, "line": line})
            elif name in self.policy.free_names:
                yield _finding(rules.DANGEROUS_NAME, self.source, f"name:{name}",
                               f"template uses {name!r}, which a chat template never needs "
                               f"(line {line})", evidence={"name": name, "line": line})
            elif name in self.policy.gadgets:
                yield self.gadget(name, line)

    def built(self) -> Iterator[Finding]:
        for item in self.view.built:
            if self.classify(item.value, False) is None:
                continue
            how = "backslash escapes" if item.how == "escapes" else f"a {item.how} expression"
            yield _finding(rules.OBFUSCATED_NAME, self.source, f"built:{item.value}",
                           f"template spells {item.value!r} with {how} (line {item.lineno})",
                           evidence={"value": item.value, "how": item.how,
                                     "line": item.lineno})
        accessed = {a.name for a in self.view.accesses}
        for value, line in self.view.literals:
            if value in accessed or not (_DUNDER.match(value) or value in self.policy.internals):
                continue
            yield _finding(rules.OBFUSCATED_NAME, self.source, f"literal:{value}",
                           f"string literal {value!r} names a Python internal (line {line})",
                           severity=Severity.MEDIUM, confidence=0.8,
                           evidence={"value": value, "line": line})

    def bounds(self) -> Iterator[Finding]:
        limits = self.policy.limits
        for bound in self.view.bounds:
            limit = {"range": limits["range_bound"], "repeat": limits["repeat_bound"]}.get(
                bound.kind, 0)
            if bound.value > limit:
                yield _finding(rules.RESOURCE_ABUSE, self.source, f"bound:{bound.kind}",
                               f"template {_BOUND_TEXT[bound.kind]} {bound.value} "
                               f"(line {bound.lineno})",
                               evidence={"kind": bound.kind, "value": bound.value,
                                         "line": bound.lineno})


_BOUND_TEXT = {"range": "loops over a range of", "repeat": "repeats a string to",
               "power": "raises a number to the power"}


def _root_text(root: str | None) -> str:
    if root is None:
        return ""
    return " on a literal" if root == "" else f" on {root!r}"


def _finding(rule: Rule, source: TemplateSource, key: str, message: str, *,
             severity: Severity | None = None, confidence: float = 0.95,
             evidence: dict[str, Any] | None = None) -> Finding:
    where = "" if source.origin == "file" else f"{source.origin}: "
    details = {"template": source.origin, **(evidence or {})}
    return Finding(rule, where + message, key=f"{source.origin}|{key}", severity=severity,
                   confidence=confidence if source.declared or source.origin == "file" else
                   min(confidence, 0.8), evidence=details, offset=source.offset)

