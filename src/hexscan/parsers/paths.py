"""How a path stored in a model or archive could escape the directory it is meant for."""

from __future__ import annotations

import re

_DRIVE = re.compile(r"^[A-Za-z]:")


def escape_kind(name: str) -> str | None:
    """Why ``name``, resolved inside a directory, would leave it; None when it stays.

    Backslashes count as separators (Windows extractors treat them so); an absolute path,
    a drive letter or a UNC share leave the directory whatever follows.
    """
    if not name:
        return None
    if name.startswith(("\\\\", "//")):
        return "unc"
    if _DRIVE.match(name):
        return "drive"
    if name.startswith(("/", "\\")):
        return "absolute"
    if climbs_out(name.replace("\\", "/")):
        return "backslash-traversal" if "\\" in name and not climbs_out(name) else "traversal"
    return None


def climbs_out(name: str, base_depth: int = 0) -> bool:
    """True when the '/'-separated relative path goes above its starting directory."""
    depth = base_depth
    for part in name.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def link_escapes(member: str, target: str) -> str | None:
    """Why a symlink stored at ``member`` pointing to ``target`` leaves the archive root."""
    kind = escape_kind(target)
    if kind in ("unc", "drive", "absolute"):
        return kind
    parent_depth = len([p for p in member.replace("\\", "/").split("/")[:-1]
                        if p not in ("", ".")])
    if climbs_out(target.replace("\\", "/"), parent_depth):
        return "traversal"
    return None
