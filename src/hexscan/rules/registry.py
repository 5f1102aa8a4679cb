"""All rules, in one explicit list; ids are checked for uniqueness at import time."""

from __future__ import annotations

from types import ModuleType

from hexscan.rules import (
    archive,
    caffe,
    coreml,
    darknet,
    discover,
    format,
    gguf,
    keras,
    metadata,
    onnx,
    payload,
    pickle,
    safetensors,
    supply,
    template,
    tensorflow,
    tfcheckpoint,
    tflite,
    torchpackage,
)
from hexscan.rules._rule import Rule

_FAMILIES: tuple[ModuleType, ...] = (format, archive, discover, pickle, tflite, coreml,
                                      caffe, darknet, payload, keras, tensorflow, onnx,
                                      safetensors, gguf, template, metadata, tfcheckpoint,
                                      supply, torchpackage)


def _collect(extra: tuple[Rule, ...] = ()) -> dict[str, Rule]:
    found: dict[str, Rule] = {}
    for module in _FAMILIES:
        for value in vars(module).values():
            if isinstance(value, Rule):
                _add(found, value)
    for rule in extra:
        _add(found, rule)
    return found


def _add(found: dict[str, Rule], rule: Rule) -> None:
    if rule.id in found and found[rule.id] is not rule:
        raise RuntimeError(f"duplicate rule id {rule.id}")
    found[rule.id] = rule


_RULES = _collect()


def all_rules(extra: tuple[Rule, ...] = ()) -> list[Rule]:
    """Every built-in rule (plus plugin rules), sorted by id."""
    rules = _collect(extra) if extra else _RULES
    return sorted(rules.values(), key=lambda r: r.id)


def get(rule_id: str, extra: tuple[Rule, ...] = ()) -> Rule:
    """The rule with this id (case-insensitive); KeyError when unknown."""
    rules = _collect(extra) if extra else _RULES
    return rules[rule_id.upper()]
