"""The ``onnx`` scanner: external data paths, Python and custom operators, tensor sanity.

It streams the ModelProto through parsers/onnx (payloads are skipped, never read) and
judges the records with policy/onnx.toml. External data locations are resolved against
the model's directory on disk without opening the target.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.onnx import (
    DTYPE_BITS,
    ModelInfo,
    OnnxFunction,
    OnnxNode,
    OnnxTensor,
    OnnxText,
    iter_onnx,
)
from hexscan.parsers.pbstream import malformed_as_parse_error
from hexscan.rules import onnx as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import KindQuota, ScanContext
from hexscan.scanners.onnx_external import (
    RangeBook,
    external_target,
    location_escape,
    range_problems,
)
from hexscan.scanners.onnx_text import text_finding
from hexscan.supply.inventory import framework_from_onnx

#: Findings of one kind reported per file before the rest are only counted.
_MAX_PER_KIND = 50
_INT64_MAX = (1 << 63) - 1
#: Packed fixed-width typed fields: number -> (bytes per value, data types stored there).
_FIXED_TYPED: dict[int, tuple[int, tuple[int, ...]]] = {4: (4, (1, 14)), 10: (8, (11, 15))}


@dataclass(frozen=True)
class OnnxPolicy:
    standard_domains: frozenset[str]
    operators: dict[str, frozenset[str]]
    python_ops: frozenset[str]
    python_domains: frozenset[str]
    python_attributes: tuple[str, ...]

    def known(self, domain: str, op: str) -> bool:
        dom = "ai.onnx" if domain in ("", "ai.onnx") else domain
        return op in self.operators.get(dom, frozenset())


@lru_cache(maxsize=1)
def load_policy() -> OnnxPolicy:
    data: dict[str, Any] = tomllib.loads(
        resources.files("hexscan.policy").joinpath("onnx.toml").read_text(encoding="utf-8"))
    return OnnxPolicy(
        frozenset(data["standard_domains"]),
        {k: frozenset(v) for k, v in data["operators"].items()},
        frozenset(data["python_ops"]), frozenset(data["python_domains"]),
        tuple(data["python_attributes"]))


@dataclass
class _State:
    quota: KindQuota = field(default_factory=lambda: KindQuota(_MAX_PER_KIND))
    custom: dict[tuple[str, str], int] = field(default_factory=dict)
    functions: list[OnnxFunction] = field(default_factory=list)
    ranges: RangeBook = field(default_factory=RangeBook)
    #: Bytes of free text (metadata, doc_strings, string attributes) judged per model.
    text_budget: int = 16 << 20
    model_path: str | None = None

    def allow(self, kind: str) -> bool:
        return self.quota.allow(kind)


class OnnxScanner:
    """Judges ONNX models without loading them."""

    name: ClassVar[str] = "onnx"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.ONNX})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.EXTERNAL_DATA_ESCAPE, rules.PYTHON_OP, rules.CUSTOM_DOMAIN_OP,
        rules.FUNCTION_SHADOWS_OP, rules.IMPLAUSIBLE_TENSOR, rules.EXTERNAL_DATA_RANGE,
        rules.CODE_IN_METADATA,
    )

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        policy = load_policy()
        model_dir = _model_dir(artifact)
        state = _State(model_path=artifact.file_path if model_dir else None)
        with artifact.open() as stream, malformed_as_parse_error("ONNX protobuf"):
            for rec in iter_onnx(stream, artifact.size):
                if isinstance(rec, OnnxNode):
                    yield from _node(rec, policy, state)
                elif isinstance(rec, OnnxTensor):
                    yield from _tensor(rec, model_dir, state)
                elif isinstance(rec, OnnxFunction):
                    if len(state.functions) < 100_000:
                        state.functions.append(rec)
                elif isinstance(rec, OnnxText) and state.text_budget > 0:
                    state.text_budget -= len(rec.data)
                    found = text_finding(rec)
                    if found is not None and state.allow("text"):
                        yield found
                elif isinstance(rec, ModelInfo):
                    _record_producer(rec, ctx)
        yield from _custom_ops(state)
        yield from _shadowing(state, policy)


def _record_producer(info: ModelInfo, ctx: ScanContext) -> None:
    """The producer (pytorch 2.5.1, tf2onnx...) is a framework version for supply.match."""
    for dep in framework_from_onnx(info.producer_name, info.producer_version):
        ctx.record("dependency", **asdict(dep))


def _model_dir(artifact: Artifact) -> str | None:
    """The directory external data is resolved against, for a model file on disk."""
    if artifact.member is not None:
        return None
    return os.path.dirname(os.path.abspath(artifact.file_path))


# ------------------------------------------------------------------------ operators

def _node(node: OnnxNode, policy: OnnxPolicy, state: _State) -> Iterator[Finding]:
    if node.op_type in policy.python_ops or node.domain in policy.python_domains:
        if state.allow("python"):
            qual = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
            code = {k: v for k, v in node.strings if k in policy.python_attributes}
            named = f", importing {', '.join(f'{k}={v!r}' for k, v in code.items())}" \
                if code else ""
            yield Finding(
                rules.PYTHON_OP,
                f"node {node.name or '?'} ({node.scope}) is the Python operator {qual}{named}",
                key=f"{node.domain}:{node.op_type}:{node.scope}:{node.name}",
                evidence={"op_type": node.op_type, "domain": node.domain,
                          "node": node.name, "scope": node.scope, "python": code},
                offset=node.offset)
        return
    if node.domain in policy.standard_domains or policy.known(node.domain, node.op_type):
        return
    key = (node.domain, node.op_type)
    state.custom[key] = state.custom.get(key, 0) + 1


def _custom_ops(state: _State) -> Iterator[Finding]:
    """Operators no standard set defines and no model-local function implements.

    A node calling a function of the model (same domain and name) runs that function's
    nodes, which are checked on their own. An unknown com.microsoft operator makes
    onnxruntime refuse the model (LOW); any other domain needs a library the loading
    program registers, native or Python (MEDIUM).
    """
    local = {(fn.domain, fn.name) for fn in state.functions}
    unresolved = [(key, count) for key, count in sorted(state.custom.items())
                  if key not in local]
    for (domain, op), count in unresolved[:_MAX_PER_KIND]:
        yield Finding(
            rules.CUSTOM_DOMAIN_OP,
            f"operator {op} of custom domain {domain!r} is used by {count} node(s); it needs "
            "a custom-operator library to run",
            key=f"{domain}:{op}", severity=Severity.LOW if domain == "com.microsoft" else None,
            evidence={"domain": domain, "op_type": op, "nodes": count})


def _shadowing(state: _State, policy: OnnxPolicy) -> Iterator[Finding]:
    for fn in state.functions[:10_000]:
        if (fn.domain in policy.standard_domains or fn.domain == "com.microsoft") and \
                policy.known(fn.domain, fn.name):
            yield Finding(
                rules.FUNCTION_SHADOWS_OP,
                f"model-local function {fn.domain or 'ai.onnx'}.{fn.name} has the identity of "
                "a standard operator",
                key=f"{fn.domain}:{fn.name}", evidence={"domain": fn.domain, "name": fn.name},
                offset=fn.offset)


# ------------------------------------------------------------------------ tensors

def _tensor(t: OnnxTensor, model_dir: str | None, state: _State) -> Iterator[Finding]:
    label = f"tensor {t.name or '?'} ({t.scope})"
    ext = dict(t.external)
    if t.external or t.data_location == 1:
        location = ext.get("location")
        if location is None:
            if state.allow("implausible"):
                yield _implausible(t, f"{label} is stored externally but names no location",
                                   "no-location")
        else:
            reason = location_escape(location, model_dir)
            if reason and state.allow("escape"):
                yield Finding(
                    rules.EXTERNAL_DATA_ESCAPE,
                    f"{label} keeps its data at {location!r}, which {reason}",
                    key=f"{t.name}:{location}",
                    evidence={"tensor": t.name, "location": location, "reason": reason},
                    offset=t.offset)
            yield from _ranges(t, ext, None if reason or model_dir is None else
                               external_target(location, model_dir), label, state)
    problem = tensor_problem(t, ext)
    if problem and state.allow("implausible"):
        yield _implausible(t, f"{label}: {problem}", problem.split(":")[0])


def _ranges(t: OnnxTensor, ext: dict[str, str], target: str | None, label: str,
            state: _State) -> Iterator[Finding]:
    """The external byte range against its file's size, and against other tensors."""
    for problem in range_problems(ext, target, state.model_path, t.name, state.ranges):
        if state.allow("range"):
            yield Finding(
                rules.EXTERNAL_DATA_RANGE, f"{label}: {problem.detail}",
                key=f"{t.scope}:{t.name}:{problem.reason}",
                severity=None if problem.high else Severity.MEDIUM,
                evidence={"tensor": t.name, "location": ext.get("location"),
                          "offset": ext.get("offset"), "length": ext.get("length"),
                          "reason": problem.reason},
                offset=t.offset)


def _implausible(t: OnnxTensor, message: str, what: str) -> Finding:
    return Finding(rules.IMPLAUSIBLE_TENSOR, message, key=f"{t.scope}:{t.name}:{what}",
                   evidence={"tensor": t.name, "dims": list(t.dims[:16]),
                             "data_type": t.data_type, "raw_data_length": t.raw_length},
                   offset=t.offset)


def _expected_bytes(t: OnnxTensor) -> int | None:
    bits = DTYPE_BITS.get(t.data_type)
    if bits is None or t.dims_truncated:
        return None
    count = math.prod(t.dims) if t.dims else 1
    return (count * bits + 7) // 8


def tensor_problem(t: OnnxTensor, ext: dict[str, str]) -> str | None:
    """What is implausible about a tensor's declared shape and stored size, or None."""
    if t.dims_truncated:
        return "rank: more than 1024 dimensions"
    if any(d < 0 for d in t.dims):
        return f"negative-dim: dims {list(t.dims[:16])} contain a negative size"
    count = math.prod(t.dims) if t.dims else 1
    if count > _INT64_MAX:
        return "overflow: the product of the dims overflows 64 bits"
    expected = _expected_bytes(t)
    if expected is None:
        return None
    if t.raw_length is not None and t.raw_length != expected:
        return (f"raw-size: raw_data holds {t.raw_length} bytes, the shape needs {expected}")
    return _typed_problem(t, count) or _external_problem(ext, expected)


def _typed_problem(t: OnnxTensor, count: int) -> str | None:
    """Packed float/double data whose value count disagrees with the shape."""
    for number, size, is_count in t.typed:
        width, dtypes = _FIXED_TYPED.get(number, (0, ()))
        if not width or is_count or t.raw_length is not None or t.data_type not in dtypes:
            continue
        elements = count * (2 if t.data_type in (14, 15) else 1)
        if size != elements * width:
            return (f"typed-size: the typed data holds {size // width} values, the shape "
                    f"needs {elements}")
    return None


def _external_problem(ext: dict[str, str], expected: int) -> str | None:
    """external_data length/offset that are not numbers or disagree with the shape."""
    length = ext.get("length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            return f"external-length: external_data length {length!r} is not a number"
        if declared != expected:
            return (f"external-size: external_data length {declared} disagrees with the "
                    f"shape's {expected} bytes")
    offset = ext.get("offset")
    if offset is not None:
        try:
            int(offset)
        except ValueError:
            return f"external-offset: external_data offset {offset!r} is not a number"
    return None
