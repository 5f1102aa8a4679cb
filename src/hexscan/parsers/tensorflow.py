"""TensorFlow SavedModel / frozen GraphDef -> a stream of small node records.

Read without TensorFlow, streaming (pbstream): constant payloads (tensor_content) are
skipped, never read. Field numbers are TensorFlow's: SavedModel{1 schema_version,
2 meta_graphs}; MetaGraphDef{1 meta_info_def{4 tags, 5 tensorflow_version}, 2 graph_def,
5 signature_def, 6 asset_file_def{2 filename}, 7 object_graph_def}; GraphDef{1 node,
2 library{1 function{1 signature{1 name}, 3 node_def}}, 4 versions}; NodeDef{1 name, 2 op,
3 input, 4 device, 5 attr{1 key, 2 AttrValue{1 list{2 s}, 2 s, 8 tensor{1 dtype,
4 tensor_content, 8 string_val}}}}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from hexscan.parsers.pbstream import LEN, VARINT, ProtoStream, StreamField, WireError, text

_NAME_CAP = 4096
_STRING_CAP = 4096
_MAX_INPUTS = 16
_MAX_STRINGS = 32
_MAX_FUNCTION_NODES = 2_000_000


@dataclass(frozen=True, slots=True)
class TfNode:
    """One NodeDef: its scope (graph or function), name, op, first inputs, string attrs.

    ``strings`` maps attribute names to the strings they hold (``s``, ``list.s`` and a
    string tensor's ``string_val``), each cut at a few KiB and a few dozen values.
    """

    scope: str
    name: str
    op: str
    inputs: tuple[str, ...]
    device: str
    strings: tuple[tuple[str, tuple[str, ...]], ...]
    offset: int

    def attr(self, key: str) -> tuple[str, ...]:
        for name, values in self.strings:
            if name == key:
                return values
        return ()


@dataclass(frozen=True, slots=True)
class ScopeEnd:
    """All nodes of ``scope`` have been yielded (its inputs can now be resolved)."""

    scope: str


@dataclass(frozen=True, slots=True)
class TfAsset:
    """An AssetFileDef of a MetaGraphDef: the file name the loader joins to assets/."""

    meta_graph: int
    filename: str
    offset: int


@dataclass(frozen=True, slots=True)
class TfMetaInfo:
    meta_graph: int
    tags: tuple[str, ...]
    tensorflow_version: str


TfRecord = TfNode | ScopeEnd | TfAsset | TfMetaInfo


def iter_saved_model(stream: BinaryIO, size: int | None) -> Iterator[TfRecord]:
    """Walk a ``saved_model.pb`` (SavedModel message); raises WireError when broken."""
    ps = ProtoStream(stream, size)
    index = 0
    for f in ps.fields():
        if f.number == 1 and f.wire_type != VARINT:
            raise WireError("saved_model_schema_version is not a varint")
        if f.number == 2:
            _expect(f, LEN)
            yield from _meta_graph(ps, f.end, index)
            index += 1


def iter_graph_def(stream: BinaryIO, size: int | None) -> Iterator[TfRecord]:
    """Walk a frozen GraphDef (``.pb``); raises WireError when broken."""
    ps = ProtoStream(stream, size)
    yield from _graph(ps, None, "graph")


def _expect(f: StreamField, wire_type: int) -> None:
    if f.wire_type != wire_type:
        raise WireError(f"field {f.number} has wire type {f.wire_type}, expected {wire_type}")


def _meta_graph(ps: ProtoStream, end: int, index: int) -> Iterator[TfRecord]:
    prefix = f"meta_graph[{index}]"
    for f in ps.fields(end):
        if f.number == 1:
            _expect(f, LEN)
            yield _meta_info(ps, f.end, index)
        elif f.number == 2:
            _expect(f, LEN)
            yield from _graph(ps, f.end, f"{prefix}.graph")
        elif f.number == 6:
            _expect(f, LEN)
            for g in ps.fields(f.end):
                if g.number == 2 and g.wire_type == LEN:
                    yield TfAsset(index, _string(ps, g), f.start)


def _meta_info(ps: ProtoStream, end: int, index: int) -> TfMetaInfo:
    tags: list[str] = []
    version = ""
    for f in ps.fields(end):
        if f.number == 4 and f.wire_type == LEN and len(tags) < 64:
            tags.append(_string(ps, f, 256))
        elif f.number == 5 and f.wire_type == LEN:
            version = _string(ps, f, 256)
    return TfMetaInfo(index, tuple(tags), version)


def _graph(ps: ProtoStream, end: int | None, scope: str) -> Iterator[TfRecord]:
    for f in ps.fields(end):
        if f.number == 1:
            _expect(f, LEN)
            yield _node(ps, f, scope)
        elif f.number == 2:
            _expect(f, LEN)
            yield from _library(ps, f.end, scope)
    yield ScopeEnd(scope)


def _library(ps: ProtoStream, end: int, graph_scope: str) -> Iterator[TfRecord]:
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            yield from _function(ps, f.end, graph_scope)


def _function(ps: ProtoStream, end: int, graph_scope: str) -> Iterator[TfRecord]:
    """FunctionDef: the signature (name) normally comes first; nodes are held until then."""
    name: str | None = None
    held: list[TfNode] = []
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            for g in ps.fields(f.end):
                if g.number == 1 and g.wire_type == LEN:
                    name = _string(ps, g)
        elif f.number == 3 and f.wire_type == LEN:
            held.append(_node(ps, f, ""))
            if len(held) > _MAX_FUNCTION_NODES:
                raise WireError("a function holds more than two million nodes")
    scope = f"{graph_scope}.function[{name or '?'}]"
    for node in held:
        yield TfNode(scope, node.name, node.op, node.inputs, node.device, node.strings,
                     node.offset)
    yield ScopeEnd(scope)


@dataclass
class _NodeBuild:
    name: str = ""
    op: str = ""
    device: str = ""
    inputs: list[str] = field(default_factory=list)
    strings: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


def _node(ps: ProtoStream, nf: StreamField, scope: str) -> TfNode:
    b = _NodeBuild()
    for f in ps.fields(nf.end):
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            b.name = _string(ps, f)
        elif f.number == 2:
            b.op = _string(ps, f, 512)
        elif f.number == 3 and len(b.inputs) < _MAX_INPUTS:
            b.inputs.append(_string(ps, f))
        elif f.number == 4:
            b.device = _string(ps, f, 512)
        elif f.number == 5:
            key, values = _attr_entry(ps, f.end)
            if values and len(b.strings) < _MAX_STRINGS:
                b.strings.append((key, values))
    return TfNode(scope, b.name, b.op, tuple(b.inputs), b.device, tuple(b.strings), nf.start)


def _attr_entry(ps: ProtoStream, end: int) -> tuple[str, tuple[str, ...]]:
    key = ""
    values: list[str] = []
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            key = _string(ps, f, 256)
        elif f.number == 2 and f.wire_type == LEN:
            _attr_value(ps, f.end, values)
    return key, tuple(values)


def _attr_value(ps: ProtoStream, end: int, values: list[str]) -> None:
    for f in ps.fields(end):
        if f.wire_type != LEN:
            continue
        if f.number == 2:
            _add(values, _string(ps, f, _STRING_CAP))
        elif f.number == 1:
            for g in ps.fields(f.end):
                if g.number == 2 and g.wire_type == LEN:
                    _add(values, _string(ps, g, _STRING_CAP))
        elif f.number == 8:
            for g in ps.fields(f.end):  # TensorProto: only string_val; tensor_content skipped
                if g.number == 8 and g.wire_type == LEN:
                    _add(values, _string(ps, g, _STRING_CAP))


def _add(values: list[str], value: str) -> None:
    if len(values) < _MAX_STRINGS:
        values.append(value)


def _string(ps: ProtoStream, f: StreamField, cap: int = _NAME_CAP) -> str:
    data, cut = ps.read_capped(f, cap)
    return text(data) + ("..." if cut else "")


def input_node(name: str) -> str:
    """The producing node of an input reference (``^ctrl``, ``n:1``, ``n:output:0``)."""
    return name.lstrip("^").split(":", 1)[0]
