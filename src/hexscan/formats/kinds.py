"""Format: every kind of file hex recognises, with the facts the pipeline needs about it.

This is the one home of format knowledge other than byte signatures (``signatures.py``):
whether a format is a container the pipeline walks, and whether loading it can run code.
"""

from __future__ import annotations

import enum


class Format(enum.StrEnum):
    """The identified format of an artifact; the value is what reports show."""

    # pickle family
    PICKLE = "pickle"
    PYTORCH_ZIP = "pytorch-zip"
    PYTORCH_LEGACY = "pytorch-legacy"
    TORCHSCRIPT = "torchscript"
    JOBLIB = "joblib"
    NUMPY = "numpy-npy"
    NUMPY_NPZ = "numpy-npz"
    TENSOR_DATA = "tensor-data"
    # other model formats
    SAFETENSORS = "safetensors"
    ONNX = "onnx"
    KERAS_H5 = "keras-h5"
    HDF5 = "hdf5"
    KERAS_V3 = "keras-v3"
    TF_SAVEDMODEL = "tf-savedmodel"
    TF_GRAPHDEF = "tf-graphdef"
    TF_CHECKPOINT_INDEX = "tf-checkpoint-index"
    TF_CHECKPOINT_DATA = "tf-checkpoint-data"
    TF_FINGERPRINT = "tf-fingerprint"
    TFLITE = "tflite"
    COREML = "coreml"
    COREML_MANIFEST = "coreml-package-manifest"
    CAFFE_MODEL = "caffe-model"
    CAFFE_PROTOTXT = "caffe-prototxt"
    DARKNET_WEIGHTS = "darknet-weights"
    DARKNET_CFG = "darknet-cfg"
    GGUF = "gguf"
    GGML = "ggml"
    SENTENCEPIECE = "sentencepiece"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"
    PROTOBUF = "protobuf"
    MEDIAPIPE_GRAPH = "mediapipe-graph"
    MEDIAPIPE_GRAPH_TEXT = "mediapipe-graph-text"
    # containers
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZLIB = "zlib"
    LZ4 = "lz4"
    SEVEN_ZIP = "7z"
    # text files around models
    MODEL_CARD = "model-card"
    MODEL_CONFIG = "model-config"
    TOKENIZER_CONFIG = "tokenizer-config"
    CHAT_TEMPLATE = "chat-template"
    REQUIREMENTS = "requirements"
    DEPENDENCY_MANIFEST = "dependency-manifest"
    LICENSE = "license"
    JSON = "json"
    TEXT = "text"
    PYTHON_SOURCE = "python-source"
    SHELL_SCRIPT = "shell-script"
    EXECUTABLE = "executable"
    UNKNOWN = "unknown"


#: Formats the pipeline opens and walks as virtual directories.
CONTAINERS: frozenset[Format] = frozenset({
    Format.ZIP, Format.TAR, Format.GZIP, Format.BZIP2, Format.XZ, Format.ZLIB, Format.LZ4,
    Format.SEVEN_ZIP, Format.PYTORCH_ZIP, Format.TORCHSCRIPT, Format.NUMPY_NPZ, Format.KERAS_V3,
})

#: Zip-based formats (their members are listed from the zip central directory).
ZIP_BASED: frozenset[Format] = frozenset({
    Format.ZIP, Format.PYTORCH_ZIP, Format.TORCHSCRIPT, Format.NUMPY_NPZ, Format.KERAS_V3,
})

#: Single-stream compressors: the container has one member, the decompressed stream.
COMPRESSED_STREAMS: frozenset[Format] = frozenset({
    Format.GZIP, Format.BZIP2, Format.XZ, Format.ZLIB, Format.LZ4,
})

#: Loading these can run code (directly, or through what they contain).
CODE_CAPABLE: frozenset[Format] = frozenset({
    Format.PICKLE, Format.PYTORCH_ZIP, Format.PYTORCH_LEGACY, Format.TORCHSCRIPT,
    Format.JOBLIB, Format.NUMPY, Format.NUMPY_NPZ, Format.KERAS_H5, Format.KERAS_V3,
    Format.TF_SAVEDMODEL, Format.TF_GRAPHDEF, Format.PYTHON_SOURCE, Format.SHELL_SCRIPT,
    Format.EXECUTABLE, Format.CAFFE_PROTOTXT, Format.CAFFE_MODEL,
})

#: Formats whose content is code that runs as soon as it is deserialised.
DESERIALISES_CODE: frozenset[Format] = frozenset({
    Format.PICKLE, Format.PYTORCH_LEGACY, Format.JOBLIB, Format.PYTORCH_ZIP,
    Format.TORCHSCRIPT, Format.EXECUTABLE,
})

#: Text formats (read as text by later scanners).
TEXT: frozenset[Format] = frozenset({
    Format.MODEL_CARD, Format.MODEL_CONFIG, Format.TOKENIZER_CONFIG, Format.CHAT_TEMPLATE,
    Format.REQUIREMENTS, Format.DEPENDENCY_MANIFEST, Format.LICENSE, Format.JSON,
    Format.PYTHON_SOURCE, Format.SHELL_SCRIPT, Format.CAFFE_PROTOTXT, Format.DARKNET_CFG,
    Format.COREML_MANIFEST, Format.MEDIAPIPE_GRAPH_TEXT, Format.TEXT,
})
