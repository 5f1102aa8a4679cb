"""Family: Keras 3 ``.keras`` files whose config runs code, saved by the real Keras.

A throw-away subprocess (KERAS_BACKEND=torch) saves the base models with keras 3 itself:
benign Sequential and Functional models, and Lambda layers whose Python code is obfuscated
in many ways (exec of base64/rot13/bytes, getattr(__import__(...)), chr-joined names,
compile+eval, subclass walks, output_shape lambdas, nested models, wrappers, and the legacy
HDF5 format, whose loader had its own safe_mode handling, CVE-2025-9905). It also
returns ``func_dump`` of payload functions, which this module writes into the config of the
benign model where keras deserialises a ``__lambda__`` object: layer activations and
initializers, in the ``value`` form ``serialize_keras_object`` writes and in the ``code``
form of the Lambda layer. More edits name foreign modules, builtins functions and the
safe-mode switch. Every variant is loaded with ``safe_mode=False`` (``keras``) and again
with the default ``safe_mode=True`` (``keras-safe``): a variant that fires there is the most
severe kind. Building a model is not loading one: nothing here deserialises a config.
"""

from __future__ import annotations

import base64
import codecs
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "keras-configs"
_FILE = "model.keras"

_BUILDER = r"""
import json, os, sys, warnings
os.environ["KERAS_BACKEND"] = "torch"
import keras
from keras.src.utils.python_utils import func_dump
out, spec = sys.argv[1], json.loads(sys.stdin.read())
warnings.simplefilter("ignore")
func_load = None
def save(model, name):
    model.save(os.path.join(out, name + ".keras"))
seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                        keras.layers.Dropout(0.1), keras.layers.Dense(2)])
save(seq, "benign_seq")
inp = keras.Input((8, 8, 3))
x = keras.layers.Conv2D(4, 3, padding="same")(inp)
x = keras.layers.BatchNormalization()(x)
x = keras.layers.GlobalAveragePooling2D()(x)
func = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
func.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
save(func, "benign_functional")
rnn = keras.Sequential([keras.Input((5, 4)), keras.layers.LSTM(3, return_sequences=True),
                        keras.layers.LayerNormalization(), keras.layers.GRU(2)])
save(rnn, "benign_rnn")
named = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(keras.ops.tanh),
                          keras.layers.Activation("gelu")])
save(named, "benign_named_function")
for name, src in spec["lambdas"].items():
    fn = eval(src)
    kind = name.removeprefix("safe_")
    if kind == "output_shape":
        layer = keras.layers.Lambda(lambda t: t, output_shape=fn)
        model = keras.Sequential([keras.Input((4,)), layer])
    elif kind == "nested":
        inner = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(fn)])
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), inner])
    elif kind == "time_distributed":
        model = keras.Sequential([keras.Input((2, 4)),
                                  keras.layers.TimeDistributed(keras.layers.Lambda(fn))])
    else:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(fn)])
    if kind.startswith("h5_"):  # the legacy HDF5 format keras 3 still reads
        model.save(os.path.join(out, "lambda_" + name + ".h5"))
    else:
        save(model, "lambda_" + name)
dumps = {name: func_dump(eval(src)) for name, src in spec["functions"].items()}
json.dump(dumps, open(os.path.join(out, "dumps.json"), "w"))
"""


def _lambda_sources(code: str) -> dict[str, str]:
    """Lambda source per obfuscation, each running ``code`` then returning its input."""
    b64 = base64.b64encode(code.encode()).decode()
    rot = codecs.encode(code, "rot13")
    raw = list(code.encode())

    def chars(text: str) -> str:
        return f"''.join(map(chr, {[ord(c) for c in text]}))"

    run = f"exec({code!r})"
    bodies = {
        "exec_plain": run,
        "getattr_import": f"getattr(__import__('builtins'), 'exec')({code!r})",
        "base64": f"exec(__import__('base64').b64decode({b64!r}).decode())",
        "rot13": f"exec(__import__('codecs').decode({rot!r}, 'rot13'))",
        "bytes_list": f"exec(bytes({raw}).decode())",
        "eval_compile": f"eval(compile({code!r}, 's', 'exec'))",
        "chr_names": f"getattr(__import__({chars('builtins')}), {chars('exec')})({code!r})",
        "vars_builtins": f"vars(__import__('builtins'))['ex' + 'ec']({code!r})",
        "direct_call": code,
        "subclass_walk": (
            "[c for c in ().__class__.__base__.__subclasses__() "
            f"if c.__name__ == 'catch_warnings'][0]()._module.__builtins__['exec']({code!r})"),
        "output_shape": run,
        "nested": run,
        "time_distributed": run,
        "h5_exec_plain": run,
        "h5_base64": f"exec(__import__('base64').b64decode({b64!r}).decode())",
    }
    # ``func_load`` is None in the builder (saving builds the model, which calls the lambda
    # on symbolic tensors) and keras' own func_load where keras rebuilds the function.
    return {name: f"lambda x: (func_load and {body}, x)[1]" for name, body in bodies.items()}


def _build(lambdas: dict[str, str], functions: dict[str, str]) -> dict[str, Any]:
    """Save the models with the real keras in a subprocess; name -> bytes, and the dumps."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONDONTWRITEBYTECODE": "1"}
        # Saving only: the builder never loads a model.
        proc = subprocess.run([sys.executable, "-c", _BUILDER, out],  # noqa: S603
                              input=json.dumps({"lambdas": lambdas, "functions": functions}),
                              capture_output=True, text=True, timeout=600, env=env,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"keras builder failed: {proc.stderr[-2000:]}")
        files = {p.stem: p.read_bytes() for p in Path(out).iterdir()
                 if p.suffix in (".keras", ".h5")}
        dumps = json.loads((Path(out) / "dumps.json").read_text())
    return {"files": files, "dumps": dumps}


def _edit(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The .keras zip with its config.json changed (other members copied as they are)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    config = json.loads(src.read("config.json"))
    change(config)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = json.dumps(config).encode() if info.filename == "config.json" \
                else src.read(info)
            dst.writestr(info, body)
    return out.getvalue()


def _dense(config: dict[str, Any], index: int = 0) -> dict[str, Any]:
    dense = [layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"]
    return dense[index]["config"]  # type: ignore[no-any-return]


_EDITS = ("activation_lambda_value", "activation_lambda_list", "activation_lambda_code",
          "kernel_initializer_lambda", "bias_initializer_lambda", "second_dense_activation",
          "builtins_exec_activation", "os_system_activation", "enable_unsafe_activation",
          "enable_unsafe_src", "foreign_module_class", "foreign_module_function")


def _config_edit(edit: str, act: Any, init: Any) -> Callable[[dict[str, Any]], None]:
    """One edit of the benign Sequential's config (a function changing it in place);
    ``act``/``init`` are func_dump tuples of an activation / initializer payload."""

    def value_form(dump: Any) -> dict[str, Any]:
        return {"class_name": "__lambda__", "config": {"value": dump[0]}}

    def set_key(key: str, value: Any, index: int = 0) -> Callable[[dict[str, Any]], None]:
        return lambda c: _dense(c, index).__setitem__(key, copy.deepcopy(value))

    def ref(module: str, name: str, class_name: str = "function") -> dict[str, Any]:
        return {"module": module, "class_name": class_name,
                "config": name if class_name == "function" else {},
                "registered_name": name if class_name == "function" else None}

    edits = {
        "activation_lambda_value": lambda: set_key("activation", value_form(act)),
        "activation_lambda_list": lambda: set_key("activation", {
            "class_name": "__lambda__", "config": {"value": list(act)}}),
        "activation_lambda_code": lambda: set_key("activation", {
            "class_name": "__lambda__", "config": {"code": act[0], "defaults": None,
                                                   "closure": None}}),
        "kernel_initializer_lambda": lambda: set_key("kernel_initializer", value_form(init)),
        "bias_initializer_lambda": lambda: set_key("bias_initializer", value_form(init)),
        "second_dense_activation": lambda: set_key("activation", value_form(act), 1),
        "builtins_exec_activation": lambda: set_key("activation", ref("builtins", "exec")),
        "os_system_activation": lambda: set_key("activation", ref("os", "system")),
        "enable_unsafe_activation": lambda: set_key("activation", ref(
            "keras.config", "enable_unsafe_deserialization")),
        "enable_unsafe_src": lambda: set_key("activation", ref(
            "keras.src.saving.serialization_lib", "enable_unsafe_deserialization")),
        "foreign_module_class": lambda: set_key("kernel_initializer", ref(
            "canary_models.initializers", "Gate", "Gate")),
        "foreign_module_function": lambda: set_key("activation", ref(
            "canary_models.ops", "gate")),
    }
    return edits[edit]()


#: Loader per variant prefix: safe_mode=False, and keras' default safe_mode=True.
_MODES = {"": "keras", "safe_": "keras-safe"}


def variants(payload: PayloadFor) -> Iterator[Variant]:
    lambdas: dict[str, str] = {}
    functions: dict[str, str] = {}
    for prefix in _MODES:
        for name in _lambda_sources(""):
            code = payload(key_of(FAMILY, f"{prefix}lambda_{name}"))
            lambdas[f"{prefix}{name}"] = _lambda_sources(code)[name]
        for edit in _EDITS:
            code = payload(key_of(FAMILY, f"{prefix}edit_{edit}"))
            functions[f"{prefix}{edit}:act"] = f"lambda *a, **k: (exec({code!r}), a[0])[1]"
            functions[f"{prefix}{edit}:init"] = f"lambda *a, **k: exec({code!r})"
    built = _build(lambdas, functions)
    files: dict[str, bytes] = built["files"]
    dumps: dict[str, Any] = built["dumps"]
    for prefix, loader in _MODES.items():
        for name, data in sorted(files.items()):
            if name.startswith("benign_"):
                yield Variant(FAMILY, f"{prefix}{name}", _FILE, data, loader, malicious=False)
            elif name.startswith("lambda_" + prefix) if prefix else \
                    not name.startswith("lambda_safe_"):
                stem = name.removeprefix("lambda_").removeprefix(prefix)
                filename = "model.h5" if stem.startswith("h5_") else _FILE
                yield Variant(FAMILY, f"{prefix}lambda_{stem}", filename, data, loader)
        for edit in _EDITS:
            change = _config_edit(edit, dumps[f"{prefix}{edit}:act"],
                                  dumps[f"{prefix}{edit}:init"])
            yield Variant(FAMILY, f"{prefix}edit_{edit}", _FILE,
                          _edit(files["benign_seq"], change), loader)
