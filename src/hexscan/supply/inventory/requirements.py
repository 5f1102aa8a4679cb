"""pip requirements files (``requirements*.txt``, ``constraints*.txt``, pip-tools ``*.in``).

Follows pip's own reading of the format: backslash continuations are joined first, then
comments (``#`` at the start or after whitespace) are dropped, then each line is either an
option line (``-r``/``-c`` includes, ``-e`` editables, index options) or a requirement with
per-requirement options (``--hash``). Direct URLs, VCS and local paths name no released
version and are skipped; ``name @ url`` keeps the name with no version.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator
from typing import Any

from hexscan.supply.inventory._common import (
    MAX_ENTRIES,
    MAX_HASHES,
    Collector,
    InventoryError,
    parse_requirement,
    requirement_dependency,
)
from hexscan.supply.records import Dependency

#: A joined logical line longer than this is skipped (a real one is a few hundred characters,
#: a few thousand with many hashes).
MAX_LINE_CHARS = 200_000

_INCLUDE_FLAGS = (("--requirement", "include"), ("--constraint", "include"),
                  ("--editable", "editable"), ("-r", "include"), ("-c", "include"),
                  ("-e", "editable"))
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_NAME_AT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")
_ARCHIVE = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")
_OPTIONS_START = re.compile(r"\s--?[A-Za-z]")
_HASH = re.compile(r"--hash(?:\s*=\s*|\s+)(\S+)")


def parse(name: str, text: str) -> list[Dependency]:
    """The requirements of one requirements file."""
    collector = Collector()
    parse_lines(logical_lines(text), "requirements", collector)
    return collector.items


def includes(text: str) -> list[str]:
    """The files named by ``-r`` / ``-c`` (``--requirement`` / ``--constraint``), in order."""
    found: list[str] = []
    for _, line in logical_lines(text):
        kind, value = _option(line)
        if kind == "include" and value:
            if len(found) >= MAX_ENTRIES:
                raise InventoryError(f"manifest has more than {MAX_ENTRIES} includes")
            found.append(value)
    return found


def parse_lines(lines: Iterable[tuple[int | None, str]], source: str, collector: Collector,
                extra: dict[str, Any] | None = None) -> None:
    """Add one Dependency per requirement line; options, URLs and paths add nothing."""
    for number, line in lines:
        dep = requirement_line(line, source, number, extra)
        if dep is not None:
            collector.add(dep)


def requirement_line(line: str, source: str, number: int | None,
                     extra: dict[str, Any] | None = None) -> Dependency | None:
    """The Dependency one logical line declares, or None (option, URL, path, invalid)."""
    line = strip_comment(line).strip()
    if not line or line.startswith("-") or _is_location(line):
        return None
    match = _OPTIONS_START.search(line)
    requirement, options = (line[:match.start()], line[match.start():]) if match else (line, "")
    req = parse_requirement(requirement.strip())
    if req is None:
        return None
    info = dict(extra or {})
    hashes = _HASH.findall(options)[:MAX_HASHES]
    if hashes:
        info["hashes"] = hashes
    return requirement_dependency(req, source, number, info)


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, joined line): backslash continuations joined as pip joins them."""
    parts: list[str] = []
    size = 0
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        continues = line.endswith("\\") and not _is_comment_line(line)
        if not parts:
            start = number
        if size <= MAX_LINE_CHARS:
            parts.append(line[:-1] if continues else line)
            size += len(line)
        if continues:
            continue
        if size <= MAX_LINE_CHARS:
            yield start, "".join(parts)
        parts, size = [], 0
    if parts and size <= MAX_LINE_CHARS:
        yield start, "".join(parts)


def strip_comment(line: str) -> str:
    """The line without a ``#`` comment (one at the start or after whitespace); linear time."""
    index = line.find("#")
    while index != -1:
        if index == 0 or line[index - 1].isspace():
            return line[:index]
        index = line.find("#", index + 1)
    return line


def _is_comment_line(line: str) -> bool:
    return line.lstrip().startswith("#")


def _is_location(line: str) -> bool:
    """A direct URL, VCS reference or local path instead of a requirement."""
    head = line.split(";", 1)[0].strip()
    if _NAME_AT.match(head):
        return False
    first = head.split()[0] if head.split() else ""
    if "://" in first or _SCHEME.match(first):
        return True
    if first.startswith((".", "/", "~", "\\")) or "/" in first or "\\" in first:
        return True
    return first.lower().endswith(_ARCHIVE)


def _option(line: str) -> tuple[str, str]:
    """(kind, value) for an include or editable option line; ("", "") otherwise."""
    line = strip_comment(line).strip()
    for flag, kind in _INCLUDE_FLAGS:
        if not line.startswith(flag):
            continue
        rest = line[len(flag):]
        if flag.startswith("--") and rest[:1] not in ("=", " ", "\t", ""):
            continue
        if rest.startswith("="):
            rest = rest[1:]
        return kind, _first_word(rest.strip())
    return "", ""


def _first_word(text: str) -> str:
    if not text:
        return ""
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError:
        words = text.split()
    return words[0] if words else ""
