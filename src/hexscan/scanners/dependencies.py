"""The ``dependencies`` scanner: what the model needs, read from manifests and configs.

It records every dependency it reads (requirements files, lock files, pyproject, conda
environments, setup.cfg, and framework versions written into model configs) as a
``dependency`` fact, and reports names that look like typosquats of the ML stack
(HEX-SUP-003) on the spot. Matching versions against advisories needs the whole scan's
inventory and the vulnerability DB, so it happens once per scan in hexscan.supply.match,
which reports HEX-SUP-001/002/004/005 under this scanner's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import read_up_to
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import supply as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext
from hexscan.supply import inventory
from hexscan.supply.inventory import InventoryError, requirements
from hexscan.supply.records import Dependency
from hexscan.supply.typosquat import typosquat_of

#: Manifests larger than this are not dependency lists; read no further.
MAX_MANIFEST = 5 << 20
#: ``-r`` / ``-c`` chains followed inside the scanned tree, at most this deep.
MAX_INCLUDE_DEPTH = 5
#: JSON files (besides model configs) that record framework versions.
VERSION_JSON = frozenset({"metadata.json", "config_sentence_transformers.json",
                          "model_index.json"})


class DependenciesScanner:
    name: ClassVar[str] = "dependencies"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({
        Format.REQUIREMENTS, Format.DEPENDENCY_MANIFEST, Format.MODEL_CONFIG, Format.JSON})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.VULNERABLE_DEPENDENCY, rules.MALICIOUS_PACKAGE, rules.TYPOSQUAT,
        rules.COMPROMISED_MODEL, rules.VULNERABLE_FRAMEWORK, rules.DIRECT_REFERENCE)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        base = artifact.basename.lower()
        if ctx.format is Format.JSON and base not in VERSION_JSON:
            return
        text = _text(artifact)
        if text is None:
            return
        if ctx.format in (Format.MODEL_CONFIG, Format.JSON):
            deps = _framework_versions(base, text)
        else:
            deps = _manifest(artifact, base, text)
        if ctx.format not in (Format.MODEL_CONFIG, Format.JSON):
            yield from _direct_references(base, text)
        seen: set[str] = set()
        for dep in deps:
            ctx.record("dependency", **asdict(dep))
            squat = typosquat_of(dep.name) if dep.ecosystem == "PyPI" else None
            if squat and dep.name.lower() not in seen:
                seen.add(dep.name.lower())
                yield Finding(
                    rules.TYPOSQUAT,
                    f"dependency {dep.name!r} ({dep.source}) is one typo away from the ML "
                    f"package {squat!r}",
                    key=dep.name.lower(), line_number=dep.line,
                    evidence={"package": dep.name, "looks_like": squat, "spec": dep.spec,
                              "source": dep.source})


def _direct_references(base: str, text: str) -> Iterator[Finding]:
    """HEX-SUP-006 for each line of a requirements file that installs code by URL or path."""
    if inventory.kind_of(base) != "requirements":
        return
    try:
        refs = requirements.direct_references(text)
    except InventoryError:
        return
    for ref in refs:
        what = f"{ref.name} from " if ref.name else ""
        how = " over plain http" if ref.cleartext else ""
        yield Finding(rules.DIRECT_REFERENCE,
                      f"requirement ({ref.kind}) installs {what}{ref.location!r}{how}, outside "
                      "the package index", key=f"{ref.line}:{ref.location}",
                      severity=Severity.HIGH if ref.cleartext else None,
                      line_number=ref.line,
                      evidence={"kind": ref.kind, "location": ref.location, "name": ref.name,
                                "version": ref.version, "cleartext": ref.cleartext})


def _text(artifact: Artifact) -> str | None:
    with artifact.open() as stream:
        raw = read_up_to(stream, MAX_MANIFEST + 1)
    if len(raw) > MAX_MANIFEST or b"\x00" in raw[:4096]:
        return None
    return raw.decode("utf-8", errors="replace")


def _framework_versions(base: str, text: str) -> list[Dependency]:
    try:
        obj: Any = json.loads(text)
    except (ValueError, RecursionError):
        return []
    return inventory.framework_versions(base, obj)


def _manifest(artifact: Artifact, base: str, text: str) -> list[Dependency]:
    try:
        deps = inventory.read(base, text)
    except InventoryError:
        return []
    if artifact.member is None:
        deps += _included(artifact, base, text)
    return deps


def _included(artifact: Artifact, base: str, text: str) -> list[Dependency]:
    """Follow ``-r other.txt`` of a top-level requirements file, inside the scanned root.

    Only on-disk top-level files are followed (a container member has no directory), and
    never outside the directory the scan started from.
    """
    root = _scan_root(artifact)
    found: list[Dependency] = []
    todo = [(os.path.dirname(artifact.file_path), base, text, 0)]
    visited = {os.path.realpath(artifact.file_path)}
    while todo:
        folder, name, body, depth = todo.pop()
        try:
            refs = inventory.includes(name, body)
        except InventoryError:
            continue
        for ref in refs:
            path = os.path.realpath(os.path.join(folder, ref))
            if depth >= MAX_INCLUDE_DEPTH or path in visited or not _inside(path, root):
                continue
            visited.add(path)
            sub = _read_file(path)
            if sub is None:
                continue
            sub_name = "requirements.txt" if not os.path.basename(path).lower().startswith(
                "requirements") else os.path.basename(path).lower()
            try:
                found += inventory.read(sub_name, sub)
            except InventoryError:
                continue
            todo.append((os.path.dirname(path), sub_name, sub, depth + 1))
    return found


def _scan_root(artifact: Artifact) -> str:
    """The directory the scan started from: file_path minus its root-relative path."""
    path = os.path.realpath(artifact.file_path)
    rel_parts = [p for p in artifact.rel_path.replace("\\", "/").split("/") if p]
    for _ in rel_parts:
        path = os.path.dirname(path)
    return path


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _read_file(path: str) -> str | None:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_MANIFEST:
            return None
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST)
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace")
