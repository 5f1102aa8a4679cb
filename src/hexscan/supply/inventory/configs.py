"""Framework versions that model files record about the software that wrote them.

A config saved by ``transformers`` says which ``transformers`` wrote it; a Keras archive's
metadata.json says which Keras; an ONNX graph names its exporter. These are (PyPI package,
version) pairs OSV can match, and for a model repository without manifests they are often the
only ones. Only valid PEP 440 versions are kept: a config is attacker-written text, and an
unparseable version (``"2.2.4-tf"``, tf.keras' own numbering) names no PyPI release.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from packaging.version import InvalidVersion, Version

from hexscan.policy import lists
from hexscan.supply.records import Dependency

#: Top-level config keys -> PyPI package (config.json, generation_config.json,
#: model_index.json / scheduler_config.json, Keras metadata.json, SavedModel meta info).
CONFIG_KEYS: dict[str, str] = {
    "transformers_version": "transformers",
    "_diffusers_version": "diffusers",
    "keras_version": "keras",
    "tensorflow_version": "tensorflow",
}

#: config_sentence_transformers.json ``__version__`` keys -> PyPI package.
SENTENCE_TRANSFORMERS_KEYS: dict[str, str] = {
    "sentence_transformers": "sentence-transformers",
    "transformers": "transformers",
    "pytorch": "torch",
}

_MAX_VERSION_CHARS = 100


def framework_versions(name: str, obj: Any) -> list[Dependency]:
    """The framework versions a parsed JSON config records; [] for anything else."""
    if not isinstance(obj, dict):
        return []
    found: list[Dependency] = []
    for key, package in CONFIG_KEYS.items():
        dep = _dependency(package, obj.get(key), "model-config", {"file": name, "key": key})
        if dep is not None:
            found.append(dep)
    versions = obj.get("__version__")
    if isinstance(versions, dict):
        for key, package in SENTENCE_TRANSFORMERS_KEYS.items():
            dep = _dependency(package, versions.get(key), "model-config",
                              {"file": name, "key": f"__version__.{key}"})
            if dep is not None:
                found.append(dep)
    return found


@cache
def onnx_producers() -> dict[str, str]:
    """producer_name (lower case) -> PyPI package, from policy/ml_packages.toml."""
    table = lists.load("ml_packages")["onnx_producers"]
    return {str(k).lower(): str(v) for k, v in table.items()}


def framework_from_onnx(producer_name: str, producer_version: str) -> list[Dependency]:
    """The exporter an ONNX model names, as a Dependency; [] when unknown or unversioned."""
    if not isinstance(producer_name, str) or not isinstance(producer_version, str):
        return []
    package = onnx_producers().get(producer_name.strip().lower()[:200])
    if package is None:
        return []
    extra = {"producer_name": producer_name[:200], "producer_version": producer_version[:200]}
    words = producer_version.split()
    candidates = [producer_version.strip(), *words[:1]]
    for candidate in candidates:
        dep = _dependency(package, candidate, "onnx-producer", extra)
        if dep is not None:
            return [dep]
    return []


def _dependency(package: str, value: Any, source: str,
                extra: dict[str, Any]) -> Dependency | None:
    if not isinstance(value, str):
        return None
    version = value.strip()
    if not version or len(version) > _MAX_VERSION_CHARS:
        return None
    try:
        Version(version)
    except InvalidVersion:
        return None
    return Dependency("PyPI", package, version, spec=f"=={version}", source=source,
                      extra=extra)
