"""Long encoded or random strings in JSON configs and safetensors metadata (HEX-PAY-003)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Iterator
from typing import Any

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers import sniff
from hexscan.policy import lists
from hexscan.rules import payload as rules

_JSON_FORMATS = frozenset({Format.MODEL_CONFIG, Format.TOKENIZER_CONFIG, Format.JSON,
                           Format.COREML_MANIFEST})
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def blob_findings(art: Artifact, fmt: Format) -> Iterator[Finding]:
    policy = lists.load("payloads")["blob"]
    strings = _strings(art, fmt, policy)
    if strings is None:
        return
    benign = frozenset(policy["benign_keys"])
    reported = 0
    for path, key, value in strings:
        if len(value) < int(policy["min_length"]) or key in benign:
            continue
        verdict = judge(value)
        if verdict is None:
            continue
        encoding, decoded_kind, ent = verdict
        yield Finding(rules.HIGH_ENTROPY_BLOB,
                      f"{path}: {len(value)}-character {encoding} value"
                      + (f" that decodes to {decoded_kind}" if decoded_kind else ""),
                      key=path, severity=Severity.HIGH if decoded_kind else Severity.LOW,
                      evidence={"path": path, "encoding": encoding, "length": len(value),
                                "decodes_to": decoded_kind, "entropy": round(ent, 2),
                                "head": value[:48]})
        reported += 1
        if reported >= 20:
            return


def judge(value: str) -> tuple[str, str | None, float] | None:
    """(encoding, what it decodes to or None, entropy) for a blob-like string, else None."""
    compact = value.strip()
    ent = _char_entropy(compact[:65536])
    if _HEX.fullmatch(compact):
        return "hex", _decoded_kind(binascii.unhexlify(compact[:8192])), ent
    if _B64.fullmatch(compact):
        decoded = _decoded_kind(_b64(compact))
        if decoded or ent > 4.5:
            return "base64", decoded, ent
    if ent > 5.5 and compact.count(" ") < len(compact) * 0.02:
        return "random-looking", None, ent
    return None


def _b64(text: str) -> bytes:
    head = text[:8192]
    head = head[:len(head) - len(head) % 4]
    try:
        if "-" in head or "_" in head:
            return base64.urlsafe_b64decode(head)
        return base64.b64decode(head)
    except (binascii.Error, ValueError):
        return b""


def _decoded_kind(data: bytes) -> str | None:
    return sniff.code_kind(data) if data else None


def _char_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _strings(art: Artifact, fmt: Format, policy: dict[str, Any]
             ) -> list[tuple[str, str, str]] | None:
    limit = int(policy["max_json_bytes"])
    if fmt in _JSON_FORMATS:
        if art.size is None or art.size > limit:
            return None
        with art.open() as stream:
            raw = stream.read(limit + 1)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        return _walk(data, int(policy["max_strings"]))
    if fmt is Format.SAFETENSORS:
        return _safetensors_metadata(art, limit)
    return None


def _safetensors_metadata(art: Artifact, limit: int) -> list[tuple[str, str, str]] | None:
    head = art.head()
    if len(head) < 8:
        return None
    (n,) = struct.unpack_from("<Q", head)
    if n > limit:
        return None
    raw = head[8:8 + n]
    if len(raw) < n:
        with art.open() as stream:
            stream.seek(8)
            raw = stream.read(n)
    try:
        meta = json.loads(raw).get("__metadata__")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(meta, dict):
        return None
    return [(f"__metadata__.{k}", str(k), v) for k, v in meta.items() if isinstance(v, str)]


def _walk(data: Any, cap: int) -> list[tuple[str, str, str]]:
    """(json path, key, string) of every string value, iteratively and bounded."""
    out: list[tuple[str, str, str]] = []
    stack: list[tuple[str, str, Any]] = [("$", "", data)]
    visited = 0
    while stack and visited < cap:
        path, key, node = stack.pop()
        visited += 1
        if isinstance(node, str):
            out.append((path, key, node))
        elif isinstance(node, dict):
            stack.extend((f"{path}.{k}", str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", key, v) for i, v in enumerate(node))
    return out
