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

from hexscan.parsers.pbstream import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    ProtoStream,
    StreamField,
    WireError,
    packed_varints,
    signed64,
    text,
)

#: Longest name/domain/op string kept (longer ones are cut, and marked).
_NAME_CAP = 4096
#: Longest external-data value kept.
_VALUE_CAP = 64 * 1024
#: Most dims read per tensor (ONNX has no rank limit; a million dims is an attack).
_MAX_DIMS = 1024
#: Longest string attribute value kept, and how many are kept per node.
_ATTR_CAP = 1024
_MAX_STRING_ATTRS = 32
#: Most external-data entries kept per tensor.
_MAX_EXTERNAL = 64

#: TensorProto.DataType -> bits per element (None: variable size, e.g. STRING).
DTYPE_BITS: dict[int, int | None] = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 8: None, 9: 8, 10: 16, 11: 64, 12: 32,
    13: 64, 14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8,
    25: 2, 26: 2, 27: 6, 28: 6,
}

#: Typed-data fields of TensorProto -> bytes per element when packed (varints: None).
_TYPED_FIELDS: dict[int, int | None] = {4: 4, 5: None, 6: None, 7: None, 10: 8, 11: None}


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
class OnnxTensor:
    """One TensorProto, with payload sizes instead of payloads.

    ``dims`` as stored (int64, possibly negative); ``raw_length`` the raw_data length or
    None; ``typed`` (field number, payload bytes or element count) of the typed fields;
    ``external`` the external_data key/value pairs; ``data_location`` 1 = EXTERNAL.
    """

    scope: str
    name: str
    data_type: int
    dims: tuple[int, ...]
    dims_truncated: bool
    raw_length: int | None
    typed: tuple[tuple[int, int, bool], ...]
    external: tuple[tuple[str, str], ...]
    data_location: int
    offset: int


@dataclass(frozen=True, slots=True)
class OnnxFunction:
    """A model-local FunctionProto (domain, name); its nodes are yielded separately."""

    domain: str
    name: str
    offset: int


OnnxRecord = ModelInfo | OnnxNode | OnnxTensor | OnnxFunction


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
        if f.number == 1:
            yield from _node(ps, f, scope)
        elif f.number == 5:
            yield _tensor(ps, f, scope)
        elif f.number == 15:
            yield from _sparse(ps, f.end, scope)


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
            yield _rescoped(rec, label)
        else:
            yield rec


def _rescoped(t: OnnxTensor, scope: str) -> OnnxTensor:
    return OnnxTensor(scope, t.name, t.data_type, t.dims, t.dims_truncated, t.raw_length,
                      t.typed, t.external, t.data_location, t.offset)


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
        return _rescoped(rec, scope_of(rec.scope))
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
    for f in ps.fields(end):
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            attr_name = _string(ps, f)
        elif f.number == 4:
            value = _string(ps, f, _ATTR_CAP)
        elif f.number in (5, 10):
            out.append(_tensor(ps, f, "attribute"))
        elif f.number in (6, 11):
            out.extend(_graph(ps, f.end, "subgraph"))
        elif f.number in (22, 23):
            out.extend(_sparse(ps, f.end, "attribute"))
        if len(out) > 1_000_000:
            raise WireError("an attribute holds more than a million records")
    if attr_name:
        out = [_attr_scoped(rec, attr_name) for rec in out]
    return out, (attr_name, value) if value is not None else None


def _attr_scoped(rec: OnnxRecord, attr: str) -> OnnxRecord:
    """A record of a graph-valued attribute, scoped under the attribute's name."""
    return _scoped(rec, lambda scope: f"{attr}:{scope}")


def _sparse(ps: ProtoStream, end: int, scope: str) -> Iterator[OnnxRecord]:
    for f in ps.fields(end):
        if f.number in (1, 2) and f.wire_type == LEN:
            yield _tensor(ps, f, f"{scope}.sparse.{'values' if f.number == 1 else 'indices'}")


def _tensor(ps: ProtoStream, tf: StreamField, scope: str) -> OnnxTensor:
    name = ""
    data_type = 0
    dims: list[int] = []
    dims_cut = False
    raw_length: int | None = None
    typed: dict[int, list[int]] = {}
    external: list[tuple[str, str]] = []
    location = 0
    for f in ps.fields(tf.end):
        n, w = f.number, f.wire_type
        if n == 1:
            dims_cut = _dims(ps, f, dims) or dims_cut
        elif n == 2 and w == VARINT:
            data_type = signed64(f.value)
        elif n == 8 and w == LEN:
            name = _string(ps, f)
        elif n == 9 and w == LEN:
            raw_length = f.length  # the payload is skipped, never read
        elif n == 13 and w == LEN and len(external) < _MAX_EXTERNAL:
            external.append(_entry(ps, f.end))
        elif n == 14 and w == VARINT:
            location = signed64(f.value)
        elif n in _TYPED_FIELDS:
            _typed(f, typed)
    return OnnxTensor(scope, name, data_type, tuple(dims), dims_cut, raw_length,
                      tuple((k, v[0], bool(v[1])) for k, v in sorted(typed.items())),
                      tuple(external), location, tf.start)


def _dims(ps: ProtoStream, f: StreamField, dims: list[int]) -> bool:
    """Add dims from an unpacked varint or a packed run; True when some were dropped."""
    if f.wire_type == VARINT:
        if len(dims) < _MAX_DIMS:
            dims.append(signed64(f.value))
            return False
        return True
    if f.wire_type == LEN:
        data, cut = ps.read_capped(f, _MAX_DIMS * 10)
        try:
            values = packed_varints(data)
        except WireError:
            if not cut:
                raise
            values = []
        room = _MAX_DIMS - len(dims)
        dims.extend(signed64(v) for v in values[:room])
        return cut or len(values) > room
    raise WireError("dims has an unexpected wire type")


def _typed(f: StreamField, typed: dict[int, list[int]]) -> None:
    """Record the size of a typed-data field: [bytes or count, 1 if element count]."""
    slot = typed.setdefault(f.number, [0, 0])
    if f.wire_type == LEN:
        slot[0] += f.length
    elif f.wire_type in (VARINT, FIXED32, FIXED64):
        slot[0] += 1
        slot[1] = 1


def _entry(ps: ProtoStream, end: int) -> tuple[str, str]:
    key = value = ""
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            key = _string(ps, f, _NAME_CAP)
        elif f.number == 2 and f.wire_type == LEN:
            value = _string(ps, f, _VALUE_CAP)
    return key, value
