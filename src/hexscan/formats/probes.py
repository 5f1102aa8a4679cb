"""Structural probes for formats that have no fixed magic bytes.

Each probe looks at the first bytes (``head``) of a file, never more, and answers whether
the content has that format's structure. They parse; they never deserialise.
"""

from __future__ import annotations

import io
import pickletools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from hexscan.formats import protobufs
from hexscan.formats.kinds import Format
from hexscan.formats.signatures import (
    LZMA_ALONE_PROPS,
    TORCH_LEGACY_PROTOCOL,
    ZFILE_HEADER,
    ZFILE_PREFIX,
)
from hexscan.parsers.pickle_text import float_literal, int_literal, long_literal
from hexscan.parsers.protowire import FIXED32, LEN, VARINT, Field, WireError, iter_fields

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


def looks_like_torch_legacy(head: bytes) -> bool:
    """torch.save's legacy layout: a first pickle, then the protocol-version pickle (1001).

    The first pickle normally is the literal magic number, but torch.load unpickles it,
    so a file may compute it instead (picklescan's ``pytorch_magic_bypass.pt``); the
    second stream still gives the layout away.
    """
    if head[:1] != b"\x80":
        return False
    walk = walk_pickle(head)
    return walk.stop is not None and TORCH_LEGACY_PROTOCOL.match(head, walk.stop) is not None


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """8-byte little-endian header length, then a JSON object."""
    if len(head) < 10:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def looks_like_darknet_weights(head: bytes, size: int) -> bool:
    """Darknet ``.weights``: int32 major, minor, revision, then the images-seen counter."""
    if len(head) < 20:
        return False
    major, minor, revision = (int.from_bytes(head[i:i + 4], "little") for i in (0, 4, 8))
    return major <= 1 and minor <= 20 and revision <= 10_000 and (size - 20) % 4 == 0


def protobuf_kind(head: bytes, size: int, named: frozenset[Format] = frozenset()) -> \
        Format | None:
    """Classify a protobuf message by its top-level field numbers and wire types.

    ``named`` holds the protobuf formats the file name leads a loader to expect: it breaks
    the ties between schemas whose fields overlap (a MediaPipe graph that uses only the
    fields a GraphDef also has), never overrides a schema the content rules out.
    """
    try:
        fields = list(iter_fields(head, allow_truncated=len(head) < size))
    except WireError:
        return None
    if not fields:
        return None
    shape = {(f.number, f.wire_type) for f in fields}
    numbers = {f.number for f in fields}
    if protobufs.is_onnx_model(fields):
        return Format.ONNX
    if shape <= {(1, VARINT), (2, LEN)} and (2, LEN) in shape and (1, VARINT) in shape:
        return Format.TF_SAVEDMODEL
    if protobufs.is_tf_fingerprint(fields, Format.TF_FINGERPRINT in named):
        return Format.TF_FINGERPRINT
    if Format.MEDIAPIPE_GRAPH in named and protobufs.is_mediapipe_graph(head, fields) or \
            protobufs.mediapipe_only(head, fields):
        return Format.MEDIAPIPE_GRAPH
    if (1, VARINT) in shape and any(n >= 200 for n in numbers):
        return Format.COREML
    if (100, LEN) in shape:
        return Format.CAFFE_MODEL
    if (1, LEN) in shape and numbers <= _SPM_FIELDS and \
            _first_sub_has(head, fields, 1, (2, FIXED32)):
        return Format.SENTENCEPIECE
    if protobufs.is_tf_graphdef(head, fields):
        return Format.TF_GRAPHDEF
    return Format.PROTOBUF


#: SentencePiece ModelProto: pieces 1 (each {piece 1, score 2 float, type 3}), trainer_spec
#: 2, normalizer_spec 3, self_test_data 4, denormalizer_spec 5. The pieces come first and
#: fill the head of a real model, so the probe keys on the first piece, not on field 2.
_SPM_FIELDS = frozenset({1, 2, 3, 4, 5})


def _first_sub_has(head: bytes, fields: list[Field], number: int, want: tuple[int, int]) -> bool:
    """Whether the first field ``number`` is a message whose fields include ``want``."""
    for f in fields:
        if f.number == number and f.wire_type == LEN:
            try:
                sub = {(g.number, g.wire_type) for g in
                       iter_fields(head, f.start, min(f.start + f.length, len(head)), True)}
            except WireError:
                return False
            return want in sub
    return False


def looks_like_text(head: bytes) -> bool:
    """Mostly printable UTF-8 with no NUL byte."""
    if not head or b"\x00" in head:
        return False
    sample = head[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:
            return False
        text = sample[:exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def text_kind(head: bytes) -> Format | None:
    """Recognise text formats by their content."""
    text = head[:4096].decode("utf-8", "replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if text.startswith("#!"):
        first = text.split("\n", 1)[0]
        return Format.PYTHON_SOURCE if "python" in first else Format.SHELL_SCRIPT
    if stripped.startswith("{") and '"learner"' in stripped[:200]:
        return Format.XGBOOST
    if _first_section(stripped) in ("[net]", "[network]"):
        return Format.DARKNET_CFG
    return None


#: A MediaPipe graph in protobuf text format: a ``node {`` block naming a calculator.
_MEDIAPIPE_NODE = re.compile(r"^\s*node\s*[{:]", re.MULTILINE)
_MEDIAPIPE_CALCULATOR = re.compile(r"^\s*calculator\s*:\s*\"", re.MULTILINE)


def looks_like_mediapipe_text(head: bytes) -> bool:
    """A CalculatorGraphConfig in text format (MediaPipe's ``.pbtxt`` graphs)."""
    if not looks_like_text(head):
        return False
    text = head[:16384].decode("utf-8", "replace")
    return bool(_MEDIAPIPE_NODE.search(text) and _MEDIAPIPE_CALCULATOR.search(text))


def _first_section(text: str) -> str:
    """The first line that is not blank or a ``#``/``;`` comment (darknet allows both)."""
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            return line
    return ""


def looks_like_ubjson_xgboost(head: bytes) -> bool:
    """XGBoost's UBJSON model: ``{`` then the key ``learner``."""
    return head[:1] == b"{" and b"learner" in head[:32] and not looks_like_text(head[:64])


def looks_like_lzma_alone(head: bytes) -> bool:
    """A legacy ``.lzma`` stream (joblib ``compress='lzma'``): no magic, only a header.

    joblib picks its lzma reader on the prefix ``5D 00`` (properties byte, low byte of the
    dictionary size); liblzma's auto decoder then accepts a dictionary size of 2^n or
    2^n + 2^(n-1) (any n, 0 and 2^32 - 1 included) and an uncompressed size below 2^38 or
    unknown (all ones). Those are the rules here, so no size the loader reads is missed.
    """
    if len(head) < 13 or head[0] != LZMA_ALONE_PROPS or head[1] != 0:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    rounded = (dict_size - 1) & 0xFFFFFFFF
    for shift in (2, 3, 4, 8, 16):
        rounded |= rounded >> shift
    rounded = (rounded + 1) & 0xFFFFFFFF
    size = int.from_bytes(head[5:13], "little")
    return (rounded == dict_size or dict_size == 0xFFFFFFFF) and \
        (size < 1 << 38 or size == (1 << 64) - 1)


def looks_like_java_class(head: bytes) -> bool:
    """A JVM class file, not a Mach-O universal binary: both start with 0xCAFEBABE.

    A universal binary then holds its architecture count (a handful); a class file its
    minor and major version (major 45 and up). libmagic tells them apart the same way.
    """
    return head[:4] == b"\xca\xfe\xba\xbe" and int.from_bytes(head[4:8], "big") > 30


def looks_like_zlib(head: bytes) -> bool:
    """A raw zlib stream (joblib's zlib compressor writes one), or joblib's pre-0.10 zfile.

    A zfile (``numpy_pickle_compat.read_zfile``) is ``ZF``, the data length in hex padded to
    19 characters (one more, a space, when Python 2 wrote it), then one zlib stream.
    """
    if head[:2] == ZFILE_PREFIX:
        try:
            int(head[2:ZFILE_HEADER].decode("ascii"), 16)
        except (UnicodeDecodeError, ValueError):
            return False
        start = ZFILE_HEADER + (head[ZFILE_HEADER:ZFILE_HEADER + 1] == b" ")
        return _zlib_header(head[start:])
    return _zlib_header(head)


def _zlib_header(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0 \
        and not head[1] & 0x20
