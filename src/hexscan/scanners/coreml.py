"""The ``coreml`` scanner: class names a Core ML model makes the host instantiate, linked
model files, and .mlpackage manifests whose paths leave the package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.errors import ParseError
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.coreml import CoreMLView, parse_coreml
from hexscan.parsers.paths import climbs_out, escape_kind
from hexscan.policy import lists
from hexscan.rules import coreml as rules
from hexscan.rules._rule import Rule
from hexscan.scanners._io import random_access, read_bounded
from hexscan.scanners.base import ScanContext

#: Manifest.json files are small; a larger one is not a Core ML manifest worth parsing.
_MANIFEST_LIMIT = 4 * 1024 * 1024


class CoreMLScanner:
    name: ClassVar[str] = "coreml"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.COREML,
                                                             Format.COREML_MANIFEST})
    rules: ClassVar[tuple[Rule, ...]] = (rules.CUSTOM_LAYER, rules.CUSTOM_MODEL,
                                         rules.LINKED_MODEL, rules.MANIFEST_PATH_ESCAPE)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        if ctx.format is Format.COREML_MANIFEST:
            yield from _manifest(artifact)
            return
        with random_access(artifact, ctx.limits) as source:
            view = parse_coreml(source)
        yield from _model_findings(view)


def _class_severity(class_name: str) -> Severity | None:
    prefixes = tuple(lists.names("coreml", "custom", "system_prefixes"))
    return Severity.HIGH if class_name.startswith(prefixes) else None


def _model_findings(view: CoreMLView) -> Iterator[Finding]:
    known = lists.names("coreml", "custom", "known_classes")
    for layer in view.custom_layers:
        if layer.class_name in known:
            continue
        yield Finding(rules.CUSTOM_LAYER, f"layer {layer.layer!r} is a custom layer of class "
                      f"{layer.class_name!r}", key=f"{layer.where}/{layer.layer}",
                      severity=_class_severity(layer.class_name),
                      evidence={"class_name": layer.class_name, "layer": layer.layer,
                                "where": layer.where})
    for class_name, where in view.custom_models:
        if class_name in known:
            continue
        yield Finding(rules.CUSTOM_MODEL, f"{where} is a customModel of class {class_name!r}",
                      key=where, severity=_class_severity(class_name),
                      evidence={"class_name": class_name, "where": where})
    for link in view.linked:
        escapes = [p for p in [link.file_name, *link.search_path.split(":")]
                   if p and not p.startswith("$") and escape_kind(p)]
        yield Finding(rules.LINKED_MODEL, f"{link.where} links to {link.file_name!r} "
                      f"(search path {link.search_path!r})", key=f"{link.where}:{link.file_name}",
                      severity=Severity.HIGH if escapes else None,
                      evidence={"file_name": link.file_name, "search_path": link.search_path,
                                "escaping": escapes})


def _manifest(artifact: Artifact) -> Iterator[Finding]:
    try:
        data = json.loads(read_bounded(artifact, _MANIFEST_LIMIT))
    except (ValueError, RecursionError):
        return  # not JSON: not a Core ML manifest (other scanners judge the text)
    entries = data.get("itemInfoEntries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return
    for ident, info in list(entries.items())[:10_000]:
        path = info.get("path") if isinstance(info, dict) else None
        if not isinstance(path, str):
            if isinstance(info, dict) and "path" in info:
                raise ParseError(f"Manifest.json item {ident!r} has a non-string path")
            continue
        kind = _escape(path)
        if kind:
            yield Finding(rules.MANIFEST_PATH_ESCAPE, f"manifest item {ident!r} has path "
                          f"{path!r}, which leaves the package ({kind})", key=str(ident),
                          evidence=_evidence(ident, path, kind, info))


def _escape(path: str) -> str | None:
    """Items live under Data/: one '..' reaches the package root, two leave it."""
    kind = escape_kind(path)
    if kind in ("unc", "drive", "absolute"):
        return kind
    if climbs_out(path.replace("\\", "/"), base_depth=1):
        return "traversal"
    return None


def _evidence(ident: Any, path: str, kind: str, info: dict[str, Any]) -> dict[str, Any]:
    return {"item": str(ident), "path": path, "escape": kind,
            "name": str(info.get("name", ""))[:256]}
