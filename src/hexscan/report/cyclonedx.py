"""The CycloneDX 1.6 JSON ML-BOM (``--format cyclonedx`` and ``--sbom FILE``).

What was scanned becomes an inventory: one ``machine-learning-model`` component per model
file (SHA-256, format, size, licence and ``modelCard`` from the model card and config),
``file`` / ``data`` components for everything around it, container members nested in
their container, ``library`` components with purls for the dependencies hex read, and
``vulnerabilities`` for the advisories that match them. hex's findings about a file are
properties of that file's component (``hex:finding:<rule id>``), not vulnerabilities.

The BOM is built with cyclonedx-python-lib's model and serialised by its 1.6 JSON
outputter; only the model card, which the library does not model, is added to the JSON
afterwards (see ``_cdx_cards``). Output is deterministic for a given report: the serial
number is the scan id, the timestamp the scan's, and the library sorts what it writes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6

from hexscan.formats.kinds import Format
from hexscan.model.report import FileEntry, ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.report import _cdx_cards as cards
from hexscan.report import _cdx_supply as supply
from hexscan.report._paths import RootMap

#: Formats whose files are models (a numpy array only when nothing else in its directory is).
MODEL_FORMATS: frozenset[str] = frozenset(f.value for f in (
    Format.PICKLE, Format.PYTORCH_ZIP, Format.PYTORCH_LEGACY, Format.TORCHSCRIPT,
    Format.JOBLIB, Format.SAFETENSORS, Format.ONNX, Format.KERAS_H5, Format.KERAS_V3,
    Format.TF_SAVEDMODEL, Format.TF_GRAPHDEF, Format.TFLITE, Format.COREML,
    Format.CAFFE_MODEL, Format.GGUF, Format.GGML, Format.DARKNET_WEIGHTS, Format.XGBOOST,
    Format.LIGHTGBM,
))
NUMPY_FORMATS: frozenset[str] = frozenset({Format.NUMPY.value, Format.NUMPY_NPZ.value})
#: Formats that are data rather than files of their own kind (tensors, arrays, HDF5).
DATA_FORMATS: frozenset[str] = NUMPY_FORMATS | frozenset(f.value for f in (
    Format.TENSOR_DATA, Format.TF_CHECKPOINT_DATA, Format.HDF5))

ROOT_REF = "hex:target"


@dataclass
class _Node:
    """One file or member on its way to becoming a component."""

    entry: FileEntry
    vpath: str
    ref: str
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)
    kind: ComponentType = ComponentType.FILE
    rules: dict[str, Severity] = field(default_factory=dict)
    count: int = 0
    worst: Severity | None = None


def render(report: ScanReport, color: bool = False) -> str:
    """The BOM as CycloneDX 1.6 JSON."""
    builder = _Builder(report)
    bom = builder.build()
    data: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    cards.inject_cards(data, builder.model_cards)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


class _Builder:
    """Turns one ScanReport into one Bom (plus the model cards to add to its JSON)."""

    def __init__(self, report: ScanReport) -> None:
        self.report = report
        self.roots = RootMap(report.roots)
        self.model_cards: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, Component] = {}
        self.card_index = cards.CardIndex()
        self.libraries = supply.Libraries()

    def build(self) -> Bom:
        nodes = self._nodes()
        self._read_facts()
        self._classify(nodes)
        self._attach_findings(nodes)
        top = [self._component(n) for n in nodes.values() if n.parent is None]
        bom = Bom(serial_number=_serial(self.report.scan_id), metadata=self._metadata(nodes))
        root = bom.metadata.component
        vulns = supply.vulnerabilities(self.report.visible_findings, self.libraries)
        libraries = self.libraries.components()  # after the vulnerabilities: they may add some
        for component in [*top, *libraries, *self.datasets.values()]:
            bom.components.add(component)
        for vuln in vulns:
            bom.vulnerabilities.add(vuln)
        if root is not None:
            bom.register_dependency(root, [*top, *libraries])
        return bom

    # --- files -----------------------------------------------------------------------------

    def _nodes(self) -> dict[tuple[str, str | None], _Node]:
        """A node per reported file and member, linked to the container it came from."""
        nodes: dict[tuple[str, str | None], _Node] = {}
        refs: set[str] = set()
        entries = sorted((e for e in self.report.files if _inventoried(e)),
                         key=lambda e: (e.path, (e.member or "").count("!/"), e.member or ""))
        for entry in entries:
            rel = self.roots.relative(entry.path, entry.rel_path)
            vpath = cards.member_vpath(rel, entry.member)
            ref = _unique(f"hex:file:{vpath}", refs)
            node = _Node(entry, vpath, ref, parent=_parent(nodes, entry))
            if node.parent is not None:
                node.parent.children.append(node)
            nodes[(entry.path, entry.member)] = node
        return nodes

    def _classify(self, nodes: dict[tuple[str, str | None], _Node]) -> None:
        """Models, data and plain files; a model's own members are parts, not models."""
        model_dirs: set[str] = set()
        for node in nodes.values():  # parents come before their members
            fmt = node.entry.format
            inside_model = any(p.kind is ComponentType.MACHINE_LEARNING_MODEL
                               for p in _ancestors(node))
            if fmt in MODEL_FORMATS and not inside_model:
                node.kind = ComponentType.MACHINE_LEARNING_MODEL
                model_dirs.add(cards.vdir(node.vpath))
            elif fmt in DATA_FORMATS:
                node.kind = ComponentType.DATA
        for node in nodes.values():
            if (node.entry.format in NUMPY_FORMATS and node.kind is ComponentType.DATA
                    and cards.vdir(node.vpath) not in model_dirs
                    and not any(p.kind is ComponentType.MACHINE_LEARNING_MODEL
                                for p in _ancestors(node))):
                node.kind = ComponentType.MACHINE_LEARNING_MODEL

    def _attach_findings(self, nodes: dict[tuple[str, str | None], _Node]) -> None:
        """Rule severities on the file itself; counts on it and every container above it."""
        for f in self.report.visible_findings:
            node = nodes.get((f.file_path, f.member))
            if node is None:
                continue
            severity = f.effective_severity
            node.rules[f.rule.id] = max(node.rules.get(f.rule.id, severity), severity)
            for holder in (node, *_ancestors(node)):
                holder.count += 1
                holder.worst = severity if holder.worst is None else max(holder.worst, severity)

    def _component(self, node: _Node) -> Component:
        entry = node.entry
        children = [self._component(c) for c in node.children]
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=entry.sha256)] \
            if entry.sha256 else []
        name = entry.member.rsplit("!/", 1)[-1] if entry.member else node.vpath
        extra: dict[str, Any] = {}
        if node.kind is ComponentType.MACHINE_LEARNING_MODEL:
            extra = self._model_parts(node)
        return Component(name=name, type=node.kind, bom_ref=node.ref, version=None,
                         hashes=hashes, properties=_file_properties(node),
                         components=children, **extra)

    def _model_parts(self, node: _Node) -> dict[str, Any]:
        """Licence, tags, pedigree and model card of one model, from its nearest card."""
        info = self.card_index.lookup(node.vpath)
        if info is None:
            return {}
        for name in cards.datasets(info):
            self.datasets.setdefault(name, cards.dataset_component(name))
        self.model_cards[node.ref] = cards.model_card(info, node.ref)
        return {"licenses": cards.licences(info), "tags": cards.tags(info),
                "pedigree": cards.pedigree(info, node.ref)}

    # --- facts -----------------------------------------------------------------------------

    def _read_facts(self) -> None:
        for fact in self.report.facts:
            rel = self.roots.relative(fact.path, fact.rel_path)
            vpath = cards.member_vpath(rel, fact.member)
            if fact.kind in ("model-card", "model-config"):
                self.card_index.add(fact.kind, vpath, fact.data)
            elif fact.kind == "dependency":
                self.libraries.add(fact.data, vpath)

    # --- metadata --------------------------------------------------------------------------

    def _metadata(self, nodes: dict[tuple[str, str | None], _Node]) -> BomMetaData:
        report = self.report
        has_model = any(n.kind is ComponentType.MACHINE_LEARNING_MODEL for n in nodes.values())
        counts = [f.effective_severity for f in report.visible_findings]
        props = [Property(name="hex:target", value=report.target),
                 Property(name="hex:complete", value=str(report.complete).lower()),
                 Property(name="hex:findings", value=str(len(counts)))]
        if counts:
            props.append(Property(name="hex:max-severity", value=max(counts).name))
        names = [os.path.basename(os.path.normpath(r)) for r in report.roots] or [report.target]
        root = Component(name=", ".join(names) or "scan", bom_ref=ROOT_REF,
                         type=ComponentType.APPLICATION if has_model else ComponentType.DATA,
                         properties=props)
        tool = Component(name="hex", version=report.version, type=ComponentType.APPLICATION,
                         description="security scanner for AI/ML model files")
        meta = BomMetaData(component=root, timestamp=_timestamp(report.timestamp))
        meta.tools.components.add(tool)
        return meta


def _inventoried(entry: FileEntry) -> bool:
    """Everything hex looked at, except a top-level path it could not read at all."""
    return not (entry.status is Status.ERROR and entry.member is None and entry.size is None)


def _parent(nodes: dict[tuple[str, str | None], _Node], entry: FileEntry) -> _Node | None:
    """The nearest reported container of a member (``a!/b!/c`` -> ``a!/b``, else ``a``...)."""
    member = entry.member
    while member:
        member = member.rsplit("!/", 1)[0] if "!/" in member else None
        node = nodes.get((entry.path, member))
        if node is not None:
            return node
    return None


def _ancestors(node: _Node) -> Iterable[_Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _file_properties(node: _Node) -> list[Property]:
    entry = node.entry
    pairs = [("hex:path", node.vpath), ("hex:format", entry.format)]
    if entry.size is not None:
        pairs.append(("hex:size", str(entry.size)))
    if entry.status is not Status.SCANNED:
        pairs.append(("hex:status", entry.status.value))
        if entry.reason:
            pairs.append(("hex:reason", entry.reason))
    pairs.append(("hex:findings", str(node.count)))
    if node.worst is not None:
        pairs.append(("hex:max-severity", node.worst.name))
    pairs += [(f"hex:finding:{rule}", sev.name) for rule, sev in sorted(node.rules.items())]
    return [Property(name=k, value=v) for k, v in pairs]


def _unique(ref: str, seen: set[str]) -> str:
    """bom-refs must be unique; two roots can hold the same relative name."""
    candidate, n = ref, 1
    while candidate in seen:
        n += 1
        candidate = f"{ref}#{n}"
    seen.add(candidate)
    return candidate


def _serial(scan_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(scan_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"hex:scan:{scan_id}")


def _timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
