"""Is this a pickle? The opcode walk identification uses, read as the unpicklers read it.

Protocol 2+ pickles start with PROTO; protocol 0/1 pickles have no magic at all, so the
stream is walked opcode by opcode with a stack-depth model. Numeric and name arguments are
read with the unpicklers' own rules (``hexscan.parsers.pickle_text``), not ``pickletools``',
so a spelling CPython accepts is never "unrecognised". Nothing is unpickled.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Iterator
from dataclasses import dataclass

from hexscan.parsers.pickle_text import float_literal, int_literal, long_literal

#: Opcodes a stream must read without error when only the head of a big file is held.
_MIN_PICKLE_OPS = 12
#: A stream that stops (STOP) within this many opcodes, imports nothing and is followed by
#: more bytes is text that happens to start like a pickle ("N.B. ..."), not a pickle.
_TRIVIAL_OPS = 4
#: Opcodes that import or call: once the unpickler has run one, failing later is too late.
_IMPORTING = frozenset({"GLOBAL", "INST", "STACK_GLOBAL", "REDUCE"})
_PICKLE_ERRORS = (ValueError, EOFError, IndexError, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class PickleWalk:
    """What a stack-checked opcode walk of one pickle stream saw.

    ``stop`` is the offset just past STOP, or None when the stream broke (bad argument,
    truncation) before reaching it; ``underflow`` means the stack model broke, which no
    pickler writes, so the bytes are not a pickle at all.
    """

    ops: int = 0
    stop: int | None = None
    imported: bool = False
    names_ok: bool = True
    underflow: bool = False


def looks_like_pickle(head: bytes, complete: bool) -> bool:
    """True when ``head`` parses as a pickle opcode stream with a consistent stack.

    Protocol 2+ pickles start with PROTO; protocol 0/1 have no magic at all (a known
    bypass: CVE-2025-10155), so we walk the opcodes and simulate stack depth. The stream
    must reach STOP (and not be a two-opcode accident followed by text), or run for a
    dozen opcodes before it breaks: when we hold only the head of a larger file, or when
    the file is a long but corrupt pickle, which the unpickler still runs up to the break.
    """
    if not head:
        return False
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return True
    if head[0] == 0x80 and (len(head) < 2 or head[1] > 5):
        return False
    # PROTO 0 and PROTO 1 are legal too (the unpickler accepts any protocol up to its highest):
    # two bytes are weak evidence there, so the stream is walked like an unmarked one.
    walk = walk_pickle(head)
    if walk.underflow:
        return False
    if walk.stop is not None:
        return _plausible_stop(head, walk)
    return walk.ops >= _MIN_PICKLE_OPS and (not complete or walk.names_ok)


def looks_like_broken_pickle(head: bytes) -> bool:
    """A short pickle that breaks after importing or calling something.

    The unpickler runs GLOBAL/REDUCE before it meets the bad byte, so such a stream is
    still dangerous (picklescan's ``broken_model.pkl``). Two opcodes are weak evidence,
    so identification accepts this only for names that a pickle loader reads.
    """
    walk = walk_pickle(head)
    # A stack underflow is a break like any other: CPython raises there, after running what
    # came before (``R`` then ``u`` with no MARK still ran the REDUCE).
    return ((walk.stop is None or walk.underflow) and walk.imported and walk.names_ok
            and walk.ops >= 2)


def starts_like_pickle(head: bytes) -> bool:
    """A first stream that reaches STOP, or imports before it breaks (a loader runs it).

    For names a pickle loader reads even when the stream is tiny (``I3\\n.``) and is
    followed by raw data, as in torch's legacy tar records.
    """
    walk = walk_pickle(head)
    return walk.ops >= 1 and not walk.underflow and (walk.stop is not None or walk.imported)


def walk_pickle(head: bytes) -> PickleWalk:
    """Walk the first pickle stream of ``head`` with a stack-depth model; never raises."""
    depth, ops, imported, names_ok = 0, 0, False, True
    marks: list[int] = []
    try:
        for opcode, arg, pos in _genops(io.BytesIO(head)):
            before = opcode.stack_before
            if opcode.name == "POP" and depth == 0 and marks:
                depth = marks.pop()  # POP on an empty stack after MARK pops the mark
                ops += 1
                continue
            if pickletools.markobject in before:
                if not marks:
                    return PickleWalk(ops, None, imported, names_ok, underflow=True)
                depth = marks.pop()
                before = before[:before.index(pickletools.markobject)]
            if depth < len(before):
                return PickleWalk(ops, None, imported, names_ok, underflow=True)
            ops += 1
            imported = imported or opcode.name in _IMPORTING
            names_ok = names_ok and _names_ok(opcode.name, arg)
            depth -= len(before)
            if pickletools.markobject in opcode.stack_after:
                marks.append(depth)
                depth = 0
            else:
                depth += len(opcode.stack_after)
            if opcode.name == "STOP":
                return PickleWalk(ops, (pos or 0) + 1, imported, names_ok,
                                  underflow=bool(marks))
    except _PICKLE_ERRORS:
        pass
    return PickleWalk(ops, None, imported, names_ok)


def _read_int_text(f: io.BytesIO) -> int:
    """INT/LONG/GET/PUT text arguments as the unpicklers read them (base prefixes, octal, a
    NUL ends the number in C); pickletools reads only plain decimals."""
    line = f.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline")
    try:
        return int_literal(line[:-1])
    except ValueError:
        return long_literal(line[:-1])


def _read_float_text(f: io.BytesIO) -> float:
    line = f.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline")
    return float_literal(line[:-1])


def _read_name_pair(f: io.BytesIO) -> str:
    """GLOBAL/INST ``module\nname\n``. At the end of the data both unpicklers take a cut
    line as if its last byte were the newline, and import (INST: call) before failing."""
    module = f.readline()
    name = f.readline()
    if not module.endswith(b"\n") or len(name) < 2:
        raise ValueError("no newline")
    return f"{module[:-1].decode('utf-8')} {name[:-1].decode('utf-8')}"


_TEXT_READERS = {
    id(pickletools.stringnl_noescape_pair): _read_name_pair,
    id(pickletools.decimalnl_short): _read_int_text,
    id(pickletools.decimalnl_long): _read_int_text,
    id(pickletools.floatnl): _read_float_text,
}
_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}


def _genops(f: io.BytesIO) -> Iterator[tuple[pickletools.OpcodeInfo, object, int]]:
    """``pickletools.genops`` with the unpicklers' own reading of numeric text arguments."""
    while True:
        pos = f.tell()
        code = f.read(1)
        opcode = _OPCODES.get(code)
        if opcode is None:
            raise ValueError(f"no opcode {code!r} at {pos}")
        descriptor = opcode.arg
        reader = _TEXT_READERS.get(id(descriptor)) if descriptor is not None else None
        arg = None if descriptor is None else (reader or descriptor.reader)(f)
        yield opcode, arg, pos
        if code == b".":
            return


def _names_ok(opcode: str, arg: object) -> bool:
    """GLOBAL/INST name ``module qualname`` as Python writes it: dotted ASCII identifiers."""
    if opcode not in ("GLOBAL", "INST") or not isinstance(arg, str):
        return True
    parts = arg.split(" ")
    return len(parts) == 2 and all(
        name.isascii() and all(p.isidentifier() for p in name.split(".")) for name in parts)


def _plausible_stop(head: bytes, walk: PickleWalk) -> bool:
    """A stream that reached STOP is a pickle unless it is a short accident before text."""
    assert walk.stop is not None
    rest = head[walk.stop:]
    return (walk.ops >= 2 and (walk.ops >= _TRIVIAL_OPS or walk.imported
                               or not rest.strip() or rest[:1] == b"\x80"))


#: Opcodes that import, call, build objects or hand control to a persistent_load hook:
#: a pickle without any of them can only produce str, bytes, numbers, lists, tuples,
#: dicts, sets and None, whatever loader reads it.
_NOT_PLAIN = frozenset({"GLOBAL", "INST", "STACK_GLOBAL", "REDUCE", "EXT1", "EXT2", "EXT4",
                        "PERSID", "BINPERSID", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})


def plain_data_pickle(data: bytes) -> bool:
    """True when ``data`` is wholly one or more complete pickle streams of plain data.

    Any trailing byte that is not a further complete stream, any opcode that imports or
    calls, or any argument the reader rejects makes the answer False (not known plain).
    """
    stream = io.BytesIO(data)
    streams = 0
    while stream.tell() < len(data):
        if walk_pickle(data[stream.tell():]).underflow:
            return False
        try:
            ops = [op.name for op, _, _ in pickletools.genops(stream)]
        except _PICKLE_ERRORS:
            return False
        if not ops or ops[-1] != "STOP" or _NOT_PLAIN.intersection(ops):
            return False
        streams += 1
    return streams > 0
