"""Conda environment files (``environment.yml``, ``conda.yml``), read with ``yaml.safe_load``.

Each string under ``dependencies`` is a conda match spec (``pytorch=2.5.1``,
``conda-forge::numpy==1.26.4=py311_0``, ``scipy 1.13.1 py311_0``, ``pandas>=2``); it becomes an
ecosystem ``"conda"`` Dependency with the conda name kept. Conda reads ``=X`` as the prefix
``X.*``, so a single ``=`` pins only a full ``major.minor.patch`` version (or any version when a
build string follows); ``==X`` always pins. Conda packages that are the same project as a PyPI
package (policy/ml_packages.toml ``[conda_to_pypi]``) carry ``extra["pypi_name"]`` so PyPI
advisories match them. The ``pip:`` sub-list is read as requirements lines.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from hexscan.policy import lists
from hexscan.supply.inventory._common import Collector, InventoryError, LineFinder
from hexscan.supply.inventory.requirements import requirement_line
from hexscan.supply.records import Dependency

SOURCE = "environment.yml"
_NAME = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.\-]*)")
_BRACKET_VERSION = re.compile(r"""version\s*=\s*['"]?([^'",\]]+)""")
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Above this nesting bound the pure-Python SafeLoader is used: libyaml's composer recurses on
#: the C stack without Python's recursion limit, and very deep nesting crashes the process.
_FAST_MAX_DEPTH = 1000


@cache
def conda_to_pypi() -> dict[str, str]:
    """Conda package name -> the PyPI name of the same project (policy/ml_packages.toml)."""
    table = lists.load("ml_packages")["conda_to_pypi"]
    return {_key(str(k)): str(v) for k, v in table.items()}


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(name: str, text: str) -> list[Dependency]:
    try:
        loader = _FAST_LOADER if _nesting_bound(text) <= _FAST_MAX_DEPTH else yaml.SafeLoader
        data = yaml.load(text, Loader=loader)  # noqa: S506  # noqa: hex-safe (SafeLoader)
    except (yaml.YAMLError, UnicodeError) as exc:
        raise InventoryError(f"{SOURCE} is not valid YAML: {str(exc)[:200]}") from exc
    except RecursionError as exc:
        raise InventoryError(f"{SOURCE} is nested too deeply to read") from exc
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        return []
    collector = Collector()
    lines = LineFinder(text)
    for item in deps:
        if isinstance(item, str):
            dep = conda_dependency(item, lines.find_text(item.strip()))
            if dep is not None:
                collector.add(dep)
        elif isinstance(item, dict) and isinstance(item.get("pip"), list):
            for entry in item["pip"]:
                if not isinstance(entry, str):
                    continue
                dep = requirement_line(entry, SOURCE, lines.find_text(entry.strip()),
                                       {"via": "pip"})
                if dep is not None:
                    collector.add(dep)
    return collector.items


def _nesting_bound(text: str) -> int:
    """An upper bound on how deeply the YAML nests: indentation, plus every indicator
    character on the line, plus the open flow brackets carried over from earlier lines."""
    worst = brackets = 0
    for line in text.splitlines():
        body = line.lstrip(" ")
        indicators = body.count("-") + body.count("?") + body.count(":")
        opened = body.count("[") + body.count("{")
        worst = max(worst, len(line) - len(body) + indicators + brackets + opened)
        brackets = max(0, brackets + opened - body.count("]") - body.count("}"))
    return worst


def conda_dependency(spec: str, line: int | None = None) -> Dependency | None:
    """One conda match spec as a Dependency, or None when it names no package."""
    text = spec.strip()[:1000]
    channel, _, rest = text.rpartition("::")
    match = _NAME.match(rest)
    if match is None:
        return None
    name = match.group(1)
    tail = rest[match.end():].strip()
    version, build = _version_and_build(tail)
    extra: dict[str, Any] = {}
    if channel:
        extra["channel"] = channel[:200]
    if build:
        extra["build"] = build[:200]
    pypi = conda_to_pypi().get(_key(name))
    if pypi is not None:
        extra["pypi_name"] = pypi
    return Dependency("conda", name, version, spec=tail, source=SOURCE, line=line, extra=extra)


def _version_and_build(tail: str) -> tuple[str | None, str | None]:
    """(exact version or None, build string or None) of the part after the package name."""
    if tail.startswith("["):
        found = _BRACKET_VERSION.search(tail)
        if found is None:
            return None, None
        value = found.group(1).strip()
        return _exact(value if value[:1] in "=<>!~" else "==" + value, build=False), None
    if tail and tail[0] not in "=<>!~" and " " not in tail.strip():
        return _exact("==" + tail.strip(), build=False), None
    if not tail.startswith("=") and " " in tail:  # "numpy 1.26.4 py311_0"
        parts = tail.split()
        return _exact("==" + parts[0], build=len(parts) > 1), (parts[1] if len(parts) > 1
                                                                else None)
    if tail.startswith("=="):
        version, _, build = tail[2:].partition("=")
        return _exact("==" + version.strip(), build=bool(build)), build.strip() or None
    if tail.startswith("="):
        version, _, build = tail[1:].partition("=")
        return _exact("=" + version.strip(), build=bool(build)), build.strip() or None
    return None, None


def _exact(spec: str, build: bool) -> str | None:
    """The exact version of ``==X`` / ``=X`` (see module docstring), else None."""
    single = not spec.startswith("==")
    version = spec.lstrip("=").strip()
    if not version or any(c in version for c in "*<>!~,| "):
        return None
    if single and not build and len(version.split(".")) < 3:
        return None
    return version
