"""Structural probes for formats that have no fixed magic bytes.

Each probe looks at the first bytes (``head``) of a file, never more, and answers whether
the content has that format's structure. They parse; they never deserialise.
"""

from __future__ import annotations

import io
import pickletools

from hexscan.formats.kinds import Format
from hexscan.parsers.protowire import LEN, VARINT, FIXED32, WireError, iter_fields

_MIN_PICKLE_OPS = 12


def looks_like_pickle(head: bytes, complete: bool) -> bool:
    """True when ``head`` parses as a pickle opcode stream with a consistent stack.

    Protocol 2+ pickles start with PROTO; protocol 0/1 have no magic at all (a known
    bypass: CVE-2025-10155), so we walk the opcodes and simulate stack depth. The stream
    must reach STOP, or (when we hold only the head of a larger file) run for a dozen
    opcodes without an error, an underflow or a stray mark.
    """
    if not head:
        return False
    if head[0] == 0x80:
        return len(head) > 1 and 2 <= head[1] <= 5
    return _walk_opcodes(head, complete)


def _walk_opcodes(head: bytes, complete: bool) -> bool:
    depth, marks, count = 0, [], 0
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(head)):
            count += 1
            before = opcode.stack_before
            if pickletools.markobject in before:
                if not marks:
                    return False
                depth = marks.pop()
                before = before[:before.index(pickletools.markobject)]
            if depth < len(before):
                return False
            depth -= len(before)
            if pickletools.markobject in opcode.stack_after:
                marks.append(depth)
                depth = 0
            else:
                depth += len(opcode.stack_after)
            if opcode.name == "STOP":
                return count >= 2 and not marks
    except (ValueError, EOFError, IndexError, UnicodeDecodeError):
        pass
    return not complete and count >= _MIN_PICKLE_OPS


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


def protobuf_kind(head: bytes, size: int) -> Format | None:
    """Classify a protobuf message by its top-level field numbers and wire types."""
    try:
        fields = list(iter_fields(head, allow_truncated=len(head) < size))
    except WireError:
        return None
    if not fields:
        return None
    shape = {(f.number, f.wire_type) for f in fields}
    numbers = {f.number for f in fields}
    if numbers <= {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25} and 7 in numbers and \
            (1, VARINT) in shape:
        return Format.ONNX
    if shape <= {(1, VARINT), (2, LEN)} and (2, LEN) in shape and (1, VARINT) in shape:
        return Format.TF_SAVEDMODEL
    if (1, VARINT) in shape and any(n >= 200 for n in numbers):
        return Format.COREML
    if (100, LEN) in shape or (1, LEN) in shape and (2, LEN) in shape and \
            _first_sub_has(head, fields, 1, (2, FIXED32)):
        return _caffe_or_spm(shape)
    if (1, LEN) in shape and _first_sub_has(head, fields, 1, (2, LEN)):
        return Format.TF_GRAPHDEF
    return Format.PROTOBUF


def _caffe_or_spm(shape: set[tuple[int, int]]) -> Format:
    return Format.CAFFE_MODEL if (100, LEN) in shape else Format.SENTENCEPIECE


def _first_sub_has(head: bytes, fields: list, number: int, want: tuple[int, int]) -> bool:
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
    if stripped.startswith("[net]") or stripped.startswith("[network]"):
        return Format.DARKNET_CFG
    return None


def looks_like_ubjson_xgboost(head: bytes) -> bool:
    """XGBoost's UBJSON model: ``{`` then the key ``learner``."""
    return head[:1] == b"{" and b"learner" in head[:32] and not looks_like_text(head[:64])


def looks_like_zlib(head: bytes) -> bool:
    """A raw zlib stream (joblib's zlib compressor writes one)."""
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0 \
        and not head[1] & 0x20
