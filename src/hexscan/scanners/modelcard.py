"""The ``modelcard`` scanner: what a model says about itself, for the SBOM.

A Hugging Face model card (``README.md``) starts with YAML front matter that names the
licence, the base model, the training datasets and the task. None of that is a risk, so
this scanner has no rules: it records a ``model-card`` fact that the CycloneDX report turns
into a licence and a ``modelCard``. ``model_config_facts`` does the same for the fields of
a transformers ``config.json`` (the ``metadata`` scanner records them while it has the
parsed JSON).

Claims are recorded as claims: nothing here lowers or raises a finding. The front matter
is read from the first 64 KiB only and parsed with ``yaml.safe_load`` (plain data, no
tags that construct objects); a card that does not parse records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import yaml  # type: ignore[import-untyped, unused-ignore]

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import read_up_to
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext

#: How much of a card is read: front matter lives at the top, the prose after it is not used.
MAX_CARD_BYTES = 64 * 1024
#: Bounds on what one fact carries, whatever the card or config holds.
MAX_TEXT = 200
MAX_ITEMS = 50
#: Flow collections (``[`` / ``{``) nested deeper than this are not parsed: PyYAML's pure
#: Python parser recurses per level and takes seconds on a few thousand brackets.
MAX_FLOW_DEPTH = 32

#: Card keys recorded as one string, and as a list of strings.
_CARD_TEXT = ("pipeline_tag", "library_name", "license_name", "license_link", "model_name")
_CARD_LISTS = ("license", "base_model", "datasets", "language", "tags")
#: config.json keys recorded (``task`` also from ``pipeline_tag``).
_CONFIG_TEXT = ("model_type", "license")
_CONFIG_LISTS = ("architectures", "base_model", "datasets")


class ModelCardScanner:
    """Records the front matter of a model card as a ``model-card`` fact; finds nothing."""

    name: ClassVar[str] = "modelcard"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.MODEL_CARD})
    rules: ClassVar[tuple[Rule, ...]] = ()

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        with artifact.open() as stream:
            head = read_up_to(stream, MAX_CARD_BYTES)
        facts = card_facts(front_matter(head))
        if facts:
            ctx.record("model-card", **facts)
        yield from ()


def front_matter(head: bytes) -> Mapping[str, Any] | None:
    """The parsed YAML block between the leading ``---`` lines, or None.

    None when there is no block, it is not closed within ``head``, is not YAML, or is
    not a mapping. Never raises.
    """
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")),
               None)
    if end is None:
        return None
    block = "\n".join(lines[1:end])
    if _flow_depth(block) > MAX_FLOW_DEPTH:
        return None
    try:
        data = yaml.safe_load(block)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flow_depth(text: str) -> int:
    """The deepest bracket nesting in ``text`` (quotes ignored: an overestimate at worst)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth:
            depth -= 1
    return deepest


def card_facts(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The card fields the SBOM uses, as bounded strings and lists; {} when none is set."""
    if not meta:
        return {}
    facts: dict[str, Any] = {key: _text(meta.get(key)) for key in _CARD_TEXT}
    facts.update({key: _texts(meta.get(key)) for key in _CARD_LISTS})
    if facts["model_name"] is None:
        facts["model_name"] = _model_index_name(meta.get("model-index"))
    return _compact(facts)


def model_config_facts(config: Any) -> dict[str, Any]:
    """The model-card fields of a transformers-style ``config.json``; {} when it has none."""
    if not isinstance(config, dict):
        return {}
    facts: dict[str, Any] = {key: _text(config.get(key)) for key in _CONFIG_TEXT}
    facts.update({key: _texts(config.get(key)) for key in _CONFIG_LISTS})
    facts["task"] = _text(config.get("pipeline_tag")) or _text(config.get("task"))
    return _compact(facts)


def _compact(facts: dict[str, Any]) -> dict[str, Any]:
    """Every key, None or [] where unset; {} when nothing at all is set."""
    if not any(facts.values()):
        return {}
    return facts


def _text(value: Any) -> str | None:
    """A scalar as bounded text (YAML turns ``license: 2.0`` or dates into non-strings)."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text[:MAX_TEXT] or None


def _texts(value: Any) -> list[str]:
    """A scalar or a list of scalars as a bounded list of text."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items[:MAX_ITEMS]:
        text = _text(item)
        if text is not None and text not in out:
            out.append(text)
    return out


def _model_index_name(index: Any) -> str | None:
    """``model-index[0].name``: where the Hub's evaluation results name the model."""
    if isinstance(index, list) and index and isinstance(index[0], dict):
        return _text(index[0].get("name"))
    return None
