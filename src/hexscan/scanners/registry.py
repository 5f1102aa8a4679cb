"""The scanners hex runs: an explicit built-in list, plus plugins named in the config.

Plugins are ``module:attribute`` strings (config ``plugins``) or entry points in the
``hex.scanners`` group. Names and rule ids are checked for duplicates when loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points

from hexscan.errors import ConfigError
from hexscan.scanners.base import Scanner
from hexscan.scanners.caffe import CaffeScanner
from hexscan.scanners.coreml import CoreMLScanner
from hexscan.scanners.darknet import DarknetScanner
from hexscan.scanners.dependencies import DependenciesScanner
from hexscan.scanners.entropy import EntropyScanner
from hexscan.scanners.format import FormatScanner
from hexscan.scanners.gguf import GGUFScanner
from hexscan.scanners.keras import KerasScanner
from hexscan.scanners.metadata import MetadataScanner
from hexscan.scanners.modelcard import ModelCardScanner
from hexscan.scanners.onnx import OnnxScanner
from hexscan.scanners.pickle import PickleScanner
from hexscan.scanners.safetensors import SafetensorsScanner
from hexscan.scanners.template import TemplateScanner
from hexscan.scanners.tensorflow import TensorflowScanner
from hexscan.scanners.tfcheckpoint import TFCheckpointScanner
from hexscan.scanners.tflite import TFLiteScanner
from hexscan.scanners.torchpackage import TorchPackageScanner
from hexscan.scanners.torchscript import TorchScriptScanner

BUILTIN: tuple[type[Scanner], ...] = (FormatScanner, PickleScanner, OnnxScanner,
                                      TFLiteScanner, CoreMLScanner, CaffeScanner,
                                      DarknetScanner, EntropyScanner, TensorflowScanner,
                                      TorchScriptScanner, KerasScanner,
                                      SafetensorsScanner, GGUFScanner, TemplateScanner,
                                      MetadataScanner, TFCheckpointScanner,
                                      ModelCardScanner, DependenciesScanner,
                                      TorchPackageScanner)


def _plugin_classes(plugins: Iterable[str]) -> list[type[Scanner]]:
    found: list[type[Scanner]] = []
    for spec in plugins:
        module_name, _, attr = spec.partition(":")
        try:
            found.append(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(f"cannot load scanner plugin {spec!r}: {exc}") from exc
    found.extend(ep.load() for ep in entry_points(group="hex.scanners"))
    return found


def scanner_classes(plugins: Iterable[str] = ()) -> list[type[Scanner]]:
    """Built-in and plugin scanner classes, validated for unique names and rule ids."""
    classes = list(BUILTIN) + _plugin_classes(plugins)
    names: set[str] = set()
    rule_ids: set[str] = set()
    for cls in classes:
        if cls.name in names:
            raise ConfigError(f"two scanners are named {cls.name!r}")
        names.add(cls.name)
        for rule in cls.rules:
            if rule.id in rule_ids:
                raise ConfigError(f"rule {rule.id} is claimed by two scanners")
            rule_ids.add(rule.id)
    return classes


def load_scanners(skip: Iterable[str] = (), plugins: Iterable[str] = ()) -> list[Scanner]:
    """Instances of every scanner not skipped."""
    skipped = set(skip)
    return [cls() for cls in scanner_classes(plugins) if cls.name not in skipped]


def scanner_names(plugins: Iterable[str] = ()) -> list[str]:
    """The user-facing names ``--skip`` accepts."""
    return [cls.name for cls in scanner_classes(plugins)]
