"""The ``tflite`` scanner: operators a TFLite model makes the interpreter run, and buffers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.tflite import CUSTOM, OpCode, TFLiteView, parse_tflite
from hexscan.policy import lists
from hexscan.rules import tflite as rules
from hexscan.rules._rule import Rule
from hexscan.scanners._io import random_access
from hexscan.scanners.base import ScanContext

_CATEGORIES = ("code", "file_read", "file_write", "network")


class TFLiteScanner:
    """Flex (TF Select) ops, unknown custom ops, out-of-bounds buffers."""

    name: ClassVar[str] = "tflite"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.TFLITE})
    rules: ClassVar[tuple[Rule, ...]] = (rules.FLEX_DANGEROUS_OP, rules.FLEX_OP,
                                         rules.CUSTOM_OP, rules.BUFFER_OUT_OF_BOUNDS)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        with random_access(artifact, ctx.limits) as source:
            view = parse_tflite(source)
        yield from _operator_findings(view)
        yield from _buffer_findings(view)


def _category(op: str) -> str | None:
    for category in _CATEGORIES:
        if op in lists.names("tflite", "flex", category):
            return category
    return None


def _operator_findings(view: TFLiteView) -> Iterator[Finding]:
    flex: list[OpCode] = []
    for code in view.opcodes:
        if code.builtin != CUSTOM or code.custom is None:
            continue
        if code.custom.startswith("Flex"):
            op = code.custom[4:]
            category = _category(op)
            if category is not None:
                yield Finding(rules.FLEX_DANGEROUS_OP,
                              f"TF Select op {op} ({category.replace('_', ' ')}) is used "
                              f"{code.uses} time(s)", key=code.custom,
                              severity=Severity.CRITICAL if category == "code" else None,
                              evidence={"op": op, "custom_code": code.custom,
                                        "category": category, "uses": code.uses,
                                        "opcode_index": code.index})
            else:
                flex.append(code)
        elif code.custom not in lists.names("tflite", "custom", "known"):
            yield Finding(rules.CUSTOM_OP, f"custom operator {code.custom!r} needs a kernel "
                          "supplied by the application", key=code.custom,
                          evidence={"custom_code": code.custom, "uses": code.uses,
                                    "opcode_index": code.index})
    if flex:
        ops = sorted({c.custom[4:] for c in flex if c.custom})
        yield Finding(rules.FLEX_OP, f"model needs TF Select ops: {', '.join(ops[:20])}",
                      key="flex", evidence={"ops": ops[:200]})


def _buffer_findings(view: TFLiteView) -> Iterator[Finding]:
    for buf in view.out_of_bounds[:50]:
        yield Finding(rules.BUFFER_OUT_OF_BOUNDS,
                      f"buffer {buf.index} spans bytes {buf.offset}..{buf.offset + buf.size}, "
                      "past the end of the file", key=f"buffer:{buf.index}",
                      evidence={"buffer": buf.index, "offset": buf.offset, "size": buf.size})
    for where, index in view.bad_buffer_refs[:50]:
        yield Finding(rules.BUFFER_OUT_OF_BOUNDS, f"{where} refers to buffer {index}, but the "
                      f"model has {len(view.buffers)}", key=f"tensor:{where}",
                      evidence={"tensor": where, "buffer": index,
                                "buffers": len(view.buffers)})
    for index in sorted(set(view.bad_opcode_refs))[:50]:
        yield Finding(rules.BUFFER_OUT_OF_BOUNDS, f"an operator refers to operator code "
                      f"{index}, but the model has {len(view.opcodes)}", key=f"opcode:{index}",
                      evidence={"opcode_index": index, "opcodes": len(view.opcodes)})
