"""Pipenv's ``Pipfile`` (TOML) and ``Pipfile.lock`` (JSON).

A Pipfile value is a PEP 440 specifier (``"==2.5.1"``, ``">=2"``, ``"*"``) or a table with
``version``; only ``==X`` / ``===X`` pin. The lock's ``default`` and ``develop`` sections
record ``"version": "==X"`` for every index package. Git, path and file entries name no
released version and are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from hexscan.supply.inventory._common import (
    MAX_HASHES,
    Collector,
    LineFinder,
    add_marker,
    load_json,
    load_toml,
    pinned,
    table,
)
from hexscan.supply.records import Dependency

_LOCATIONS = ("git", "path", "file", "hg", "svn", "bzr", "editable")


def parse_pipfile(name: str, text: str) -> list[Dependency]:
    data = load_toml(text, "Pipfile")
    collector = Collector()
    lines = LineFinder(text)
    for section in ("packages", "dev-packages"):
        for pkg, value in table(data, section).items():
            if not isinstance(pkg, str):
                continue
            line = lines.find_key(pkg)
            extra: dict[str, Any] = {"section": section}
            if isinstance(value, dict):
                if any(k in value for k in _LOCATIONS):
                    continue
                add_marker(extra, value.get("markers"))
                extras = value.get("extras")
                if isinstance(extras, list):
                    extra["extras"] = sorted(str(e) for e in extras)[:100]
                value = value.get("version", "*")
            if not isinstance(value, str):
                continue
            spec = value.strip()[:1000]
            collector.add(Dependency("PyPI", pkg.strip(), _pin(spec), spec=spec,
                                     source="Pipfile", line=line, extra=extra))
    return collector.items


def parse_lock(name: str, text: str) -> list[Dependency]:
    data = load_json(text, "Pipfile.lock")
    if not isinstance(data, dict):
        return []
    collector = Collector()
    lines = LineFinder(text)
    for section in ("default", "develop"):
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for pkg, entry in entries.items():
            if not isinstance(entry, dict) or any(k in entry for k in _LOCATIONS):
                continue
            version = entry.get("version")
            if not isinstance(version, str):
                continue
            spec = version.strip()[:1000]
            extra: dict[str, Any] = {"section": section}
            hashes = entry.get("hashes")
            if isinstance(hashes, list):
                extra["hashes"] = [str(h)[:200] for h in hashes[:MAX_HASHES]]
            add_marker(extra, entry.get("markers"))
            line = lines.find_text(json.dumps(pkg) + ":")
            collector.add(Dependency("PyPI", pkg.strip(), _pin(spec), spec=spec,
                                     source="Pipfile.lock", line=line, extra=extra))
    return collector.items


def _pin(spec: str) -> str | None:
    if not spec or spec == "*":
        return None
    try:
        return pinned(SpecifierSet(spec))
    except InvalidSpecifier:
        return None

