"""The ``safetensors`` scanner: header integrity and what ``__metadata__`` carries.

The header reader (parsers/safetensors) reads ``8 + N`` bytes and reports structural facts;
this module turns them into findings and checks every metadata value (as text and after
decoding base64, hex and ``\\xNN`` escapes) for code, embedded pickles and executables, URLs
and active markup, with the patterns of policy/safetensors.toml.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from ipaddress import ip_address
from typing import Any, ClassVar
from urllib.parse import urlsplit

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.issues import Issue
from hexscan.parsers.pickle_vm import PickleLimits, analyze_pickle
from hexscan.parsers.safetensors import FORMAT_MAX_HEADER, Region, parse_safetensors
from hexscan.policy.pickle_policy import judge, load_policy
from hexscan.rules import safetensors as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext

#: Parser issue kind -> rule.
_ISSUE_RULES: dict[str, Rule] = {
    "truncated": rules.MALFORMED_SAFETENSORS_HEADER,
    "header-length": rules.MALFORMED_SAFETENSORS_HEADER,
    "encoding": rules.MALFORMED_SAFETENSORS_HEADER, "json": rules.MALFORMED_SAFETENSORS_HEADER,
    "not-object": rules.MALFORMED_SAFETENSORS_HEADER, "header-too-large": rules.HEADER_TOO_LARGE,
    "header-not-analysed": rules.HEADER_TOO_LARGE, "duplicate-key": rules.DUPLICATE_KEYS,
    "entry": rules.INVALID_TENSOR_ENTRY, "dtype": rules.INVALID_TENSOR_ENTRY,
    "shape": rules.INVALID_TENSOR_ENTRY, "offsets": rules.INVALID_TENSOR_ENTRY,
    "size-mismatch": rules.INCONSISTENT_OFFSETS, "overlap": rules.INCONSISTENT_OFFSETS,
    "out-of-range": rules.INCONSISTENT_OFFSETS, "gap": rules.INCONSISTENT_OFFSETS,
    "trailing": rules.TRAILING_TENSOR_DATA, "metadata-type": rules.METADATA_NOT_STRINGS,
}
_B64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_ESCAPED = re.compile(r"(?:\\x[0-9a-fA-F]{2}){4,}")
_DATA_URI = re.compile(r"^data:[\w.+/-]*(?:;[\w=.-]+)*;base64,", re.IGNORECASE)
_PICKLE_OK = ("dangerous-global", "unsafe-call", "unknown-class", "unknown-extension")


@dataclass(frozen=True)
class Pattern:
    id: str
    severity: Severity
    regex: re.Pattern[str]


@dataclass(frozen=True)
class SafetensorsPolicy:
    limits: dict[str, int]
    code: tuple[Pattern, ...]
    markup: tuple[Pattern, ...]
    url: re.Pattern[str]
    trusted_hosts: tuple[str, ...]
    indicator_words: tuple[str, ...]
    executable_suffixes: tuple[str, ...]
    payload_magic: tuple[tuple[str, bytes], ...]


def compile_patterns(entries: list[dict[str, str]], default: str) -> tuple[Pattern, ...]:
    """A policy table of ``{id, pattern, severity?}`` rows, compiled case-insensitively."""
    return tuple(Pattern(p["id"], Severity.parse(p.get("severity", default)),
                         re.compile(p["pattern"], re.IGNORECASE)) for p in entries)


@cache
def load_safetensors_policy() -> SafetensorsPolicy:
    """policy/safetensors.toml, compiled once per process."""
    text = resources.files("hexscan.policy").joinpath("safetensors.toml").read_text("utf-8")
    data = tomllib.loads(text)

    urls = data["urls"]
    return SafetensorsPolicy(
        limits={k: int(v) for k, v in data["limits"].items()},
        code=compile_patterns(data["code"], "HIGH"),
        markup=compile_patterns(data["markup"], "MEDIUM"),
        url=re.compile(urls["pattern"], re.IGNORECASE),
        trusted_hosts=tuple(urls["trusted_hosts"]),
        indicator_words=tuple(urls["indicator_words"]),
        executable_suffixes=tuple(urls["executable_suffixes"]),
        payload_magic=tuple((name, bytes.fromhex(magic))
                            for name, magic in data["payload_magic"].items()),
    )


def payload_kind(data: bytes, policy: SafetensorsPolicy) -> str | None:
    """The name of the payload signature ``data`` starts with, if any."""
    for name, magic in policy.payload_magic:
        if not data.startswith(magic):
            continue
        if name == "pe" and not _is_pe(data):
            continue
        if name == "shebang" and not re.match(rb"#!\s*/", data):
            continue
        return name
    return None


def _is_pe(data: bytes) -> bool:
    if len(data) < 64:
        return False
    pe_at = int.from_bytes(data[60:64], "little")
    return data[pe_at:pe_at + 4] == b"PE\x00\x00" or b"This program cannot be run" in data[:512]


class SafetensorsScanner:
    """Checks safetensors headers and metadata."""

    name: ClassVar[str] = "safetensors"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.SAFETENSORS})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.MALFORMED_SAFETENSORS_HEADER, rules.HEADER_TOO_LARGE, rules.DUPLICATE_KEYS,
        rules.INVALID_TENSOR_ENTRY, rules.INCONSISTENT_OFFSETS, rules.TRAILING_TENSOR_DATA,
        rules.METADATA_NOT_STRINGS, rules.METADATA_CODE, rules.METADATA_PICKLE,
        rules.METADATA_EXECUTABLE, rules.METADATA_URL, rules.METADATA_MARKUP,
    )

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        policy = load_safetensors_policy()
        limit = min(policy.limits["max_header_analysed"], FORMAT_MAX_HEADER)
        with artifact.open() as stream:
            view = parse_safetensors(stream, artifact.size, max_header=limit,
                                     sample=policy.limits["sample_bytes"])
        regions = {r.start: r for r in view.gaps}
        if view.trailing is not None:
            regions[view.trailing.start] = view.trailing
        yield from _structure(view.issues, regions, policy)
        yield from MetadataCheck(policy).run(view.metadata)


def _structure(issues: tuple[Issue, ...], regions: dict[int, Region],
               policy: SafetensorsPolicy) -> Iterator[Finding]:
    """One finding per issue kind (the first few examples in the evidence)."""
    by_kind: dict[str, list[Issue]] = {}
    for issue in issues:
        by_kind.setdefault(issue.kind, []).append(issue)
    for kind, found in by_kind.items():
        rule = _ISSUE_RULES[kind]
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        evidence: dict[str, Any] = {"kind": kind, "count": len(found),
                                    "examples": [i.message for i in found[:5]]}
        severity = None
        payloads = sorted({p for i in found if i.offset in regions
                           for p in [payload_kind(regions[i.offset].head, policy)] if p})
        if payloads:
            severity = Severity.HIGH
            evidence["payload"] = payloads
        suffix = f"; the unaccounted bytes start like {', '.join(payloads)}" if payloads else ""
        yield Finding(rule, f"{first.message}{more}{suffix}", key=kind, severity=severity,
                      confidence=0.95, evidence=evidence, offset=first.offset)


class MetadataCheck:
    """Checks metadata values; one finding per (rule, pattern or URL) per file."""

    def __init__(self, policy: SafetensorsPolicy) -> None:
        self.policy = policy
        self.findings: dict[str, Finding] = {}
        self.urls = 0

    def run(self, metadata: tuple[tuple[str, Any], ...]) -> Iterator[Finding]:
        for key, value in metadata:
            text = value if isinstance(value, str) else json.dumps(value, default=str)[:1 << 20]
            self.check_value(str(key), text)
        return iter(self.findings.values())

    def add(self, finding: Finding) -> None:
        old = self.findings.get(finding.key)
        if old is None or finding.effective_severity > old.effective_severity:
            self.findings[finding.key] = finding

    def check_value(self, key: str, value: str) -> None:
        limit = self.policy.limits["max_value_chars"]
        text = value[:limit]
        self.check_text(key, text, "")
        for how, data in self.decodings(text):
            self.check_bytes(key, data, how)
            if how != "raw":
                decoded = _as_text(data)
                if decoded:
                    self.check_text(key, decoded, how)

    def decodings(self, text: str) -> Iterator[tuple[str, bytes]]:
        """The value as raw bytes (when it is latin-1) and its base64 / hex / escape decodings."""
        limits = self.policy.limits
        try:
            yield "raw", text.encode("latin-1")
        except UnicodeEncodeError:
            pass
        compact = "".join(text.split())
        uri = _DATA_URI.match(compact)
        if uri:
            compact = compact[uri.end():]
        raw = compact.encode("ascii", "ignore")
        if len(raw) >= limits["min_encoded_chars"] and len(raw) * 3 // 4 <= \
                limits["max_decoded_bytes"]:
            if _HEX.fullmatch(raw):
                yield "hex", binascii.unhexlify(raw)
            elif _B64.fullmatch(raw):
                decoded = _b64(raw)
                if decoded:
                    yield "base64", decoded
        escaped = "".join(m.group(0) for m in _ESCAPED.finditer(text))
        if escaped:
            yield "escapes", bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-fA-F]{2})",
                                                                  escaped))

    def check_text(self, key: str, text: str, how: str) -> None:
        via = f" (after {how} decoding)" if how else ""
        for pattern in self.policy.code:
            match = pattern.regex.search(text)
            if match:
                self.add(Finding(rules.METADATA_CODE, f"metadata {key!r} holds code{via}: "
                                 f"{_snippet(text, match)}", key=f"code:{pattern.id}",
                                 severity=pattern.severity, confidence=0.85,
                                 evidence={"metadata_key": key, "pattern": pattern.id,
                                           "match": match.group(0)[:200], "decoding": how}))
        for pattern in self.policy.markup:
            match = pattern.regex.search(text)
            if match:
                self.add(Finding(rules.METADATA_MARKUP, f"metadata {key!r} holds active markup"
                                 f"{via}: {_snippet(text, match)}", key=f"markup:{pattern.id}",
                                 confidence=0.9,
                                 evidence={"metadata_key": key, "pattern": pattern.id,
                                           "match": match.group(0)[:200], "decoding": how}))
        for match in self.policy.url.finditer(text):
            self.check_url(key, match.group(0).rstrip(".,;:)]}"), how)

    def check_url(self, key: str, url: str, how: str) -> None:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            host, port, parts = "", None, urlsplit("")
        if not host or any(host == t or host.endswith("." + t)
                           for t in self.policy.trusted_hosts):
            return
        reasons = self.url_reasons(key, host, port, parts.path.lower(),
                                   (parts.path + "?" + parts.query).lower())
        if f"url:{url}" in self.findings or self.urls >= self.policy.limits["max_urls"]:
            return
        self.urls += 1
        why = f" ({'; '.join(reasons)})" if reasons else ""
        self.add(Finding(rules.METADATA_URL, f"metadata {key!r} points to {url[:200]}{why}",
                         key=f"url:{url[:500]}",
                         severity=Severity.MEDIUM if reasons else Severity.LOW,
                         confidence=0.8 if reasons else 0.6,
                         evidence={"metadata_key": key, "url": url[:500], "host": host,
                                   "reasons": reasons, "decoding": how}))

    def url_reasons(self, key: str, host: str, port: int | None, path: str,
                    rest: str) -> list[str]:
        reasons = []
        try:
            ip_address(host.strip("[]"))
            reasons.append("raw IP address")
        except ValueError:
            pass
        if port not in (None, 80, 443):
            reasons.append(f"port {port}")
        words = [w for w in self.policy.indicator_words
                 if re.search(rf"(?<![a-z]){re.escape(w)}", f"{key.lower()} {host} {rest}")]
        if words:
            reasons.append("indicator words " + ", ".join(words[:5]))
        if path.endswith(self.policy.executable_suffixes):
            reasons.append("executable file name")
        return reasons

    def check_bytes(self, key: str, data: bytes, how: str) -> None:
        kind = payload_kind(data, self.policy)
        if kind is not None and not kind.startswith("pickle"):
            archive = kind in ("zip", "gzip", "seven-zip")
            self.add(Finding(rules.METADATA_EXECUTABLE, f"metadata {key!r} is {how} data that "
                             f"starts like {kind}", key=f"exec:{kind}",
                             severity=Severity.MEDIUM if archive else None,
                             evidence={"metadata_key": key, "payload": kind, "decoding": how,
                                       "size": len(data)}))
        if _pickle_start(data):
            self.check_pickle(key, data, how)

    def check_pickle(self, key: str, data: bytes, how: str) -> None:
        view = analyze_pickle(data, PickleLimits(max_seconds=5.0))
        complete = bool(view.streams) and view.streams[0].complete and not view.malformations
        if not (complete or view.globals):
            return
        verdicts = [v for v in judge(view, load_policy()) if v.kind in _PICKLE_OK]
        worst = max((Severity[v.severity] for v in verdicts), default=Severity.MEDIUM)
        severity = max(worst, Severity.MEDIUM)
        summary = "; ".join(v.message for v in verdicts[:3]) or "it builds only plain data"
        self.add(Finding(rules.METADATA_PICKLE, f"metadata {key!r} holds a {how} pickle: "
                         f"{summary}", key=f"pickle:{key[:200]}", severity=severity,
                         confidence=0.95,
                         evidence={"metadata_key": key, "decoding": how,
                                   "globals": sorted(view.global_names())[:20]}))


def _pickle_start(data: bytes) -> bool:
    if len(data) < 4:
        return False
    if data[0] == 0x80:
        return 2 <= data[1] <= 5
    return data[:1] in (b"c", b"(", b"]", b"}") and data.rstrip()[-1:] == b"." and b"\n" in data


def _b64(raw: bytes) -> bytes:
    try:
        altchars = b"-_" if b"-" in raw or b"_" in raw else None
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _as_text(data: bytes) -> str:
    """Decoded bytes as text when they are mostly printable UTF-8, else ''."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if text and printable >= 0.9 * len(text) else ""


def _snippet(text: str, match: re.Match[str]) -> str:
    start = max(0, match.start() - 40)
    piece = text[start:match.end() + 40].replace("\n", " ")
    return ("..." if start else "") + piece[:160]
