"""Lock files written by Poetry (``poetry.lock``) and uv (``uv.lock``).

Both are TOML with one ``[[package]]`` table per resolved package, so every entry is pinned.
The project itself and local directories (uv ``editable``/``virtual``/``directory``
sources, Poetry ``directory`` sources) are not packages from an index and are skipped.
Line numbers are those of each ``[[package]]`` header.
"""

from __future__ import annotations

from typing import Any

from hexscan.supply.inventory._common import Collector, load_toml
from hexscan.supply.records import Dependency

_UV_LOCAL = ("editable", "virtual", "directory")


def parse_poetry_lock(name: str, text: str) -> list[Dependency]:
    return _parse(text, "poetry.lock", _poetry_entry)


def parse_uv_lock(name: str, text: str) -> list[Dependency]:
    return _parse(text, "uv.lock", _uv_entry)


def _parse(text: str, kind: str, entry: Any) -> list[Dependency]:
    data = load_toml(text, kind)
    packages = data.get("package")
    if not isinstance(packages, list):
        return []
    headers = _package_headers(text)
    if len(headers) != len(packages):
        headers = []
    collector = Collector()
    for index, package in enumerate(packages):
        if not isinstance(package, dict):
            continue
        dep = entry(package, headers[index] if headers else None)
        if dep is not None:
            collector.add(dep)
    return collector.items


def _package_headers(text: str) -> list[int]:
    """Line numbers of the ``[[package]]`` headers, in order."""
    return [number for number, line in enumerate(text.splitlines(), 1)
            if line.strip().replace(" ", "") == "[[package]]"]


def _poetry_entry(package: dict[str, Any], line: int | None) -> Dependency | None:
    name, version = package.get("name"), package.get("version")
    if not isinstance(name, str) or not name.strip():
        return None
    source = package.get("source")
    extra: dict[str, Any] = {}
    if isinstance(source, dict):
        kind = source.get("type")
        if kind == "directory":
            return None
        if isinstance(kind, str):
            extra["source_type"] = kind[:50]
    groups = package.get("groups", package.get("category"))
    if isinstance(groups, list):
        extra["groups"] = [str(g)[:100] for g in groups[:20]]
    elif isinstance(groups, str):
        extra["groups"] = [groups[:100]]
    if package.get("optional") is True:
        extra["optional"] = True
    return _pinned(name, version, "poetry.lock", line, extra)


def _uv_entry(package: dict[str, Any], line: int | None) -> Dependency | None:
    name, version = package.get("name"), package.get("version")
    if not isinstance(name, str) or not name.strip():
        return None
    source = package.get("source")
    extra: dict[str, Any] = {}
    if isinstance(source, dict):
        if any(k in source for k in _UV_LOCAL):
            return None
        kinds = sorted(k for k in source if isinstance(k, str))
        if kinds:
            extra["source_type"] = kinds[0][:50]
    return _pinned(name, version, "uv.lock", line, extra)


def _pinned(name: str, version: Any, source: str, line: int | None,
            extra: dict[str, Any]) -> Dependency:
    exact = version.strip()[:200] if isinstance(version, str) and version.strip() else None
    return Dependency("PyPI", name.strip(), exact, spec=f"=={exact}" if exact else "",
                      source=source, line=line, extra=extra)
