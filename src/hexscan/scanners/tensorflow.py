"""The ``tensorflow`` scanner: ops in SavedModels and frozen GraphDefs that leave the graph.

It streams ``saved_model.pb`` or a frozen GraphDef through parsers/tensorflow (constant
payloads are skipped), judges every node of the graph and of the function library with
policy/tensorflow.toml, and follows the path input of saver/restore/table ops back
through the graph so that the standard saver wiring is not reported while a fixed path
outside the model is. ``keras_metadata.pb`` is the keras scanner's.
"""

from __future__ import annotations

import ntpath
import posixpath
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.pbstream import malformed_as_parse_error
from hexscan.parsers.tensorflow import (
    ScopeEnd,
    TfAsset,
    TfNode,
    input_node,
    iter_graph_def,
    iter_saved_model,
)
from hexscan.rules import tensorflow as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import KindQuota, ScanContext

#: Findings of one op per file before the rest are only counted.
_MAX_PER_OP = 20
#: Nodes remembered per scope for following paths back (Const, pass-through ops).
_MAX_REMEMBERED = 500_000
#: Hops followed back from a file op's path input.
_MAX_HOPS = 12
_KERAS_METADATA = "keras_metadata.pb"


@dataclass(frozen=True)
class TfPolicy:
    python_ops: frozenset[str]
    write_ops: frozenset[str]
    write_path_checked: frozenset[str]
    debug_ops: frozenset[str]
    url_attributes: tuple[str, ...]
    url_ops: frozenset[str]
    read_ops: frozenset[str]
    read_path_checked: frozenset[str]
    pass_through: frozenset[str]
    network_ops: frozenset[str]
    collective_ops: frozenset[str]
    proto_ops: frozenset[str]
    proto_inline_sources: tuple[str, ...]

    @property
    def path_checked(self) -> frozenset[str]:
        return self.write_path_checked | self.read_path_checked


@lru_cache(maxsize=1)
def load_policy() -> TfPolicy:
    data: dict[str, Any] = tomllib.loads(resources.files("hexscan.policy").joinpath(
        "tensorflow.toml").read_text(encoding="utf-8"))
    return TfPolicy(
        frozenset(data["python_ops"]), frozenset(data["write_ops"]),
        frozenset(data["write_path_checked"]), frozenset(data["debug_ops"]),
        tuple(data["url_attributes"]), frozenset(data["url_ops"]),
        frozenset(data["read_ops"]), frozenset(data["read_path_checked"]),
        frozenset(data["pass_through"]), frozenset(data["network_ops"]),
        frozenset(data["collective_ops"]), frozenset(data["proto_ops"]),
        tuple(data["proto_inline_sources"]))


def path_escapes(value: str) -> str | None:
    """Why a constant path leaves the model (absolute, '..', URL, home), or None."""
    if not value:
        return None
    if "://" in value:
        return "is a URL"
    if value.startswith(("/", "\\")) or ntpath.splitdrive(value)[0] or posixpath.isabs(value):
        return "is an absolute path"
    if ".." in value.replace("\\", "/").split("/"):
        return "climbs out with '..'"
    if value.startswith("~"):
        return "starts at a home directory"
    return None


@dataclass
class _Scope:
    """What one graph or function remembers to follow path inputs back."""

    remembered: dict[str, TfNode] = field(default_factory=dict)
    pending: list[TfNode] = field(default_factory=list)


@dataclass
class _State:
    scopes: dict[str, _Scope] = field(default_factory=dict)
    quota: KindQuota = field(default_factory=lambda: KindQuota(_MAX_PER_OP))

    def allow(self, op: str) -> bool:
        return self.quota.allow(op)


class TensorflowScanner:
    """Judges the ops of TensorFlow graphs without TensorFlow."""

    name: ClassVar[str] = "tensorflow"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({
        Format.TF_SAVEDMODEL, Format.TF_GRAPHDEF})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.PYFUNC_OP, rules.FILE_WRITE_OP, rules.FILE_READ_OP, rules.ASSET_ESCAPE)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        if artifact.basename.lower() == _KERAS_METADATA:
            return
        policy = load_policy()
        state = _State()
        walk = iter_saved_model if ctx.format is Format.TF_SAVEDMODEL else iter_graph_def
        with artifact.open() as stream, malformed_as_parse_error("TensorFlow protobuf"):
            for rec in walk(stream, artifact.size):
                if isinstance(rec, TfNode):
                    yield from _node(rec, policy, state)
                elif isinstance(rec, ScopeEnd):
                    yield from _resolve(state.scopes.pop(rec.scope, _Scope()), policy, state)
                elif isinstance(rec, TfAsset):
                    yield from _asset(rec)


def _asset(asset: TfAsset) -> Iterator[Finding]:
    reason = path_escapes(asset.filename)
    if reason:
        yield Finding(rules.ASSET_ESCAPE,
                      f"asset file {asset.filename!r} of meta graph {asset.meta_graph} {reason}",
                      key=asset.filename, evidence={"filename": asset.filename,
                                                    "reason": reason}, offset=asset.offset)


def _node(node: TfNode, policy: TfPolicy, state: _State) -> Iterator[Finding]:
    scope = state.scopes.setdefault(node.scope, _Scope())
    if node.op == "Const" or node.op in policy.pass_through or node.op == "Placeholder":
        if len(scope.remembered) < _MAX_REMEMBERED:
            scope.remembered[node.name] = node
    if node.op in policy.python_ops:
        if state.allow(node.op):
            yield _finding(rules.PYFUNC_OP, node,
                           f"op {node.op} calls a Python function registered in the process",
                           {"token": list(node.attr("token"))[:1]})
    elif node.op in policy.write_ops:
        if state.allow(node.op):
            yield _finding(rules.FILE_WRITE_OP, node, f"op {node.op} writes to the file system")
    elif node.op in policy.network_ops or node.op in policy.collective_ops:
        if state.allow(node.op):
            remote = node.op in policy.network_ops
            yield _finding(rules.FILE_WRITE_OP, node,
                           f"op {node.op} " + ("talks to another host (RPC or tf.data service)"
                                              if remote else
                                              "exchanges tensors with other workers"),
                           severity=Severity.HIGH if remote else Severity.MEDIUM)
    elif node.op in policy.proto_ops:
        yield from _descriptor_source(node, policy, state)
    elif node.op in policy.debug_ops or node.op in policy.url_ops:
        yield from _urls(node, policy, state)
    elif node.op in policy.read_ops or node.op in policy.path_checked:
        scope.pending.append(node) if len(scope.pending) < _MAX_REMEMBERED else None


def _urls(node: TfNode, policy: TfPolicy, state: _State) -> Iterator[Finding]:
    urls = [v for key in policy.url_attributes for v in node.attr(key) if v]
    if node.op in policy.url_ops:
        urls = [u for u in urls if "://" in u]
    if urls and state.allow(node.op):
        yield _finding(rules.FILE_WRITE_OP, node,
                       f"op {node.op} dumps tensors to {', '.join(urls[:3])}",
                       {"urls": urls[:8]})


def _descriptor_source(node: TfNode, policy: TfPolicy, state: _State) -> Iterator[Finding]:
    """DecodeProtoV2/EncodeProto read a FileDescriptorSet from a descriptor_source path."""
    sources = [v for v in node.attr("descriptor_source")
               if v and not v.startswith(policy.proto_inline_sources)]
    if sources and state.allow(node.op):
        yield _finding(rules.FILE_READ_OP, node,
                       f"op {node.op} reads protobuf descriptors from {sources[0]!r}",
                       {"path": sources[0]}, Severity.HIGH)


def _resolve(scope: _Scope, policy: TfPolicy, state: _State) -> Iterator[Finding]:
    """Judge the file ops of a finished scope, now that every node of it is known."""
    for node in scope.pending:
        paths = _constant_paths(node, scope.remembered, policy)
        escaping = [(p, why) for p in paths if (why := path_escapes(p))]
        writes = node.op in policy.write_path_checked
        if node.op in policy.path_checked and not escaping:
            continue
        if not state.allow(node.op):
            continue
        rule = rules.FILE_WRITE_OP if writes else rules.FILE_READ_OP
        verb = "writes" if writes else "reads"
        if escaping:
            path, why = escaping[0]
            yield _finding(rule, node, f"op {node.op} {verb} the fixed path {path!r}, which {why}",
                           {"path": path}, Severity.HIGH)
        else:
            shown = f" (path constants: {', '.join(repr(p) for p in paths[:3])})" if paths else ""
            yield _finding(rule, node, f"op {node.op} {verb} files chosen at run time{shown}",
                           {"paths": paths[:8]})


def _constant_paths(node: TfNode, known: dict[str, TfNode], policy: TfPolicy) -> list[str]:
    """String constants that flow into the node's inputs through pass-through ops."""
    found: list[str] = []
    seen: set[str] = set()
    frontier = [input_node(i) for i in node.inputs[:2] if not i.startswith("^")]
    for _ in range(_MAX_HOPS):
        nxt: list[str] = []
        for name in frontier:
            if name in seen or name not in known:
                continue
            seen.add(name)
            src = known[name]
            if src.op == "Const":
                found.extend(src.attr("value"))
            elif src.op in policy.pass_through:
                nxt.extend(input_node(i) for i in src.inputs if not i.startswith("^"))
        if not nxt:
            break
        frontier = nxt[:256]
    return found[:32]


def _finding(rule: Rule, node: TfNode, what: str, extra: dict[str, Any] | None = None,
             severity: Severity | None = None) -> Finding:
    evidence: dict[str, Any] = {"op": node.op, "node": node.name, "scope": node.scope}
    evidence.update(extra or {})
    return Finding(rule, f"{what} (node {node.name or '?'} in {node.scope})",
                   key=f"{node.op}:{node.scope}:{node.name}", severity=severity,
                   evidence=evidence, offset=node.offset)
