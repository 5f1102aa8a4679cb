"""identify(): what an artifact is, by content first and name second.

The answer records both readings so that a disagreement (a pickle named ``.safetensors``)
becomes a finding instead of a silent choice.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from hexscan.formats import pickle_probe, probes
from hexscan.formats.kinds import TEXT, Format
from hexscan.formats.signatures import (
    EXTENSIONS,
    MAGIC,
    NAME_ONLY,
    NAMES,
    TF_TABLE_MAGIC,
    TORCH_LEGACY_MAGIC,
    TORCH_LEGACY_TAR_MEMBERS,
    TORCH_STORAGE,
)

#: How many leading bytes identification reads.
HEAD_SIZE = 64 * 1024
#: How many trailing bytes identification reads.
TAIL_SIZE = 64

_PROTOBUF = frozenset({Format.ONNX, Format.TF_SAVEDMODEL, Format.TF_GRAPHDEF, Format.COREML,
                       Format.CAFFE_MODEL, Format.SENTENCEPIECE, Format.PROTOBUF,
                       Format.TF_FINGERPRINT, Format.MEDIAPIPE_GRAPH})
_STRONG_PROTOBUF = frozenset({Format.ONNX, Format.TF_SAVEDMODEL, Format.COREML,
                              Format.SENTENCEPIECE, Format.TF_GRAPHDEF, Format.TF_FINGERPRINT,
                              Format.MEDIAPIPE_GRAPH})
#: Formats recognised by structure, not by a signature (a structural guess can be wrong).
_STRUCTURAL = _PROTOBUF | {Format.DARKNET_WEIGHTS}
#: Schemas a name alone never gives: the content has to fit them (see formats/protobufs.py).
_EVIDENCE_ONLY = frozenset({Format.TF_FINGERPRINT, Format.MEDIAPIPE_GRAPH})
_TORCH_CONTAINERS = frozenset({Format.PYTORCH_ZIP, Format.TORCHSCRIPT})
#: Names a pickle loader reads; a short, broken pickle stream counts only under them.
_PICKLE_NAMES = frozenset({Format.PICKLE, Format.JOBLIB, Format.PYTORCH_LEGACY})


@dataclass(frozen=True, slots=True)
class Identification:
    """The identified format, and the two readings it was decided from.

    ``guessed`` marks a format read from structure alone (protobuf has no magic) that the
    name does not support: if its parser then rejects the file, the file is unrecognised,
    not a malformed file of that format.
    """

    format: Format
    by_content: Format | None
    expected: frozenset[Format] | None
    mismatch: bool
    guessed: bool = False

    def refined(self, fmt: Format) -> Identification:
        """The same identification with a more specific content format (zip layouts)."""
        mismatch = self.expected is not None and fmt not in self.expected
        return Identification(fmt, fmt, self.expected, mismatch)


def identify(name: str, head: bytes, size: int, tail: bytes = b"",
             parent: Format | None = None) -> Identification:
    """Identify an artifact from its name, first bytes, size and last bytes."""
    base = posixpath.basename(name.replace("\\", "/")).lower()
    expected = _expected(base)
    content = _by_content(head, size, tail, expected, base)
    if content is None and parent in _TORCH_CONTAINERS and TORCH_STORAGE.match(name):
        content = Format.TENSOR_DATA
    if content is None and parent is Format.TAR and base in TORCH_LEGACY_TAR_MEMBERS and \
            pickle_probe.starts_like_pickle(head):
        content = Format.PICKLE  # a short record pickle of torch's legacy tar layout
    fmt = content or _by_name(base, head, expected)
    if content is None and parent in _TORCH_CONTAINERS and not base.endswith(".py"):
        fmt = Format.TENSOR_DATA if fmt is Format.UNKNOWN else fmt
    mismatch = expected is not None and fmt not in expected and (
        content is not None or bool(expected))
    if content is None and fmt is Format.UNKNOWN and expected:
        mismatch = True
    guessed = content in _STRUCTURAL and content not in (expected or frozenset())
    return Identification(fmt, content, expected, mismatch, guessed)


def _expected(base: str) -> frozenset[Format] | None:
    for pattern, fmt in NAMES:
        if pattern.fullmatch(base):
            return frozenset({fmt})
    _, ext = posixpath.splitext(base)
    return EXTENSIONS.get(ext)


def _by_content(head: bytes, size: int, tail: bytes, expected: frozenset[Format] | None,
                base: str) -> Format | None:
    fmt = _magic(head)
    if fmt is Format.EXECUTABLE and probes.looks_like_java_class(head):
        fmt = None  # 0xCAFEBABE is also a JVM class file, which no model loader runs
    if fmt is not None:
        return _refine_magic(fmt, head, base)
    if head.startswith(TORCH_LEGACY_MAGIC) or probes.looks_like_torch_legacy(head):
        return Format.PYTORCH_LEGACY
    if probes.looks_like_lzma_alone(head):
        return Format.XZ
    if _is_pickle(head, size, expected):
        return _refine_pickle(head, base)
    if probes.looks_like_safetensors(head, size):
        return Format.SAFETENSORS
    if tail.endswith(TF_TABLE_MAGIC) and size >= 48:
        return Format.TF_CHECKPOINT_INDEX
    if probes.looks_like_zlib(head):
        return Format.ZLIB
    if probes.looks_like_ubjson_xgboost(head):
        return Format.XGBOOST
    if probes.looks_like_text(head):
        return probes.text_kind(head)
    return _binary_structure(head, size, expected or frozenset())


def _magic(head: bytes) -> Format | None:
    for offset, magic, fmt in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return fmt
    return None


def _refine_magic(fmt: Format, head: bytes, base: str) -> Format:
    if fmt is Format.HDF5 and (b"keras_version" in head or b"model_config" in head):
        return Format.KERAS_H5
    return fmt


def _is_pickle(head: bytes, size: int, expected: frozenset[Format] | None) -> bool:
    """A pickle stream; a short broken one only under a name that a pickle loader reads."""
    if pickle_probe.looks_like_pickle(head, complete=len(head) >= size):
        return True
    return bool(_PICKLE_NAMES & (expected or frozenset())) and \
        pickle_probe.looks_like_broken_pickle(head)


def _refine_pickle(head: bytes, base: str) -> Format:
    if b"joblib.numpy_pickle" in head[:4096] or base.endswith((".joblib", ".jbl")):
        return Format.JOBLIB
    return Format.PICKLE


def _binary_structure(head: bytes, size: int, expected: frozenset[Format]) -> Format | None:
    """Protobuf and Darknet have no magic: their structure decides, the name breaks ties.

    A message whose fields pin down a schema (ONNX, SavedModel ...) is that format
    whatever the name says, so an ONNX file named ``.pb`` is reported as a mismatch; a
    protobuf with no telling fields takes the protobuf format its name expects.
    """
    wanted = expected & _PROTOBUF
    kind = probes.protobuf_kind(head, size, wanted)
    if kind in _STRONG_PROTOBUF:
        return kind
    if kind is not None and wanted:
        fallback = sorted(wanted - _EVIDENCE_ONLY)
        return kind if kind in wanted else (fallback[0] if fallback else Format.PROTOBUF)
    if Format.DARKNET_WEIGHTS in expected and probes.looks_like_darknet_weights(head, size):
        return Format.DARKNET_WEIGHTS
    return None


def _by_name(base: str, head: bytes, expected: frozenset[Format] | None) -> Format:
    """Fallback when content has no signature: text files and name-only formats."""
    if not expected:
        return Format.UNKNOWN
    name_only = expected & NAME_ONLY
    if name_only:
        return next(iter(name_only))
    if expected == {Format.SAFETENSORS} and head[8:9] == b"{":
        return Format.SAFETENSORS  # a length that points past the end: broken, not unknown
    text_formats = expected & TEXT
    if Format.MEDIAPIPE_GRAPH_TEXT in text_formats and probes.looks_like_mediapipe_text(head):
        return Format.MEDIAPIPE_GRAPH_TEXT
    text_formats -= {Format.MEDIAPIPE_GRAPH_TEXT}
    if text_formats and (probes.looks_like_text(head) or not head):
        return _generic_text(text_formats)
    return Format.UNKNOWN


def _generic_text(text_formats: frozenset[Format]) -> Format:
    """The plainest of the text formats a name allows (``notes.txt`` is no LICENSE)."""
    if len(text_formats) == 1:
        return next(iter(text_formats))
    for plain in (Format.JSON, Format.TEXT):
        if plain in text_formats:
            return plain
    return sorted(text_formats)[0]
