"""What every manifest reader shares: bounds, PEP 508 parsing, pins, markers, line numbers."""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from hexscan.supply.records import Dependency

#: Manifests larger than this are refused whole (no real manifest comes close).
MAX_TEXT_BYTES = 5 * 1024 * 1024
#: More dependency entries than this in one manifest are refused whole.
MAX_ENTRIES = 20_000
#: A single requirement (without its options) longer than this is not parsed.
MAX_REQUIREMENT_CHARS = 10_000
#: At most this many ``--hash`` values are kept per requirement.
MAX_HASHES = 64

#: The environment markers are evaluated against: a generic CPython 3.11 on x86-64 Linux,
#: the platform model repositories are most often run on. Fixed so results do not depend on
#: the machine hex runs on.
GENERIC_ENVIRONMENT: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
    "extra": "",
}


class InventoryError(ValueError):
    """A manifest that hex refuses to read: too large, too many entries, or not parseable."""


def check_size(text: str) -> None:
    """Refuse text whose UTF-8 form is over :data:`MAX_TEXT_BYTES`."""
    if len(text) > MAX_TEXT_BYTES or (
            len(text) * 4 > MAX_TEXT_BYTES
            and len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES):
        raise InventoryError(f"manifest is larger than the {MAX_TEXT_BYTES} bytes hex reads")


class Collector:
    """A list of dependencies that refuses to grow past :data:`MAX_ENTRIES`."""

    def __init__(self) -> None:
        self.items: list[Dependency] = []

    def add(self, dep: Dependency) -> None:
        if len(self.items) >= MAX_ENTRIES:
            raise InventoryError(f"manifest has more than {MAX_ENTRIES} entries")
        self.items.append(dep)


def load_toml(text: str, kind: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{kind} is not valid TOML: {str(exc)[:200]}") from exc
    except RecursionError as exc:
        raise InventoryError(f"{kind} is nested too deeply to read") from exc


def load_json(text: str, kind: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise InventoryError(f"{kind} is nested too deeply to read") from exc
    except ValueError as exc:
        raise InventoryError(f"{kind} is not valid JSON: {str(exc)[:200]}") from exc


def table(node: Any, *path: str) -> dict[str, Any]:
    """The dict at ``path`` under node, or {} when any step is missing or not a table."""
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def pinned(specifier: SpecifierSet) -> str | None:
    """The exact version a specifier set pins (``==X`` without a wildcard, or ``===X``)."""
    for spec in specifier:
        if spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith("*")):
            return spec.version
    return None


def marker_applies(marker: Marker, extra: str = "") -> bool | None:
    """Whether a marker holds in :data:`GENERIC_ENVIRONMENT`; None when it cannot be evaluated."""
    try:
        return bool(marker.evaluate({**GENERIC_ENVIRONMENT, "extra": extra}))
    except (ValueError, TypeError, RecursionError):
        return None


def add_marker(extra: dict[str, Any], markers: Any) -> None:
    """Record a marker string (Poetry, Pipenv) and whether it applies, into ``extra``."""
    if not isinstance(markers, str) or not markers.strip():
        return
    text = markers.strip()[:1000]
    extra["marker"] = text
    try:
        extra["marker_applies"] = marker_applies(Marker(text))
    except (InvalidMarker, ValueError, RecursionError):
        extra["marker_applies"] = None


def parse_requirement(text: str) -> Requirement | None:
    """A PEP 508 requirement, or None when the text is not one (never raises)."""
    if not text or len(text) > MAX_REQUIREMENT_CHARS:
        return None
    try:
        return Requirement(text)
    except (InvalidRequirement, ValueError, RecursionError):
        return None


def requirement_dependency(req: Requirement, source: str, line: int | None,
                           extra: Mapping[str, Any] | None = None,
                           marker_extra: str = "") -> Dependency:
    """A PyPI Dependency from a parsed PEP 508 requirement."""
    info: dict[str, Any] = dict(extra or {})
    if req.extras:
        info["extras"] = sorted(req.extras)
    if req.marker is not None:
        info["marker"] = str(req.marker)
        info["marker_applies"] = marker_applies(req.marker, marker_extra)
    if req.url:
        # name @ url: the version its wheel/sdist file names, when it is the same project,
        # is matched against advisories like an == pin
        info["url"] = req.url
        info["direct"] = True
        name, version = distribution_of(req.url)
        return Dependency("PyPI", req.name,
                          version if name == canonicalize_name(req.name) else None,
                          spec=f"@ {req.url}", source=source, line=line, extra=info)
    return Dependency("PyPI", req.name, pinned(req.specifier), spec=str(req.specifier),
                      source=source, line=line, extra=info)


class LineFinder:
    """Finds the line a value was written on, for formats whose parser forgets it.

    Entries are looked up in file order, so the search resumes after the last hit; it looks
    at most :attr:`WINDOW` lines ahead so a value that cannot be found costs little.
    """

    WINDOW = 2000

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.cursor = 0

    def find(self, test: Callable[[str], bool]) -> int | None:
        """The 1-based number of the next line passing ``test`` (else the last hit's line,
        for several values written on one line), or None."""
        end = min(len(self.lines), self.cursor + self.WINDOW)
        for index in range(self.cursor, end):
            if test(self.lines[index]):
                self.cursor = index + 1
                return index + 1
        if self.cursor and test(self.lines[self.cursor - 1]):
            return self.cursor
        return None

    def find_text(self, needle: str) -> int | None:
        return self.find(lambda line: needle in line) if needle else None

    def find_key(self, key: str) -> int | None:
        """A TOML/INI line that assigns ``key`` (bare or quoted)."""
        forms = (key, f'"{key}"', f"'{key}'")

        def test(line: str) -> bool:
            head, sep, _ = line.partition("=")
            return bool(sep) and head.strip() in forms

        return self.find(test)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")


def distribution_of(location: str) -> tuple[str | None, str | None]:
    """(project, version) a URL or path names: its wheel or sdist file name, else its
    ``#egg=`` fragment (no version)."""
    path = urlsplit(location).path if _SCHEME.match(location) else location
    filename = unquote(posixpath.basename(path.replace("\\", "/")))
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return str(name), str(version)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return str(name), str(version)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        pass
    egg = _EGG.search(location)
    return (str(canonicalize_name(egg.group(1))), None) if egg else (None, None)
