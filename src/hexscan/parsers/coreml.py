"""Core ML Model spec (Model.proto / NeuralNetwork.proto field numbers), read structurally.

Model: 200 pipelineClassifier, 201 pipelineRegressor (each: 1 pipeline), 202 pipeline
(1 models), 303 neuralNetworkRegressor, 403 neuralNetworkClassifier, 500 neuralNetwork
(each: 1 layers), 555 customModel (10 className), 556 linkedModel (1 linkedModelFile:
1 linkedModelFileName, 2 linkedModelSearchPath, each a StringParameter with 1 defaultValue).
NeuralNetworkLayer: 1 name, 500 custom (10 className), 605 branch (1 ifBranch, 2 elseBranch),
615 loop (3 conditionNetwork, 4 bodyNetwork).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hexscan.errors import LimitExceeded
from hexscan.parsers.flatbuf import ByteSource
from hexscan.parsers.pbstream import SOURCE_MAX_DEPTH, Walker
from hexscan.parsers.protowire import LEN, Field

_PIPELINE_WRAPPERS = (200, 201)
_PIPELINE = 202
_NETWORKS = (303, 403, 500)
_CUSTOM_MODEL, _LINKED_MODEL = 555, 556
_LAYER_CUSTOM, _LAYER_BRANCH, _LAYER_LOOP = 500, 605, 615
_SUBNETS = {_LAYER_BRANCH: (1, 2), _LAYER_LOOP: (3, 4)}


@dataclass(frozen=True, slots=True)
class CustomLayer:
    class_name: str
    layer: str
    where: str


@dataclass(frozen=True, slots=True)
class LinkedFile:
    file_name: str
    search_path: str
    where: str


@dataclass
class CoreMLView:
    spec_version: int = 0
    custom_layers: list[CustomLayer] = field(default_factory=list)
    custom_models: list[tuple[str, str]] = field(default_factory=list)
    linked: list[LinkedFile] = field(default_factory=list)
    model_types: set[int] = field(default_factory=set)


def parse_coreml(source: ByteSource) -> CoreMLView:
    """Walk a Model message; raise ParseError when the bytes are not one."""
    walker = Walker(source)
    view = CoreMLView()
    _model(walker, view, 0, source.size, "model", 0)
    return view


def _model(w: Walker, view: CoreMLView, start: int, end: int, where: str, depth: int) -> None:
    if depth > SOURCE_MAX_DEPTH:
        raise LimitExceeded("max_depth", "Core ML models nested too deep")
    for f in w.fields(start, end):
        if f.number == 1 and depth == 0 and f.wire_type != LEN:
            view.spec_version = f.value
        elif f.wire_type == LEN and f.number >= 200:
            view.model_types.add(f.number)
            _model_type(w, view, f, where, depth)


def _model_type(w: Walker, view: CoreMLView, f: Field, where: str, depth: int) -> None:
    """One member of Model's ``Type`` oneof."""
    if f.number in _PIPELINE_WRAPPERS:
        for g in w.sub(f):
            if g.number == 1 and g.wire_type == LEN:
                _pipeline(w, view, g, f"{where}/pipeline", depth)
    elif f.number == _PIPELINE:
        _pipeline(w, view, f, f"{where}/pipeline", depth)
    elif f.number in _NETWORKS:
        _network(w, view, f, where, depth)
    elif f.number == _CUSTOM_MODEL:
        view.custom_models.append((w.first_text(f.start, f.start + f.length, 10) or "", where))
    elif f.number == _LINKED_MODEL:
        _linked(w, view, f, where)


def _pipeline(w: Walker, view: CoreMLView, f: Field, where: str, depth: int) -> None:
    index = 0
    for g in w.sub(f):
        if g.number == 1 and g.wire_type == LEN:
            _model(w, view, g.start, g.start + g.length, f"{where}[{index}]", depth + 1)
            index += 1


def _network(w: Walker, view: CoreMLView, f: Field, where: str, depth: int) -> None:
    if depth > SOURCE_MAX_DEPTH:
        raise LimitExceeded("max_depth", "Core ML networks nested too deep")
    for g in w.sub(f):
        if g.number == 1 and g.wire_type == LEN:
            _layer(w, view, g, where, depth)


def _layer(w: Walker, view: CoreMLView, f: Field, where: str, depth: int) -> None:
    name = ""
    for g in w.sub(f):
        if g.wire_type != LEN:
            continue
        if g.number == 1:
            name = w.text(g, 256)
        elif g.number == _LAYER_CUSTOM:
            class_name = w.first_text(g.start, g.start + g.length, 10) or ""
            view.custom_layers.append(CustomLayer(class_name, name, where))
        elif g.number in _SUBNETS:
            for h in w.sub(g):
                if h.number in _SUBNETS[g.number] and h.wire_type == LEN:
                    _network(w, view, h, f"{where}/{name or 'layer'}", depth + 1)


def _linked(w: Walker, view: CoreMLView, f: Field, where: str) -> None:
    for g in w.sub(f):
        if g.number != 1 or g.wire_type != LEN:
            continue
        values = {1: "", 2: ""}
        for h in w.sub(g):
            if h.number in values and h.wire_type == LEN:
                values[h.number] = w.first_text(h.start, h.start + h.length, 1) or ""
        view.linked.append(LinkedFile(values[1], values[2], where))
