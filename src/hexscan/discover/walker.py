"""Expand the targets into top-level files to scan.

Directories are walked without following symbolic links: a link that resolves inside the
scanned root is left to be scanned at its real place, one that leads outside is reported
(HEX-DSC-001) and never followed. Devices, fifos and sockets are skipped. Nothing is
opened for writing; this works on a read-only mount.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from hexscan.engine.walk import Task
from hexscan.model.finding import Finding
from hexscan.model.report import ErrorEntry, FileEntry, Status
from hexscan.rules import discover as rules


@dataclass
class Discovery:
    """The files to scan, and what discovery itself found or passed over."""

    tasks: list[Task] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    errors: list[ErrorEntry] = field(default_factory=list)


def discover(targets: list[str], recursive: bool = True) -> Discovery:
    """Walk every target; a missing target is an error entry."""
    found = Discovery()
    for target in targets:
        if not os.path.lexists(target):
            found.errors.append(ErrorEntry(target, None, "unreadable", "no such file or directory"))
            found.files.append(FileEntry(target, None, "unknown", None, Status.ERROR,
                                         "no such file or directory"))
        elif os.path.isdir(target):
            _walk_dir(target, recursive, found)
        elif os.path.isfile(target):
            found.tasks.append(Task(target, os.path.basename(target)))
        else:
            _skip(found, target, None, "not a regular file")
    return found


def _skip(found: Discovery, path: str, size: int | None, reason: str) -> None:
    found.files.append(FileEntry(path, None, "unknown", size, Status.SKIPPED, reason))


def _walk_dir(root: str, recursive: bool, found: Discovery) -> None:
    real_root = os.path.realpath(root)
    for path in _iter_entries(root, recursive, found):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        try:
            st = os.lstat(path)
        except OSError as exc:
            found.errors.append(ErrorEntry(path, None, "unreadable", str(exc)))
            continue
        if stat.S_ISLNK(st.st_mode):
            _symlink(path, rel, real_root, found)
        elif stat.S_ISREG(st.st_mode):
            found.tasks.append(Task(path, rel))
        else:
            _skip(found, path, None, "not a regular file (device, fifo or socket)")


def _iter_entries(root: str, recursive: bool, found: Discovery) -> Iterator[str]:
    """Every non-directory entry under root, sorted, without following links."""
    def on_error(exc: OSError) -> None:
        found.errors.append(ErrorEntry(exc.filename or root, None, "unreadable", str(exc)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            yield os.path.join(dirpath, name)
        if not recursive:
            dirnames.clear()


def _symlink(path: str, rel: str, real_root: str, found: Discovery) -> None:
    target = os.path.realpath(path)
    inside = target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)
    if not os.path.exists(target):
        _skip(found, path, None, "dangling symbolic link")
    elif inside:
        _skip(found, path, None, f"symbolic link inside the scanned tree (to {target})")
    else:
        found.findings.append(Finding(
            rules.SYMLINK_ESCAPE, f"{rel} links to {target}, outside the scanned tree",
            key=rel, evidence={"link": rel, "target": target},
        ).located(file_path=path, rel_path=rel, member=None, scanner="discover"))
        _skip(found, path, None, f"symbolic link out of the scanned tree (to {target})")
