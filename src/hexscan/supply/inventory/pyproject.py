"""pyproject.toml: PEP 621 ``[project]``, PEP 735 ``[dependency-groups]`` and Poetry tables.

PEP 621 / PEP 735 entries are PEP 508 strings, pinned only by ``==X`` / ``===X``. Poetry
constraints use Poetry's own syntax, in which ``^2.5`` and ``~2.5`` are ranges: only
``==2.5.1``, ``=2.5.1`` or a bare exact version ``2.5.1`` pin. ``python`` is the interpreter
constraint, not a package.
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from hexscan.supply.inventory._common import (
    Collector,
    LineFinder,
    add_marker,
    load_toml,
    parse_requirement,
    requirement_dependency,
    table,
)
from hexscan.supply.records import Dependency

SOURCE = "pyproject.toml"
_OPERATORS = set("<>=!~^*,|")


def parse(name: str, text: str) -> list[Dependency]:
    data = load_toml(text, SOURCE)
    collector = Collector()
    lines = LineFinder(text)
    project = table(data, "project")
    _pep508_list(project.get("dependencies"), "project.dependencies", collector, lines)
    for group, items in table(project, "optional-dependencies").items():
        _pep508_list(items, f"project.optional-dependencies.{group}", collector, lines,
                     group=str(group), optional=True)
    for group, items in table(data, "dependency-groups").items():
        _pep508_list(items, f"dependency-groups.{group}", collector, lines, group=str(group))
    poetry = table(data, "tool", "poetry")
    _poetry_table(table(poetry, "dependencies"), "tool.poetry.dependencies", None, collector,
                  lines)
    _poetry_table(table(poetry, "dev-dependencies"), "tool.poetry.dev-dependencies", "dev",
                  collector, lines)
    for group, body in table(poetry, "group").items():
        _poetry_table(table(body, "dependencies"), f"tool.poetry.group.{group}.dependencies",
                      str(group), collector, lines)
    return collector.items


def _pep508_list(items: Any, section: str, collector: Collector, lines: LineFinder,
                 group: str | None = None, optional: bool = False) -> None:
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, str):
            continue  # PEP 735 {include-group = "..."} and malformed entries
        req = parse_requirement(item.strip())
        if req is None:
            continue
        extra: dict[str, Any] = {"section": section}
        if group is not None:
            extra["group"] = group
        if optional:
            extra["optional"] = True
        collector.add(requirement_dependency(req, SOURCE, lines.find_text(item), extra,
                                             marker_extra=group if optional and group else ""))


def _poetry_table(deps: dict[str, Any], section: str, group: str | None, collector: Collector,
                  lines: LineFinder) -> None:
    for name, value in deps.items():
        if not isinstance(name, str) or name.strip().lower() == "python":
            continue
        line = lines.find_key(name)
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            dep = poetry_dependency(name.strip(), entry, SOURCE, line, section, group)
            if dep is not None:
                collector.add(dep)


def poetry_dependency(name: str, value: Any, source: str, line: int | None, section: str,
                      group: str | None) -> Dependency | None:
    """One Poetry dependency (string constraint or table); None for git/path/url sources."""
    extra: dict[str, Any] = {"section": section}
    if group is not None:
        extra["group"] = group
    if isinstance(value, str):
        constraint = value
    elif isinstance(value, dict):
        if any(k in value for k in ("git", "path", "url", "file")):
            return None
        constraint = value.get("version", "*")
        if not isinstance(constraint, str):
            return None
        extras = value.get("extras")
        if isinstance(extras, list):
            extra["extras"] = sorted(str(e) for e in extras)[:100]
        if value.get("optional") is True:
            extra["optional"] = True
        add_marker(extra, value.get("markers"))
    else:
        return None
    constraint = constraint.strip()[:1000]
    return Dependency("PyPI", name, poetry_pin(constraint), spec=constraint, source=source,
                      line=line, extra=extra)


def poetry_pin(constraint: str) -> str | None:
    """The exact version a Poetry constraint pins: ``==X``, ``=X`` or a bare ``X``."""
    text = constraint.strip()
    if text.startswith("=="):
        text = text[2:].strip()
    elif text.startswith("="):
        text = text[1:].strip()
    if not text or _OPERATORS & set(text) or any(c.isspace() for c in text):
        return None
    try:
        Version(text)
    except InvalidVersion:
        return None
    return text
