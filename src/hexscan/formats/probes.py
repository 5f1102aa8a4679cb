"""Structural probes for formats that have no fixed magic bytes.

Each probe looks at the first bytes (``head``) of a file, never more, and answers whether
the content has that format's structure. They parse; they never deserialise.
"""

from __future__ import annotations

import re

from hexscan.formats import protobufs
from hexscan.formats.kinds import Format
from hexscan.formats.pickle_probe import walk_pickle
from hexscan.formats.signatures import (
    LZMA_ALONE_PROPS,
    TORCH_LEGACY_PROTOCOL,
    ZFILE_HEADER,
    ZFILE_PREFIX,
)
from hexscan.parsers.protowire import FIXED32, LEN, VARINT, Field, WireError, iter_fields


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
