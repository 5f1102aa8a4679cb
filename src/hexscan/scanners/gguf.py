"""The ``gguf`` scanner: structure of GGUF files and legacy GGML headers.

The bounded reader (parsers/gguf) walks the GGUF header and reports facts (hostile counts,
unknown types, layout problems, appended data); policy/gguf.toml maps them to HEX-GGF rules.
Chat templates stored in GGUF metadata are judged by the ``template`` scanner.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.gguf import GGUFLimits, parse_ggml, parse_gguf
from hexscan.parsers.issues import Issue
from hexscan.rules import gguf as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext
from hexscan.scanners.safetensors import load_safetensors_policy, payload_kind

_RULES: dict[str, Rule] = {r.id: r for r in (
    rules.MALFORMED_GGUF_HEADER, rules.HOSTILE_LENGTH, rules.BAD_TENSOR_LAYOUT, rules.UNKNOWN_TYPE,
    rules.DUPLICATE_NAMES, rules.GGUF_LIMIT, rules.BAD_GGML_HEADER, rules.GGUF_TRAILING_DATA)}


@dataclass(frozen=True)
class GGUFPolicy:
    limits: GGUFLimits
    trailing_tolerance: int
    issues: dict[str, tuple[Rule, Severity | None]]


@cache
def load_gguf_policy() -> GGUFPolicy:
    """policy/gguf.toml, read once per process."""
    text = resources.files("hexscan.policy").joinpath("gguf.toml").read_text("utf-8")
    data = tomllib.loads(text)
    raw = data["limits"]
    limits = GGUFLimits(max_kv=int(raw["max_kv"]), max_tensors=int(raw["max_tensors"]),
                        max_array_items=int(raw["max_array_items"]),
                        max_array_depth=int(raw["max_array_depth"]),
                        max_seconds=float(raw["max_seconds"]),
                        sample_bytes=int(raw["sample_bytes"]))
    issues = {kind: (_RULES[rule_id], Severity.parse(sev) if sev else None)
              for kind, (rule_id, sev) in data["issues"].items()}
    return GGUFPolicy(limits, int(raw["trailing_tolerance"]), issues)


class GGUFScanner:
    """Checks the header and data layout of GGUF and legacy GGML files."""

    name: ClassVar[str] = "gguf"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.GGUF, Format.GGML})
    rules: ClassVar[tuple[Rule, ...]] = tuple(_RULES.values())

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        policy = load_gguf_policy()
        if ctx.format is Format.GGML:
            view = parse_ggml(artifact.head(), artifact.size)
            for issue in view.issues:
                yield Finding(rules.BAD_GGML_HEADER, f"{view.kind or 'ggml'}: {issue.message}",
                              key=issue.kind, evidence={"kind": issue.kind,
                                                        "format": view.kind},
                              offset=issue.offset)
            return
        with artifact.open() as stream:
            gguf = parse_gguf(stream, artifact.size, limits=policy.limits, capture=())
        issues = list(gguf.issues)
        if gguf.trailing_offset is not None and gguf.file_size is not None and \
                gguf.file_size - gguf.trailing_offset <= policy.trailing_tolerance:
            issues = [i for i in issues if i.kind != "trailing"]
        yield from _findings(issues, policy, gguf.trailing_head)


def _findings(issues: list[Issue], policy: GGUFPolicy, trailing: bytes) -> Iterator[Finding]:
    """One finding per issue kind, with the first examples in the evidence."""
    by_kind: dict[str, list[Issue]] = {}
    for issue in issues:
        by_kind.setdefault(issue.kind, []).append(issue)
    for kind, found in by_kind.items():
        rule, severity = policy.issues.get(kind, (rules.MALFORMED_GGUF_HEADER, None))
        first = found[0]
        evidence: dict[str, Any] = {"kind": kind, "count": len(found),
                                    "examples": [i.message for i in found[:5]]}
        if first.key:
            evidence["key"] = first.key
        message = first.message + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
        if kind == "trailing":
            payload = payload_kind(trailing, load_safetensors_policy())
            if payload:
                severity = Severity.HIGH
                evidence["payload"] = payload
                message += f"; they start like {payload}"
        yield Finding(rule, message, key=kind, severity=severity, evidence=evidence,
                      offset=first.offset)
