"""joblib <= 0.9 array files: where ``joblib.load`` reads them from.

Old joblib dumps keep each array in a file next to the pickle (``model.pkl_01.npy``); the
pickle holds an ``NDArrayWrapper`` whose ``filename`` joblib joins to the pickle's directory
and loads with NumPy, pickles allowed (``numpy_pickle_compat``). A filename
that is absolute or climbs out with ``..`` makes loading this pickle unpickle an arbitrary
``.npy`` elsewhere on the machine: hex reports it. The names are read by walking the pickle's
opcodes (pickletools parses, it never builds objects) for the string after ``'filename'``.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Iterator

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import read_up_to
from hexscan.model.finding import Finding
from hexscan.parsers.paths import escape_kind
from hexscan.rules import archive as archive_rules

SIDECAR_RULE = archive_rules.PATH_TRAVERSAL
#: Old joblib pickles hold no array data, so their pickles are small; read at most this.
MAX_PICKLE = 64 * 1024 * 1024
_STRINGS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                      "SHORT_BINSTRING", "BINSTRING", "STRING"})


def sidecar_names(data: bytes) -> list[tuple[int, str]]:
    """(offset, name) of every string that follows a ``'filename'`` string constant."""
    names: list[tuple[int, str]] = []
    after_key = False
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(data)):
            if op.name not in _STRINGS:
                continue
            text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
            if after_key:
                names.append((pos or 0, text))
            after_key = text == "filename"
    except (ValueError, KeyError, EOFError, UnicodeDecodeError):
        pass  # the pickle machine reports the broken stream; the names seen so far count
    return names


def sidecar_findings(artifact: Artifact, start: int) -> Iterator[Finding]:
    with artifact.open() as stream:
        stream.seek(start)
        data = read_up_to(stream, MAX_PICKLE)
    for offset, name in sidecar_names(data):
        kind = escape_kind(name)
        if kind:
            yield Finding(SIDECAR_RULE, f"joblib array file {name!r} lies outside the pickle's "
                          f"directory ({kind}); loading the pickle unpickles that .npy",
                          key=f"sidecar:{name}", offset=start + offset,
                          evidence={"member": name, "escape": kind})
