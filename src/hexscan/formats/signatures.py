"""Byte signatures and name hints, as data.

``MAGIC`` rows are tried in order on the first bytes of a file; the structural probes
(pickle without magic, protobuf, safetensors ...) live in ``probes.py``. ``EXTENSIONS``
says which formats a file name leads a user (or a loader) to expect: identification uses it
only when content says nothing, and to report a mismatch.
"""

from __future__ import annotations

import re

from hexscan.formats.kinds import Format as F

#: (offset, bytes, format): a fixed signature at a fixed offset.
MAGIC: tuple[tuple[int, bytes, F], ...] = (
    (0, b"GGUF", F.GGUF),
    (0, b"lmgg", F.GGML),
    (0, b"fmgg", F.GGML),
    (0, b"tjgg", F.GGML),
    (0, b"algg", F.GGML),
    (0, b"\x93NUMPY", F.NUMPY),
    (0, b"\x89HDF\r\n\x1a\n", F.HDF5),
    (512, b"\x89HDF\r\n\x1a\n", F.HDF5),
    (1024, b"\x89HDF\r\n\x1a\n", F.HDF5),
    (2048, b"\x89HDF\r\n\x1a\n", F.HDF5),
    (4, b"TFL3", F.TFLITE),
    (0, b"PK\x03\x04", F.ZIP),
    (0, b"PK\x05\x06", F.ZIP),
    (0, b"PK\x07\x08", F.ZIP),
    (0, b"\x1f\x8b", F.GZIP),
    (0, b"BZh", F.BZIP2),
    (0, b"\xfd7zXZ\x00", F.XZ),
    (0, b"7z\xbc\xaf\x27\x1c", F.SEVEN_ZIP),
    (0, b"\x04\x22\x4d\x18", F.LZ4),
    (257, b"ustar", F.TAR),
    (0, b"\x7fELF", F.EXECUTABLE),
    (0, b"\xfe\xed\xfa\xce", F.EXECUTABLE),
    (0, b"\xfe\xed\xfa\xcf", F.EXECUTABLE),
    (0, b"\xce\xfa\xed\xfe", F.EXECUTABLE),
    (0, b"\xcf\xfa\xed\xfe", F.EXECUTABLE),
    (0, b"\xca\xfe\xba\xbe", F.EXECUTABLE),
    (0, b"binf", F.XGBOOST),
    (0, b"tree\nversion=", F.LIGHTGBM),
)

#: The pickled magic number that starts a legacy (pre-1.6) torch.save file:
#: protocol 2, LONG1 of 10 bytes = 0x1950a86a20f9469cfc6c.
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

#: The second pickle of a legacy torch.save file: the protocol version 1001 (BININT2),
#: at protocol 2 as torch writes it, or 4+ with its FRAME header.
TORCH_LEGACY_PROTOCOL = re.compile(rb"\x80[\x02-\x05](?:\x95.{8})?M\xe9\x03\.", re.DOTALL)

#: Members of a torch < 0.4 tar checkpoint that torch.load unpickles (``legacy_load``).
TORCH_LEGACY_TAR_MEMBERS = frozenset({"pickle", "storages", "tensors"})

#: The legacy ``.lzma`` ("alone") header that joblib's 'lzma' compressor writes: the
#: default properties byte (lc=3, lp=0, pb=2), then a little-endian dictionary size.
LZMA_ALONE_PROPS = 0x5D

#: joblib < 0.10 "zfile": ``ZF``, then the length in hex padded to len(hex(2**64)) = 19.
ZFILE_PREFIX = b"ZF"
ZFILE_HEADER = len(ZFILE_PREFIX) + 19

#: A TF checkpoint .index file is a LevelDB table; it ends with this magic number.
TF_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")

#: Extensions (lower case, with dot) -> the formats a loader would accept under that name.
#: Generic names (.bin, .dat, .model, .data) are loaded by several frameworks and
#: therefore accept every format that those frameworks read.
_PICKLE_LIKE = frozenset({F.PICKLE, F.JOBLIB, F.PYTORCH_ZIP, F.PYTORCH_LEGACY, F.TORCHSCRIPT})
_COMPRESSED = frozenset({F.GZIP, F.BZIP2, F.XZ, F.ZLIB, F.LZ4})
_TORCH = _PICKLE_LIKE | {F.ZIP, F.TAR}
EXTENSIONS: dict[str, frozenset[F]] = {
    ".pkl": _PICKLE_LIKE | _COMPRESSED | {F.ZIP},
    ".pickle": _PICKLE_LIKE | _COMPRESSED,
    ".joblib": _PICKLE_LIKE | _COMPRESSED,
    ".jbl": _PICKLE_LIKE | _COMPRESSED,
    ".dill": _PICKLE_LIKE,
    ".pt": _TORCH,
    ".pth": _TORCH,
    ".ckpt": _TORCH,
    ".pyt": _TORCH,
    ".mar": frozenset({F.ZIP}),
    ".bin": _TORCH | {F.SAFETENSORS, F.GGML, F.GGUF, F.TENSOR_DATA, F.PROTOBUF},
    ".npy": frozenset({F.NUMPY}),
    ".npz": frozenset({F.NUMPY_NPZ, F.ZIP}),
    ".safetensors": frozenset({F.SAFETENSORS}),
    ".onnx": frozenset({F.ONNX}),
    ".h5": frozenset({F.KERAS_H5, F.HDF5}),
    ".hdf5": frozenset({F.KERAS_H5, F.HDF5}),
    ".keras": frozenset({F.KERAS_V3, F.KERAS_H5, F.HDF5}),
    ".pb": frozenset({F.TF_SAVEDMODEL, F.TF_GRAPHDEF, F.PROTOBUF}),
    ".tflite": frozenset({F.TFLITE}),
    ".binarypb": frozenset({F.MEDIAPIPE_GRAPH}),
    ".pbtxt": frozenset({F.MEDIAPIPE_GRAPH_TEXT, F.TEXT}),
    ".mlmodel": frozenset({F.COREML}),
    ".caffemodel": frozenset({F.CAFFE_MODEL}),
    ".prototxt": frozenset({F.CAFFE_PROTOTXT}),
    ".weights": frozenset({F.DARKNET_WEIGHTS}),
    ".cfg": frozenset({F.DARKNET_CFG, F.TEXT}),
    ".gguf": frozenset({F.GGUF}),
    ".ggml": frozenset({F.GGML}),
    ".model": frozenset({F.SENTENCEPIECE, F.XGBOOST, F.LIGHTGBM}) | _PICKLE_LIKE | _COMPRESSED,
    ".zip": frozenset({F.ZIP, F.PYTORCH_ZIP, F.TORCHSCRIPT, F.NUMPY_NPZ, F.KERAS_V3}),
    ".tar": frozenset({F.TAR}),
    ".tgz": frozenset({F.GZIP}),
    ".gz": frozenset({F.GZIP}),
    ".bz2": frozenset({F.BZIP2}),
    ".xz": frozenset({F.XZ}),
    ".lzma": frozenset({F.XZ}),
    ".z": frozenset({F.ZLIB}),
    ".lz4": frozenset({F.LZ4}),
    ".7z": frozenset({F.SEVEN_ZIP}),
    ".json": frozenset({F.JSON, F.MODEL_CONFIG, F.TOKENIZER_CONFIG, F.XGBOOST,
                        F.COREML_MANIFEST}),
    ".jinja": frozenset({F.CHAT_TEMPLATE}),
    ".jinja2": frozenset({F.CHAT_TEMPLATE}),
    ".j2": frozenset({F.CHAT_TEMPLATE}),
    ".template": frozenset({F.CHAT_TEMPLATE}),
    ".md": frozenset({F.MODEL_CARD}),
    ".txt": frozenset({F.TEXT, F.REQUIREMENTS, F.LICENSE, F.LIGHTGBM}),
    ".yaml": frozenset({F.TEXT}),
    ".yml": frozenset({F.TEXT}),
    ".toml": frozenset({F.TEXT}),
    ".csv": frozenset({F.TEXT}),
    ".tsv": frozenset({F.TEXT}),
    ".py": frozenset({F.PYTHON_SOURCE}),
    ".sh": frozenset({F.SHELL_SCRIPT}),
    ".png": frozenset(),
    ".jpg": frozenset(),
    ".jpeg": frozenset(),
}

#: Whole-name rules for the text files around models: (regex on the lower-case base name, format).
NAMES: tuple[tuple[re.Pattern[str], F], ...] = (
    (re.compile(r"saved_model\.pb"), F.TF_SAVEDMODEL),
    (re.compile(r"keras_metadata\.pb"), F.TF_SAVEDMODEL),
    (re.compile(r"fingerprint\.pb"), F.TF_FINGERPRINT),
    (re.compile(r".+\.data-\d{5}-of-\d{5}"), F.TF_CHECKPOINT_DATA),
    (re.compile(r".+\.index"), F.TF_CHECKPOINT_INDEX),
    (re.compile(r"readme(\.md|\.markdown)?"), F.MODEL_CARD),
    (re.compile(r"tokenizer_config\.json"), F.TOKENIZER_CONFIG),
    (re.compile(r"(config|generation_config|preprocessor_config|adapter_config)\.json"),
     F.MODEL_CONFIG),
    (re.compile(r"manifest\.json"), F.COREML_MANIFEST),
    (re.compile(r".*chat_template.*\.jinja2?"), F.CHAT_TEMPLATE),
    (re.compile(r"requirements[\w.-]*\.(txt|in)"), F.REQUIREMENTS),
    (re.compile(r"(pyproject\.toml|setup\.cfg|setup\.py|pipfile(\.lock)?|poetry\.lock|uv\.lock"
                r"|environment\.ya?ml|conda\.ya?ml)"), F.DEPENDENCY_MANIFEST),
    (re.compile(r"(licen[cs]e|copying|notice)([.-][\w.-]*)?"), F.LICENSE),
)

#: Formats recognised only by name because their content has no signature.
NAME_ONLY: frozenset[F] = frozenset({F.TF_CHECKPOINT_DATA})

#: PyTorch zip layout: ``<root>/data.pkl`` plus ``<root>/version`` or ``<root>/data/<n>``.
_TORCH_DATA_PKL = re.compile(r"^[^/]+/data\.pkl$")
#: The same layout without the root folder (hand-made checkpoints; torch.load rejects them,
#: other loaders and scanners treat them as PyTorch): needs a torch marker beside data.pkl.
_TORCH_FLAT_MARKERS = frozenset({"version", ".data/version", "byteorder"})
_TORCHSCRIPT_CODE = re.compile(r"^[^/]+/(code/|constants\.pkl$)")
TORCH_STORAGE = re.compile(r"^[^/]+/data/\d+$")


def classify_zip(names: list[str]) -> F:
    """Tell zip-based formats apart by their member layout."""
    lower = [n.lower() for n in names]
    if any(_TORCHSCRIPT_CODE.match(n) for n in names) and any(
            _TORCH_DATA_PKL.match(n) for n in names):
        return F.TORCHSCRIPT
    if any(_TORCH_DATA_PKL.match(n) for n in names):
        return F.PYTORCH_ZIP
    if "data.pkl" in names and _TORCH_FLAT_MARKERS & set(names):
        return F.PYTORCH_ZIP
    if "config.json" in lower and ("metadata.json" in lower or "model.weights.h5" in lower):
        return F.KERAS_V3
    files = [n for n in lower if not n.endswith("/")]
    if files and all(n.endswith(".npy") for n in files):
        return F.NUMPY_NPZ
    return F.ZIP
