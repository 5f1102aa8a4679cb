"""The ``caffe`` scanner: Python layers (module and class named) and file-writing layers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.caffe import (
    CaffeLayer,
    CaffeView,
    is_python_layer,
    parse_caffemodel,
    parse_prototxt,
    writes_hdf5,
)
from hexscan.parsers.paths import escape_kind
from hexscan.policy import lists
from hexscan.rules import caffe as rules
from hexscan.rules._rule import Rule
from hexscan.scanners._io import random_access, read_bounded
from hexscan.scanners.base import ScanContext

#: A .prototxt larger than this is not a hand-written net definition.
_PROTOTXT_LIMIT = 16 * 1024 * 1024


class CaffeScanner:
    name: ClassVar[str] = "caffe"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.CAFFE_MODEL,
                                                             Format.CAFFE_PROTOTXT})
    rules: ClassVar[tuple[Rule, ...]] = (rules.PYTHON_LAYER, rules.FILE_WRITING_LAYER)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        if ctx.format is Format.CAFFE_PROTOTXT:
            text = read_bounded(artifact, _PROTOTXT_LIMIT).decode("utf-8", "replace")
            view = parse_prototxt(text)
        else:
            with random_access(artifact, ctx.limits) as source:
                view = parse_caffemodel(source)
        yield from _findings(view)


def _findings(view: CaffeView) -> Iterator[Finding]:
    critical = lists.names("caffe", "python_layer", "critical_modules")
    for index, layer in enumerate(view.layers):
        if is_python_layer(layer):
            yield _python(layer, index, critical)
        if writes_hdf5(layer):
            path = layer.hdf5_file or ""
            kind = escape_kind(path)
            yield Finding(rules.FILE_WRITING_LAYER, f"layer {layer.name!r} writes to "
                          f"{path!r} whenever the net runs", key=f"{index}:{layer.name}",
                          severity=Severity.HIGH if kind else None,
                          evidence={"layer": layer.name, "file_name": path, "escape": kind})


def _python(layer: CaffeLayer, index: int, critical: frozenset[str]) -> Finding:
    params = layer.python or {}
    module, cls = params.get("module", ""), params.get("layer", "")
    top = module.split(".")[0]
    dangerous = module in critical or top in critical
    return Finding(
        rules.PYTHON_LAYER,
        f"layer {layer.name!r} is a Python layer: loading imports {module or '?'} and calls "
        f"{cls or '?'}", key=f"{index}:{layer.name}:{module}.{cls}",
        severity=Severity.CRITICAL if dangerous else None,
        evidence={"layer": layer.name, "module": module, "class": cls,
                  "param_str": params.get("param_str", "")[:512]},
    )
