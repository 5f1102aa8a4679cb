"""Caffe nets: binary NetParameter (.caffemodel) and text format (.prototxt), structurally.

NetParameter: 1 name, 2 layers (V1LayerParameter: 4 name, 5 type enum), 100 layer
(LayerParameter: 1 name, 2 type, 113 hdf5_output_param {1 file_name},
130 python_param {1 module, 2 layer, 3 param_str}).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hexscan.errors import LimitExceeded, ParseError
from hexscan.parsers.flatbuf import ByteSource
from hexscan.parsers.pbstream import Walker
from hexscan.parsers.protowire import LEN, VARINT

_LAYER, _LAYERS_V1 = 100, 2
_PYTHON_PARAM, _HDF5_OUTPUT = 130, 113
#: Text-format bounds.
MAX_TOKENS = 2_000_000
MAX_DEPTH = 64


@dataclass
class CaffeLayer:
    name: str = ""
    type: str = ""
    python: dict[str, str] | None = None
    hdf5_file: str | None = None


@dataclass
class CaffeView:
    name: str = ""
    layers: list[CaffeLayer] = field(default_factory=list)


def parse_caffemodel(source: ByteSource) -> CaffeView:
    walker = Walker(source)
    view = CaffeView()
    for f in walker.fields():
        if f.number == 1 and f.wire_type == LEN:
            view.name = walker.text(f, 256)
        elif f.number in (_LAYER, _LAYERS_V1) and f.wire_type == LEN:
            view.layers.append(_binary_layer(walker, f.start, f.start + f.length,
                                             v1=f.number == _LAYERS_V1))
    return view


def _binary_layer(w: Walker, start: int, end: int, v1: bool) -> CaffeLayer:
    layer = CaffeLayer()
    name_no, type_no = (4, 5) if v1 else (1, 2)
    for f in w.fields(start, end):
        if f.number == name_no and f.wire_type == LEN:
            layer.name = w.text(f, 256)
        elif f.number == type_no:
            layer.type = str(f.value) if f.wire_type == VARINT else w.text(f, 256)
        elif f.number == _PYTHON_PARAM and f.wire_type == LEN:
            params = {1: "module", 2: "layer", 3: "param_str"}
            layer.python = {params[g.number]: w.text(g, 1024) for g in w.sub(f)
                            if g.number in params and g.wire_type == LEN}
        elif f.number == _HDF5_OUTPUT and f.wire_type == LEN and not v1:
            layer.hdf5_file = w.first_text(f.start, f.start + f.length, 1) or ""
    return layer


# --- text format ---------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[\s,;]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}:<>\[\]])
  | (?P<word>[^\s{}:<>\[\],;"'#]+)
""", re.VERBOSE)

Node = tuple[str, "str | list[Node]"]


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"prototxt: unexpected character at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group()))
            if len(out) > MAX_TOKENS:
                raise LimitExceeded("max_tokens", "prototxt has too many tokens")
    return out


def parse_text(text: str) -> list[Node]:
    """Parse protobuf text format into (key, scalar-or-children) nodes."""
    toks = tokens(text)
    nodes, pos = _message(toks, 0, 0)
    if pos != len(toks):
        raise ParseError(f"prototxt: unexpected {toks[pos][1]!r}")
    return nodes


def _message(toks: list[tuple[str, str]], pos: int, depth: int) -> tuple[list[Node], int]:
    if depth > MAX_DEPTH:
        raise LimitExceeded("max_depth", "prototxt nested too deep")
    nodes: list[Node] = []
    while pos < len(toks) and toks[pos][1] not in ("}", ">"):
        kind, key = toks[pos]
        if kind != "word":
            raise ParseError(f"prototxt: expected a field name, got {key!r}")
        pos += 1
        if pos < len(toks) and toks[pos][1] == ":":
            pos += 1
        if pos >= len(toks):
            raise ParseError(f"prototxt: field {key} has no value")
        if toks[pos][1] in ("{", "<"):
            close = "}" if toks[pos][1] == "{" else ">"
            children, pos = _message(toks, pos + 1, depth + 1)
            if pos >= len(toks) or toks[pos][1] != close:
                raise ParseError(f"prototxt: unclosed {key}")
            nodes.append((key, children))
            pos += 1
        elif toks[pos][1] == "[":
            pos += 1
            while pos < len(toks) and toks[pos][1] != "]":
                nodes.append((key, _scalar(toks[pos])))
                pos += 1
            if pos >= len(toks):
                raise ParseError(f"prototxt: unclosed list {key}")
            pos += 1
        else:
            nodes.append((key, _scalar(toks[pos])))
            pos += 1
    return nodes, pos


def _scalar(tok: tuple[str, str]) -> str:
    kind, value = tok
    if kind == "str":
        return _unquote(value[1:-1])
    if kind == "word":
        return value
    raise ParseError(f"prototxt: unexpected {value!r}")


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_prototxt(text: str) -> CaffeView:
    view = CaffeView()
    for key, value in parse_text(text):
        if key == "name" and isinstance(value, str):
            view.name = value
        elif key in ("layer", "layers") and isinstance(value, list):
            view.layers.append(_text_layer(value))
    return view


def _text_layer(nodes: list[Node]) -> CaffeLayer:
    layer = CaffeLayer()
    for key, value in nodes:
        if isinstance(value, str):
            if key == "name":
                layer.name = value
            elif key == "type":
                layer.type = value
        elif key == "python_param":
            layer.python = {k: v for k, v in value if isinstance(v, str)
                            and k in ("module", "layer", "param_str")}
        elif key == "hdf5_output_param":
            layer.hdf5_file = next((v for k, v in value if k == "file_name"
                                    and isinstance(v, str)), "")
    return layer


def is_python_layer(layer: CaffeLayer) -> bool:
    return layer.type.lower() == "python" or layer.python is not None


def writes_hdf5(layer: CaffeLayer) -> bool:
    return layer.type in ("HDF5Output", "HDF5_OUTPUT", "10") or layer.hdf5_file is not None
