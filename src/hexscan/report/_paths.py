"""Root-relative paths for the CI formats (SARIF, JUnit).

CI systems match a report against the checkout, so they need paths relative to what was
scanned, never the absolute paths of the machine that ran hex. One scanned directory is its
own base; a scanned file's base is its directory; several roots share their common parent,
so two roots holding the same relative name still give two different paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote


class RootMap:
    """Maps scanned paths to forward-slash paths relative to one common base directory."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = tuple(os.path.normpath(r) for r in roots)
        #: The base directory of each root: the root itself, or a scanned file's directory.
        self._bases = tuple(r if os.path.isdir(r) else os.path.dirname(r) for r in self.roots)
        self.base: str | None = None
        if self._bases:
            try:
                self.base = os.path.commonpath(self._bases)
            except ValueError:  # different drives on Windows: no common base
                self.base = None

    def base_uri(self) -> str | None:
        """The ``file:`` URI of the common base, with the trailing slash SARIF asks for."""
        if self.base is None:
            return None
        uri = Path(self.base).as_uri()
        return uri if uri.endswith("/") else uri + "/"

    def relative(self, path: str, rel_path: str = "") -> str:
        """``path`` relative to the common base (``rel_path``, the engine's root-relative
        path, is used as is when there is only one root)."""
        if rel_path and len(self.roots) == 1:
            return rel_path
        absolute = os.path.normpath(os.path.abspath(path)) if path else ""
        owner = self._owner(absolute)
        if owner is None or self.base is None:
            return _slashes(rel_path or os.path.basename(path) or path)
        base = self._bases[owner]
        rel = rel_path or os.path.relpath(absolute, base)
        prefix = os.path.relpath(base, self.base)
        joined = rel if prefix == "." else os.path.join(prefix, rel)
        return _slashes(joined)

    def _owner(self, absolute: str) -> int | None:
        """Index of the longest root that is ``absolute`` or a directory above it."""
        best: int | None = None
        for i, root in enumerate(self.roots):
            inside = absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(root) > len(self.roots[best])):
                best = i
        return best


def _slashes(path: str) -> str:
    return path.replace(os.sep, "/") if os.sep != "/" else path


def uri_reference(rel: str) -> str:
    """A relative URI reference for a relative path: percent-encoded, forward slashes.

    The path is encoded from its file-system bytes, so names that are not valid UTF-8
    (kept by Python as surrogate escapes) keep their exact bytes. ``:`` is encoded too: a
    relative reference whose first segment holds a colon would read as a URI scheme.
    """
    return quote(os.fsencode(rel.lstrip("/")), safe="/")
