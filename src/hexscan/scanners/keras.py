"""The ``keras`` scanner: Lambda code, module references and safe_mode bypasses in configs.

It sees every place a Keras config lives: H5 root attributes (``model_config``,
``training_config``; any HDF5 file, because a large config can push the attribute names out
of the identification head), the ``config.json`` member of a ``.keras`` zip, standalone
``model.to_json()`` files (a JSON whose top level is a Keras object), and the per-layer
metadata of a TF SavedModel's ``keras_metadata.pb``. parsers/keras turns each into JSON
values and Lambda code into facts; policy/keras.toml says what is acceptable.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.keras import (
    MAX_CONFIG_BYTES,
    LambdaCode,
    decode_lambda,
    iter_keras_metadata,
    iter_objects,
    parse_json,
    read_h5_attrs,
)
from hexscan.rules import keras as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext
from hexscan.supply.inventory import framework_versions

_KERAS_METADATA = "keras_metadata.pb"
_CONFIG_FORMATS = frozenset({Format.MODEL_CONFIG, Format.JSON})
#: Findings reported per file before the rest are only counted.
_MAX_FINDINGS = 100


@dataclass(frozen=True)
class KerasPolicy:
    allowed_modules: tuple[str, ...]
    allowed_classes: frozenset[str]
    dangerous_modules: tuple[str, ...]
    dangerous_builtins: frozenset[str]
    gadgets: frozenset[str]
    gadget_finals: frozenset[str]
    tfop_prefixes: tuple[str, ...]
    lambda_names: frozenset[str]

    def allowed_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.allowed_modules)

    def dangerous_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.dangerous_modules)


@lru_cache(maxsize=1)
def load_policy() -> KerasPolicy:
    data: dict[str, Any] = tomllib.loads(resources.files("hexscan.policy").joinpath(
        "keras.toml").read_text(encoding="utf-8"))
    return KerasPolicy(
        tuple(data["allowed"]["modules"]), frozenset(data["allowed"]["class_names"]),
        tuple(data["dangerous"]["modules"]), frozenset(data["dangerous"]["builtins"]),
        frozenset(data["gadgets"]["names"]), frozenset(data["gadgets"]["final_names"]),
        tuple(data["tfoplambda"]["dangerous_prefixes"]),
        frozenset(data["lambda"]["dangerous_names"]))


class KerasScanner:
    """Judges Keras configs wherever they are stored."""

    name: ClassVar[str] = "keras"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({
        Format.KERAS_H5, Format.HDF5, Format.MODEL_CONFIG, Format.JSON, Format.TF_SAVEDMODEL,
        Format.PROTOBUF})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.LAMBDA_CODE, rules.DANGEROUS_REFERENCE, rules.CUSTOM_OBJECT,
        rules.SAFE_MODE_BYPASS, rules.REGISTRATION_MISMATCH)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        findings = list(self._configs(artifact, ctx))
        yield from findings[:_MAX_FINDINGS]

    def _configs(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        fmt = ctx.format
        if fmt in (Format.KERAS_H5, Format.HDF5):
            yield from self._h5(artifact, fmt, ctx)
        elif fmt in _CONFIG_FORMATS:
            yield from self._json(artifact)
        elif artifact.basename.lower() == _KERAS_METADATA:
            with artifact.open() as stream:
                for path, meta in iter_keras_metadata(stream, artifact.size):
                    tree = parse_json(meta, f"keras_metadata.pb node {path}")
                    yield from judge_config(tree, f"keras_metadata:{path}")

    def _h5(self, artifact: Artifact, fmt: Format, ctx: ScanContext) -> Iterator[Finding]:
        if artifact.parent_format is Format.KERAS_V3 and fmt is Format.HDF5:
            return  # model.weights.h5 of a .keras zip: weights only, config is config.json
        with artifact.open() as stream:
            try:
                h5 = read_h5_attrs(stream)
            except ParseError:
                if fmt is Format.KERAS_H5:
                    raise
                return  # a plain HDF5 file h5py cannot read is not a Keras model
        for attr in ("model_config", "training_config"):
            if attr in h5.attrs:
                tree = parse_json(h5.attrs[attr], f"H5 attribute {attr}")
                yield from judge_config(tree, attr)
        # the Keras version that wrote the file, for the supply-chain matcher
        for dep in framework_versions(artifact.basename,
                                      {"keras_version": h5.attrs.get("keras_version")}):
            ctx.record("dependency", **asdict(dep))

    def _json(self, artifact: Artifact) -> Iterator[Finding]:
        in_keras_zip = artifact.parent_format is Format.KERAS_V3 and \
            artifact.basename.lower() == "config.json"
        head = artifact.head()
        if not in_keras_zip and b'"class_name"' not in head:
            return
        if artifact.size is not None and artifact.size > MAX_CONFIG_BYTES:
            if in_keras_zip:
                raise LimitExceeded("max_config_size",
                                    f"config.json is larger than {MAX_CONFIG_BYTES} bytes")
            return
        with artifact.open() as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
        try:
            tree = parse_json(data, artifact.basename)
        except (ParseError, LimitExceeded):
            if in_keras_zip:
                raise
            return
        if in_keras_zip or _looks_like_keras(tree):
            yield from judge_config(tree, "config.json" if in_keras_zip else artifact.basename)


def _looks_like_keras(tree: Any) -> bool:
    """A standalone JSON that Keras would deserialise: a top-level serialized object."""
    if not isinstance(tree, dict) or not isinstance(tree.get("class_name"), str):
        return False
    module = tree.get("module")
    return "config" in tree and (isinstance(module, str) or "keras_version" in tree
                                 or "backend" in tree or tree["class_name"] in
                                 ("Sequential", "Functional", "Model"))


# ------------------------------------------------------------------------ judging


def judge_config(tree: Any, where: str) -> Iterator[Finding]:
    """Every finding for one parsed Keras config."""
    policy = load_policy()
    seen: set[str] = set()
    for path, obj in iter_objects(tree):
        for finding in _object(obj, f"{where}{path}", policy):
            if finding.key not in seen:
                seen.add(finding.key)
                yield finding


def _object(obj: dict[str, Any], path: str, policy: KerasPolicy) -> Iterator[Finding]:
    class_name = obj.get("class_name")
    if not isinstance(class_name, str):
        return
    module = obj.get("module")
    if class_name == "__lambda__":
        yield _lambda_object(obj.get("config"), path, policy)
        return
    if class_name == "Lambda":
        yield from _lambda_layer(obj, path, policy)
    if class_name in ("TFOpLambda", "SlicingOpLambda"):
        yield from _tfop(obj, path, policy)
    if isinstance(module, str):
        target = obj.get("config") if class_name == "function" else class_name
        if isinstance(target, str):
            yield from _reference(module, target, path, policy)
    else:
        yield from _bare_class(class_name, path, policy)
    yield from _registered(obj, class_name, module, path, policy)


def _lambda_object(config: Any, path: str, policy: KerasPolicy) -> Finding:
    """A ``__lambda__`` object. The Lambda layer reads ``config.code``;
    ``deserialize_keras_object`` (activations, initializers, any nested object) reads
    ``config.value``; ``func_load`` takes a string or a ``[code, defaults, closure]`` list."""
    code: Any = None
    if isinstance(config, dict):
        for key in ("code", "value"):
            code = config.get(key)
            if isinstance(code, (list, tuple)) and code:
                code = code[0]
            if isinstance(code, str):
                break
    if not isinstance(code, str):
        return _lambda(LambdaCode("unreadable", error="the lambda object holds no code string "
                                  "hex can read"), path, policy)
    return _lambda(decode_lambda(code), path, policy)


def _lambda_layer(obj: dict[str, Any], path: str, policy: KerasPolicy) -> Iterator[Finding]:
    config = obj.get("config")
    if not isinstance(config, dict):
        return
    for key in ("function", "output_shape"):
        value = config.get(key)
        kind = config.get(f"{key}_type")
        if isinstance(value, list) and value and isinstance(value[0], str):
            yield _lambda(decode_lambda(value[0]), f"{path}/config/{key}", policy)
        elif isinstance(value, str) and (kind == "lambda" or (key == "function" and not kind)):
            if kind == "lambda" or not _is_identifier_path(value):
                yield _lambda(decode_lambda(value), f"{path}/config/{key}", policy)
            else:
                yield from _reference(str(config.get(f"{key}_module") or config.get("module")
                                          or "?"), value, f"{path}/config/{key}", policy)
        elif isinstance(value, str) and kind == "function":
            module = config.get("module") if key == "function" else config.get(
                "output_shape_module")
            yield from _reference(str(module or "?"), value, f"{path}/config/{key}", policy)


def _is_identifier_path(value: str) -> bool:
    return bool(value) and all(p.isidentifier() for p in value.split("."))


def _lambda(code: LambdaCode, path: str, policy: KerasPolicy) -> Finding:
    used = set(code.names) | set(code.strings)
    bad = sorted(n for n in used if n in policy.lambda_names or
                 any(n.startswith(m + ".") for m in ("os", "subprocess", "builtins")))
    evidence: dict[str, Any] = {"path": path, "kind": code.kind,
                                "names": list(code.names[:64]),
                                "strings": [s[:200] for s in code.strings[:32]]}
    if code.layout:
        evidence["bytecode_layout"] = code.layout
    if code.kind == "unreadable":
        evidence["error"] = code.error
        return Finding(rules.LAMBDA_CODE,
                       f"Lambda function at {path} cannot be read ({code.error}); it still runs "
                       "when the model loads", key=f"lambda:{path}", severity=Severity.HIGH,
                       evidence=evidence)
    form = "marshalled bytecode" if code.kind == "bytecode" else "source text"
    if bad:
        evidence["dangerous"] = bad
        return Finding(rules.LAMBDA_CODE,
                       f"Lambda function at {path} ({form}) uses {', '.join(bad[:8])}",
                       key=f"lambda:{path}", severity=Severity.CRITICAL, confidence=0.95,
                       evidence=evidence)
    shown = ", ".join(code.names[:8]) or "no global names"
    # Marshalled bytecode is code whatever names it shows (a payload hides them in strings
    # it decodes at run time); source text is never compiled by keras' func_load.
    severity = Severity.HIGH if code.kind == "bytecode" else Severity.MEDIUM
    return Finding(rules.LAMBDA_CODE,
                   f"Lambda function at {path} ({form}) runs code on load; it uses {shown}",
                   key=f"lambda:{path}", severity=severity, confidence=0.8,
                   evidence=evidence)


def _reference(module: str, name: str, path: str, policy: KerasPolicy) -> Iterator[Finding]:
    """Judge ``module.name`` named by a config object."""
    fq = f"{module}.{name}"
    root = module.split(".")[0]
    evidence = {"path": path, "module": module, "name": name}
    if policy.dangerous_module(module) or (
            root in ("builtins", "__builtin__") and name in policy.dangerous_builtins):
        yield Finding(rules.DANGEROUS_REFERENCE,
                      f"{path} names {fq}, which loading the model imports and calls",
                      key=f"ref:{fq}", evidence=evidence)
        return
    if fq in policy.gadgets or (name.split(".")[-1] in policy.gadget_finals and (
            policy.allowed_module(module) or root in ("tensorflow", "tf"))):
        yield Finding(rules.SAFE_MODE_BYPASS,
                      f"{path} names {fq}, a known Keras safe_mode bypass gadget",
                      key=f"gadget:{fq}", evidence=evidence)
        return
    if policy.allowed_module(module):
        return
    if root in ("builtins", "__builtin__"):
        # keras writes module "builtins" for its own functions saved by name ("relu");
        # any other builtin (print, getattr via registered names ...) is resolved by
        # importing builtins in keras before 3.9.
        known = name in policy.allowed_classes
        yield Finding(rules.CUSTOM_OBJECT, f"{path} names the Python builtin {fq}",
                      key=f"custom:{fq}", severity=None if known else Severity.HIGH,
                      evidence=evidence)
        return
    # Keras 3 before 3.9 imports any module a config names (importlib.import_module), even
    # in safe mode; later versions refuse modules outside keras/keras_hub/keras_cv/keras_nlp.
    yield Finding(rules.CUSTOM_OBJECT,
                  f"{path} names {fq}: loading imports that module's code",
                  key=f"custom:{fq}", severity=Severity.HIGH, evidence=evidence)


def _bare_class(class_name: str, path: str, policy: KerasPolicy) -> Iterator[Finding]:
    """A Keras 2 style class_name without a module."""
    if class_name in policy.gadget_finals:
        yield Finding(rules.SAFE_MODE_BYPASS,
                      f"{path} builds {class_name}, a known Keras safe_mode bypass gadget",
                      key=f"gadget:{class_name}", evidence={"path": path, "name": class_name})
        return
    if class_name in policy.allowed_classes or class_name == "function":
        return
    package, sep, short = class_name.rpartition(">")
    if package == "Custom" and short in policy.allowed_classes:
        return  # tf.keras 2.11+ registers its own optimizers as "Custom>Adam"
    if sep and (policy.dangerous_module(package.replace(">", ".")) or
                package in ("builtins", "__builtin__") and short in policy.dangerous_builtins):
        yield Finding(rules.DANGEROUS_REFERENCE,
                      f"{path} names the registered object {class_name}",
                      key=f"ref:{class_name}", evidence={"path": path, "name": class_name})
        return
    yield Finding(rules.CUSTOM_OBJECT,
                  f"{path} builds {class_name}, which is not a Keras built-in: loading needs "
                  "custom code", key=f"custom:{class_name}",
                  evidence={"path": path, "name": class_name})


def _registered(obj: dict[str, Any], class_name: str, module: Any, path: str,
                policy: KerasPolicy) -> Iterator[Finding]:
    reg = obj.get("registered_name")
    if not isinstance(reg, str) or reg in (class_name, "function"):
        return
    package, sep, short = reg.rpartition(">")
    evidence = {"path": path, "registered_name": reg, "class_name": class_name,
                "module": module}
    if sep and (policy.dangerous_module(package) or (
            package in ("builtins", "__builtin__") and short in policy.dangerous_builtins)):
        yield Finding(rules.DANGEROUS_REFERENCE,
                      f"{path} registers itself as {reg}, which names a dangerous callable",
                      key=f"ref:{reg}", evidence=evidence)
        return
    if short in policy.gadget_finals:
        yield Finding(rules.SAFE_MODE_BYPASS,
                      f"{path} registers itself as {reg}, a known safe_mode bypass gadget",
                      key=f"gadget:{reg}", evidence=evidence)
        return
    if (sep and short == class_name) or (not sep and reg == class_name):
        return
    yield Finding(rules.REGISTRATION_MISMATCH,
                  f"{path} shows class_name {class_name!r} but registered_name {reg!r} decides "
                  "what Keras builds", key=f"registered:{path}", evidence=evidence)


def _tfop(obj: dict[str, Any], path: str, policy: KerasPolicy) -> Iterator[Finding]:
    config = obj.get("config")
    function = config.get("function") if isinstance(config, dict) else None
    if not isinstance(function, str):
        return
    name = function.removeprefix("tf.")
    if name.startswith(policy.tfop_prefixes):
        yield Finding(rules.SAFE_MODE_BYPASS,
                      f"{path} is a TFOpLambda calling tf.{name}, which reaches files or Python",
                      key=f"tfop:{path}", severity=Severity.HIGH,
                      evidence={"path": path, "function": function})
