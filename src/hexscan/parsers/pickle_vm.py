"""A symbolic pickle machine: what CPython's unpickler would do, without importing or calling.

The machine walks the opcodes of protocols 0-5 with a real stack, metastack (MARK) and memo, but
every global is a :class:`~hexscan.parsers.pickle_values.Ref` and every call a
:class:`~hexscan.parsers.pickle_values.CallResult`. It follows the indirections payloads use to hide
what they run (``getattr`` / ``attrgetter`` / ``methodcaller`` chains, ``__import__``,
``functools.partial``, a ``__setstate__`` planted by one BUILD and called by the next, module
attributes overwritten by BUILD, names computed with ``str.join`` or base64) and records each global
with how it is used. The result is a frozen :class:`PickleView`; judging it is the policy's job.

It never raises on any input: malformations and limits are recorded and whatever was seen before
them is kept, because a real loader may already have run the payload before failing.

Speed: the stream is read in 1 MiB chunks, large values are skipped (only a head is kept), and runs
of fixed-width constants (BINFLOAT, BININT*, protocol-0 ``F...\\na``) are consumed with one regex
match and one struct unpack instead of one Python dispatch per opcode.

This module is the public face; the machine is split by concern:

* ``pickle_view``    the records and the frozen view (the contract with the policy)
* ``pickle_reader``  chunked reading, stream-ending conditions, constant-run tables
* ``pickle_opcodes`` one handler per opcode
* ``pickle_machine`` the driver, state, recording, globals, calls and BUILD semantics
* ``pickle_calls``   call semantics: getattr/__import__/partial/operator, trampolines
* ``pickle_nested``  detection and scanning of pickles hidden in str/bytes constants
* ``pickle_values``  the symbolic values and their rendering
* ``pickle_folds``   names and attributes reached at load time, and the pure constant folds
* ``pickle_text``    protocol-0 text arguments, read as _pickle.c and pickle.py read them
* ``pickle_frames``  FRAME, and where the two unpicklers' readings of frames part
"""

from __future__ import annotations

import time
from typing import BinaryIO

from hexscan.parsers.pickle_calls import canonical_name
from hexscan.parsers.pickle_machine import _Machine
from hexscan.parsers.pickle_reader import _Budget, _Reader
from hexscan.parsers.pickle_values import CallResult, Ref
from hexscan.parsers.pickle_view import (
    USES,
    ExtensionUse,
    GlobalUse,
    LimitHit,
    Malformation,
    NestedPickle,
    PersistentRef,
    PickleLimits,
    PickleView,
    StreamInfo,
    TrailingData,
)

__all__ = [
    "CallResult",
    "ExtensionUse",
    "GlobalUse",
    "LimitHit",
    "Malformation",
    "NestedPickle",
    "PersistentRef",
    "PickleLimits",
    "PickleView",
    "Ref",
    "StreamInfo",
    "TrailingData",
    "USES",
    "analyze_pickle",
    "analyze_pickle_file",
    "canonical_name",
]


def analyze_pickle(
    source: bytes | bytearray | memoryview | BinaryIO, limits: PickleLimits | None = None
) -> PickleView:
    """Symbolically run every pickle stream in ``source`` (bytes, or a file read in chunks)."""
    limits = limits or PickleLimits()
    budget = _Budget(time.monotonic() + limits.max_seconds, limits.max_nested_pickles)
    return _Machine(_Reader(source), limits, budget, depth=0).run()


def analyze_pickle_file(path: str, limits: PickleLimits | None = None) -> PickleView:
    """Analyse a file on disk, streaming it."""
    with open(path, "rb") as handle:
        return analyze_pickle(handle, limits)
