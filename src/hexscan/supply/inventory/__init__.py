"""What a model needs, read from the manifests and configs found beside it.

Every reader is a pure function from ``(file name, text)`` to a list of
:class:`~hexscan.supply.records.Dependency`: nothing here opens a file, follows an include or
touches the network, so the caller decides which files of the scanned tree are read and how
includes are followed. Readers are bounded (:data:`MAX_TEXT_BYTES`, :data:`MAX_ENTRIES`) and
raise nothing but :class:`InventoryError` on hostile input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath

from hexscan.supply.inventory._common import (
    MAX_ENTRIES,
    MAX_TEXT_BYTES,
    InventoryError,
    check_size,
)
from hexscan.supply.inventory.configs import framework_from_onnx, framework_versions
from hexscan.supply.records import Dependency

__all__ = [
    "MAX_ENTRIES", "MAX_TEXT_BYTES", "InventoryError", "framework_from_onnx",
    "framework_versions", "includes", "kind_of", "read",
]

_REQUIREMENTS = re.compile(r"(requirements[\w.-]*\.txt|constraints[\w.-]*\.txt|[\w.-]+\.in)")
_CONDA = re.compile(r"(environment|conda)\.ya?ml")

#: A reader: (file name, text) -> dependencies; the manifest kind is their ``source``.
Reader = Callable[[str, str], list[Dependency]]


def kind_of(name: str) -> str | None:
    """The manifest kind a file name stands for (basename, case-insensitive), else None."""
    base = PurePosixPath(name.replace("\\", "/")).name.lower()
    if _REQUIREMENTS.fullmatch(base):
        return "requirements"
    if _CONDA.fullmatch(base):
        return "environment.yml"
    return {
        "pyproject.toml": "pyproject.toml",
        "setup.cfg": "setup.cfg",
        "pipfile": "Pipfile",
        "pipfile.lock": "Pipfile.lock",
        "poetry.lock": "poetry.lock",
        "uv.lock": "uv.lock",
    }.get(base)


def _readers() -> dict[str, Reader]:
    from hexscan.supply.inventory import conda, locks, pipfile, pyproject, requirements, setupcfg

    return {
        "requirements": requirements.parse,
        "environment.yml": conda.parse,
        "pyproject.toml": pyproject.parse,
        "setup.cfg": setupcfg.parse,
        "Pipfile": pipfile.parse_pipfile,
        "Pipfile.lock": pipfile.parse_lock,
        "poetry.lock": locks.parse_poetry_lock,
        "uv.lock": locks.parse_uv_lock,
    }


def read(name: str, text: str) -> list[Dependency]:
    """The dependencies a manifest declares; [] for a file name no reader knows.

    Raises :class:`InventoryError` for text over the size bound, more than
    :data:`MAX_ENTRIES` entries, or a structured file (TOML, JSON, YAML, INI) that does not parse.
    """
    kind = kind_of(name)
    if kind is None:
        return []
    check_size(text)
    try:
        return _readers()[kind](name, text)
    except RecursionError as exc:
        raise InventoryError(f"{kind} is nested too deeply to read") from exc


def includes(name: str, text: str) -> list[str]:
    """The files a manifest pulls in (``-r`` / ``-c`` lines, setup.cfg ``file:``), as written.

    The caller resolves them relative to the manifest, inside the scanned tree only.
    """
    kind = kind_of(name)
    if kind is None:
        return []
    from hexscan.supply.inventory import requirements, setupcfg

    check_size(text)
    if kind == "requirements":
        return requirements.includes(text)
    if kind == "setup.cfg":
        return setupcfg.includes(text)
    return []
