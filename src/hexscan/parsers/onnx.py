"""ONNX ModelProto -> a stream of small records, read without onnx and without the weights.

Field numbers are onnx.proto's (proto2): ModelProto{1 ir_version, 2 producer_name,
3 producer_version, 4 domain, 5 model_version, 6 doc_string, 7 graph, 8 opset_import,
14 metadata_props, 20 training_info, 25 functions}; GraphProto{1 node, 2 name,
5 initializer, 11 input, 12 output, 13 value_info, 15 sparse_initializer}; NodeProto{1 input,
2 output, 3 name, 4 op_type, 5 attribute, 7 domain}; AttributeProto{1 name, 5 t, 6 g,
10 tensors, 11 graphs, 22 sparse_tensor, 23 sparse_tensors}; TensorProto{1 dims, 2 data_type,
4..7,10,11 typed data, 8 name, 9 raw_data, 13 external_data, 14 data_location};
FunctionProto{1 name, 7 node, 10 domain}.

Tensor payloads (raw_data, packed typed data) are never read: only their lengths. The
parser yields records as it meets them; deciding what is dangerous is the scanner's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from hexscan.parsers.onnx_tensor import DTYPE_BITS, OnnxTensor, rescoped, sparse, tensor
from hexscan.parsers.pbstream import (
    LEN,
    VARINT,
    ProtoStream,
    StreamField,
    WireError,
    signed64,
    text,
)

__all__ = ["DTYPE_BITS", "ModelInfo", "OnnxFunction", "OnnxNode", "OnnxRecord", "OnnxTensor",
           "OnnxText", "iter_onnx"]

#: Longest name/domain/op string kept (longer ones are cut, and marked).
_NAME_CAP = 4096
#: Longest free-text value (doc_string, metadata_props, string attribute) kept as text.
TEXT_CAP = 64 * 1024
#: Most metadata_props entries read per message.
_MAX_PROPS = 4096
#: Longest string attribute value kept, and how many are kept per node.
_ATTR_CAP = 1024
_MAX_STRING_ATTRS = 32

@dataclass(frozen=True, slots=True)
class ModelInfo:
    """ModelProto's scalar fields and opset imports (reported once, at the end)."""

    ir_version: int | None
    producer_name: str
    producer_version: str
    opset_imports: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class OnnxNode:
    """One NodeProto: where it is (``scope``: graph/function path), its op and domain."""

    scope: str
    name: str
    op_type: str
    domain: str
    offset: int
    strings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OnnxFunction:
    """A model-local FunctionProto (domain, name); its nodes are yielded separately."""

    domain: str
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class OnnxText:
    """Free text the model carries: a doc_string, a metadata_props value or a string
    attribute (``where`` names which), as raw bytes cut at TEXT_CAP (``cut``)."""

    scope: str
    where: str
    data: bytes
    cut: bool
    offset: int


OnnxRecord = ModelInfo | OnnxNode | OnnxTensor | OnnxFunction | OnnxText


@dataclass
class _Model:
    ir_version: int | None = None
    producer_name: str = ""
    producer_version: str = ""
    opsets: list[tuple[str, int]] = field(default_factory=list)


def iter_onnx(stream: BinaryIO, size: int | None) -> Iterator[OnnxRecord]:
    """Walk an ONNX ModelProto; raises WireError on broken encoding."""
    ps = ProtoStream(stream, size)
    model = _Model()
    seen = False
    for f in ps.fields():
        seen = True
        if f.number == 1 and f.wire_type == VARINT:
            model.ir_version = signed64(f.value)
        elif f.number in (2, 3) and f.wire_type == LEN:
            value = _string(ps, f)
            if f.number == 2:
                model.producer_name = value
            else:
                model.producer_version = value
        elif f.number == 7 and f.wire_type == LEN:
            yield from _graph(ps, f.end, "graph")
        elif f.number == 8 and f.wire_type == LEN and len(model.opsets) < 4096:
            model.opsets.append(_opset(ps, f.end))
        elif f.number == 20 and f.wire_type == LEN:
            yield from _training_info(ps, f.end)
        elif f.number == 25 and f.wire_type == LEN:
            yield from _function(ps, f.end)
        elif f.number in (6, 14) and f.wire_type == LEN:
            yield from _free_text(ps, f, "model", 6, 14)
        else:
            _check_wire(f, {1: VARINT, 5: VARINT, 4: LEN, 6: LEN, 14: LEN})
    if not seen:
        raise WireError("empty ONNX model")
    yield ModelInfo(model.ir_version, model.producer_name, model.producer_version,
                    tuple(model.opsets))


def _check_wire(f: StreamField, expected: dict[int, int]) -> None:
    """A known field with the wrong wire type is a malformed message, not a skip."""
    want = expected.get(f.number)
    if want is not None and want != f.wire_type:
        raise WireError(f"field {f.number} has wire type {f.wire_type}, expected {want}")


def _string(ps: ProtoStream, f: StreamField, cap: int = _NAME_CAP) -> str:
    data, cut = ps.read_capped(f, cap)
    return text(data) + ("..." if cut else "")


def _free_text(ps: ProtoStream, f: StreamField, scope: str, doc: int,
               props: int) -> Iterator[OnnxText]:
    """A doc_string (field ``doc``) or one metadata_props entry (field ``props``)."""
    if f.number == doc:
        data, cut = ps.read_capped(f, TEXT_CAP)
        yield OnnxText(scope, "doc_string", data, cut, f.start)
        return
    key = ""
    for e in ps.fields(f.end):
        if e.number == 1 and e.wire_type == LEN:
            key = _string(ps, e)
        elif e.number == 2 and e.wire_type == LEN:
            data, cut = ps.read_capped(e, TEXT_CAP)
            yield OnnxText(scope, f"metadata_props[{key!r}]" if key else "metadata_props",
                           data, cut, e.start)


def _opset(ps: ProtoStream, end: int) -> tuple[str, int]:
    domain, version = "", 0
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            domain = _string(ps, f)
        elif f.number == 2 and f.wire_type == VARINT:
            version = signed64(f.value)
    return domain, version


def _graph(ps: ProtoStream, end: int, scope: str) -> Iterator[OnnxRecord]:
    for f in ps.fields(end):
        if f.wire_type != LEN:
            continue
        if f.number in (10, 16):
            yield from _free_text(ps, f, scope, 10, 16)
        elif f.number == 1:
            yield from _node(ps, f, scope)
        elif f.number == 5:
            yield tensor(ps, f, scope)
        elif f.number == 15:
            yield from sparse(ps, f.end, scope)


def _training_info(ps: ProtoStream, end: int) -> Iterator[OnnxRecord]:
    for f in ps.fields(end):
        if f.number in (1, 2) and f.wire_type == LEN:
            yield from _graph(ps, f.end, "training_info." +
                              ("initialization" if f.number == 1 else "algorithm"))


def _function(ps: ProtoStream, end: int) -> Iterator[OnnxRecord]:
    """FunctionProto: name and domain may come after the nodes, so nodes are held."""
    start = ps.pos
    name = domain = ""
    nodes: list[OnnxRecord] = []
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            name = _string(ps, f)
        elif f.number == 10 and f.wire_type == LEN:
            domain = _string(ps, f)
        elif f.number in (8, 14) and f.wire_type == LEN:
            nodes.extend(_free_text(ps, f, "function", 8, 14))
        elif f.number == 7 and f.wire_type == LEN:
            nodes.extend(_node(ps, f, "function"))
            if len(nodes) > 1_000_000:
                raise WireError("a function holds more than a million nodes")
    yield OnnxFunction(domain, name, start)
    label = f"function {domain}.{name}" if domain else f"function {name}"
    for rec in nodes:
        if isinstance(rec, OnnxNode):
            yield OnnxNode(label, rec.name, rec.op_type, rec.domain, rec.offset, rec.strings)
        elif isinstance(rec, OnnxTensor):
            yield rescoped(rec, label)
        elif isinstance(rec, OnnxText):
            yield OnnxText(label, rec.where, rec.data, rec.cut, rec.offset)
        else:
            yield rec


def _node(ps: ProtoStream, nf: StreamField, scope: str) -> Iterator[OnnxRecord]:
    name = op_type = domain = ""
    inner: list[OnnxRecord] = []
    strings: list[tuple[str, str]] = []
    for f in ps.fields(nf.end):
        if f.wire_type != LEN:
            continue
        if f.number == 3:
            name = _string(ps, f)
        elif f.number == 4:
            op_type = _string(ps, f)
        elif f.number == 7:
            domain = _string(ps, f)
        elif f.number == 5:
            records, string = _attribute(ps, f.end, scope)
            inner.extend(records)
            if string is not None and len(strings) < _MAX_STRING_ATTRS:
                strings.append(string)
        elif f.number in (6, 9):
            inner.extend(_free_text(ps, f, "node", 6, 9))
    node = OnnxNode(scope, name, op_type, domain, nf.start, tuple(strings))
    yield node
    for rec in inner:
        yield _within(rec, node)


def _within(rec: OnnxRecord, node: OnnxNode) -> OnnxRecord:
    """Records met inside a node's attributes, scoped under that node."""
    prefix = f"{node.scope}/{node.op_type}:{node.name}"
    return _scoped(rec, lambda scope: f"{prefix}/{scope}")


def _scoped(rec: OnnxRecord, scope_of: Callable[[str], str]) -> OnnxRecord:
    """``rec`` with its scope rewritten by ``scope_of``; records without a scope unchanged.

    Subgraphs hide in attributes at any depth, so a finding must name the whole path.
    """
    if isinstance(rec, OnnxNode):
        return OnnxNode(scope_of(rec.scope), rec.name, rec.op_type, rec.domain, rec.offset,
                        rec.strings)
    if isinstance(rec, OnnxTensor):
        return rescoped(rec, scope_of(rec.scope))
    if isinstance(rec, OnnxText):
        return OnnxText(scope_of(rec.scope), rec.where, rec.data, rec.cut, rec.offset)
    return rec


def _attribute(ps: ProtoStream, end: int,
               scope: str) -> tuple[list[OnnxRecord], tuple[str, str] | None]:
    """Tensors and subgraphs held by an attribute (If/Loop/Scan bodies, Constant values).

    Subgraph records are collected because the attribute's name may follow them; nodes
    are small records, and tensors carry no payloads, so this stays bounded by structure.
    """
    out: list[OnnxRecord] = []
    attr_name = ""
    value: str | None = None
    raw: list[tuple[str, bytes, bool, int]] = []
    for f in ps.fields(end):
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            attr_name = _string(ps, f)
        elif f.number in (4, 9, 13) and len(raw) < _MAX_STRING_ATTRS:
            data, cut = ps.read_capped(f, TEXT_CAP)
            raw.append(({4: "s", 9: "strings", 13: "doc_string"}[f.number], data, cut, f.start))
            if f.number == 4:
                value = text(data[:_ATTR_CAP]) + ("..." if cut or len(data) > _ATTR_CAP
                                                   else "")
        elif f.number in (5, 10):
            out.append(tensor(ps, f, "attribute"))
        elif f.number in (6, 11):
            out.extend(_graph(ps, f.end, "subgraph"))
        elif f.number in (22, 23):
            out.extend(sparse(ps, f.end, "attribute"))
        if len(out) > 1_000_000:
            raise WireError("an attribute holds more than a million records")
    if attr_name:
        out = [_attr_scoped(rec, attr_name) for rec in out]
    out.extend(OnnxText("node", f"attribute {attr_name or '?'} ({kind})", data, cut, at)
               for kind, data, cut, at in raw)
    return out, (attr_name, value) if value is not None else None


def _attr_scoped(rec: OnnxRecord, attr: str) -> OnnxRecord:
    """A record of a graph-valued attribute, scoped under the attribute's name."""
    return _scoped(rec, lambda scope: f"{attr}:{scope}")


