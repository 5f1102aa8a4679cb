"""Code and payloads in the free text of an ONNX model (HEX-ONX-007).

Metadata values, doc_strings and string attributes are judged on what they hold, not on
how long or random they are: raw code (a pickle, an executable, marshalled Python), an
encoded blob that decodes to code, Python source that calls something dangerous, or a
shell command line. Prose, label maps, JSON configs and code examples without such calls
stay silent: exporters write all of those.
"""

from __future__ import annotations

import re

from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers import pysource, sniff
from hexscan.parsers.onnx import OnnxText
from hexscan.rules import onnx as rules
from hexscan.scanners._blobs import judge

#: Encoded blobs shorter than this are not decoded (a 32-character hex digest is common).
_MIN_BLOB = 48
_SHELL = re.compile(
    r"(?:\b(?:curl|wget)\b[^\n|;]{0,200}\|\s*(?:ba|z|da)?sh\b"
    r"|\b(?:ba|z|da)?sh\s+-c\s"
    r"|\bnc(?:at)?\s+(?:-\w+\s+)*-e\s"
    r"|\bpowershell(?:\.exe)?\s+(?:-\w+\s+)*-(?:enc|encodedcommand|c|command)\b"
    r"|\brm\s+-rf\s+[/~]"
    r"|>&?\s*/dev/(?:tcp|udp)/)", re.IGNORECASE)


def judge_text(rec: OnnxText) -> tuple[str, Severity] | None:
    """What the text holds and how severe it is, or None for ordinary text."""
    kind = sniff.code_kind(rec.data[:4096])
    if kind is not None:
        return kind, Severity.HIGH if sniff.runs_code(kind) else Severity.MEDIUM
    value = rec.data.decode("utf-8", "replace")
    stripped = value.strip()
    if len(stripped) >= _MIN_BLOB and " " not in stripped:
        verdict = judge(stripped)
        if verdict is not None and verdict[1] is not None:
            encoding, decoded, _ = verdict
            return (f"{encoding} encoding {decoded}",
                    Severity.HIGH if sniff.runs_code(decoded) else Severity.MEDIUM)
    shell = _SHELL.search(value)
    if shell is not None:
        return f"a shell command ({shell.group(0).strip()[:60]!r})", Severity.HIGH
    if "(" in value:
        facts = pysource.analyse(value)
        if facts.parsed and facts.calls:
            call = facts.calls[0]
            return f"Python source that calls {call.name} ({call.what})", Severity.HIGH
    return None


def text_finding(rec: OnnxText) -> Finding | None:
    verdict = judge_text(rec)
    if verdict is None:
        return None
    what, severity = verdict
    head = rec.data[:80].decode("utf-8", "backslashreplace")
    return Finding(
        rules.CODE_IN_METADATA,
        f"{rec.where} of {rec.scope} holds {what}",
        key=f"{rec.scope}:{rec.where}", severity=severity, offset=rec.offset,
        evidence={"scope": rec.scope, "where": rec.where, "holds": what, "head": head,
                  "length_cut": rec.cut})
