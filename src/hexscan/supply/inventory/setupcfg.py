"""setuptools' ``setup.cfg``: ``[options] install_requires`` and ``[options.extras_require]``.

Values follow setuptools' rules: a multi-line value holds one PEP 508 requirement per line, a
single-line value is split on ``;``. ``file: requirements.txt`` values are returned by
:func:`includes` for the caller to follow; they add no dependencies here.
"""

from __future__ import annotations

import configparser
from typing import Any

from hexscan.supply.inventory._common import (
    MAX_ENTRIES,
    Collector,
    InventoryError,
    LineFinder,
    parse_requirement,
    requirement_dependency,
)
from hexscan.supply.records import Dependency

SOURCE = "setup.cfg"


def parse(name: str, text: str) -> list[Dependency]:
    config = _load(text)
    collector = Collector()
    lines = LineFinder(text)
    if config.has_option("options", "install_requires"):
        _add(config.get("options", "install_requires"), "options.install_requires", None,
             collector, lines)
    if config.has_section("options.extras_require"):
        for group, value in config.items("options.extras_require"):
            _add(value, f"options.extras_require.{group}", group, collector, lines)
    return collector.items


def includes(text: str) -> list[str]:
    """The files named by ``file:`` in install_requires / extras_require, in order."""
    config = _load(text)
    values: list[str] = []
    if config.has_option("options", "install_requires"):
        values.append(config.get("options", "install_requires"))
    if config.has_section("options.extras_require"):
        values.extend(value for _, value in config.items("options.extras_require"))
    found: list[str] = []
    for value in values:
        stripped = value.strip()
        if stripped.startswith("file:"):
            found.extend(p.strip() for p in stripped[5:].split(",") if p.strip())
    return found[:MAX_ENTRIES]


def _load(text: str) -> configparser.RawConfigParser:
    config = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        config.read_string(text)
    except configparser.Error as exc:
        raise InventoryError(f"{SOURCE} is not a valid INI file: {str(exc)[:200]}") from exc
    return config


def _add(value: str, section: str, group: str | None, collector: Collector,
         lines: LineFinder) -> None:
    if value.strip().startswith("file:"):
        return
    items = value.splitlines() if "\n" in value else value.split(";")
    for item in items:
        text = item.strip()
        if not text or text.startswith("#"):
            continue
        req = parse_requirement(text)
        if req is None:
            continue
        extra: dict[str, Any] = {"section": section}
        if group is not None:
            extra["group"] = group
            extra["optional"] = True
        collector.add(requirement_dependency(req, SOURCE, lines.find_text(text), extra,
                                             marker_extra=group or ""))
