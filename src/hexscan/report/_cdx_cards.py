"""Model cards for the CycloneDX ML-BOM: licences, datasets, base models and ``modelCard``.

The facts come from the ``modelcard`` scanner (README front matter) and the ``metadata``
scanner (``config.json``). A model takes the card and the config nearest to it: the same
directory (or container directory), else the closest one above.

cyclonedx-python-lib has no model-card class (the property is a TODO in its component
model), so the card is built here as plain JSON in the 1.6 schema's shape and added to the
serialised BOM by bom-ref; the tests run the result through the strict 1.6 validator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception.factory import InvalidSpdxLicenseException
from cyclonedx.model import Property
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

from hexscan.discover.artifact import MEMBER_SEP
from hexscan.report._cdx_supply import make_purl, safe_uri

License = LicenseExpression | DisjunctiveLicense

#: What Hugging Face pipeline tags take in and give out (modelCard inputs / outputs).
TASK_IO: dict[str, tuple[str, str]] = {
    "text-generation": ("text", "text"),
    "text2text-generation": ("text", "text"),
    "summarization": ("text", "text"),
    "translation": ("text", "text"),
    "question-answering": ("text", "text"),
    "fill-mask": ("text", "text"),
    "conversational": ("text", "text"),
    "text-classification": ("text", "label"),
    "token-classification": ("text", "label"),
    "zero-shot-classification": ("text", "label"),
    "feature-extraction": ("text", "embedding"),
    "sentence-similarity": ("text", "score"),
    "image-classification": ("image", "label"),
    "object-detection": ("image", "bounding-boxes"),
    "image-segmentation": ("image", "mask"),
    "image-to-text": ("image", "text"),
    "text-to-image": ("text", "image"),
    "automatic-speech-recognition": ("audio", "text"),
    "text-to-speech": ("text", "audio"),
    "audio-classification": ("audio", "label"),
}


@dataclass
class CardInfo:
    """What is known about one model from its card and config."""

    card: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    card_path: str | None = None
    config_path: str | None = None

    def first(self, key: str, config_key: str | None = None) -> str | None:
        """A single value: the card's, else the config's."""
        for source, name in ((self.card, key), (self.config, config_key or key)):
            value = source.get(name)
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, str) and value:
                return value
        return None

    def many(self, key: str) -> list[str]:
        """A list value from the card, else from the config."""
        for source in (self.card, self.config):
            value = source.get(key)
            if isinstance(value, list) and value:
                return [v for v in value if isinstance(v, str) and v]
            if isinstance(value, str) and value:
                return [value]
        return []


def vdir(vpath: str) -> str:
    """The virtual directory of a path that may run into containers ("a.zip!/x/y" -> "a.zip!/x")."""
    return vpath.rsplit("/", 1)[0] if "/" in vpath else ""


class CardIndex:
    """model-card and model-config facts by virtual directory, for the nearest-card lookup."""

    def __init__(self) -> None:
        self._cards: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._configs: dict[str, tuple[str, Mapping[str, Any]]] = {}

    def add(self, kind: str, vpath: str, data: Mapping[str, Any]) -> None:
        table = self._cards if kind == "model-card" else self._configs
        table.setdefault(vdir(vpath), (vpath, data))  # facts come sorted: first one wins

    def lookup(self, vpath: str) -> CardInfo | None:
        info = CardInfo()
        card = _nearest(self._cards, vpath)
        config = _nearest(self._configs, vpath)
        if card is None and config is None:
            return None
        if card is not None:
            info.card_path, info.card = card
        if config is not None:
            info.config_path, info.config = config
        return info


def _nearest(table: dict[str, tuple[str, Mapping[str, Any]]],
             vpath: str) -> tuple[str, Mapping[str, Any]] | None:
    directory = vpath
    while directory:
        directory = vdir(directory)
        if directory in table:
            return table[directory]
    return None


def licences(info: CardInfo) -> list[License]:
    """The declared licence(s): SPDX ids where they are ids, named licences otherwise."""
    values = info.many("license")
    if not values:
        return []
    factory = LicenseFactory()
    named = info.card.get("license_name")
    named = named if isinstance(named, str) and named else None
    link = info.card.get("license_link")
    url = safe_uri(link) if isinstance(link, str) and link.startswith(("http://", "https://")) \
        else None
    if len(values) == 1 and values[0].lower() != "other":
        return [factory.make_from_string(values[0])]
    out: list[License] = []
    for value in values:
        if value.lower() == "other":
            out.append(factory.make_with_name(named or "other", url=url))
            continue
        try:
            out.append(factory.make_with_id(value))
        except InvalidSpdxLicenseException:
            out.append(factory.make_with_name(value))
    return out


def dataset_ref(name: str) -> str:
    return f"hex:dataset:{name}"


def datasets(info: CardInfo) -> list[str]:
    return info.many("datasets")


def dataset_component(name: str) -> Component:
    """A ``data`` component for a training dataset the card names (by name only)."""
    return Component(name=name, type=ComponentType.DATA, bom_ref=dataset_ref(name),
                     properties=[Property(name="hex:source", value="model-card")])


def pedigree(info: CardInfo, model_ref: str) -> Pedigree | None:
    """The base model(s) the card says this model derives from, as pedigree ancestors."""
    ancestors = []
    for base in info.many("base_model"):
        name = base.rpartition("/")[2]
        purl = make_purl("huggingface", base, None) \
            if name and base.count("/") <= 1 and " " not in base else None
        ancestors.append(Component(name=base, type=ComponentType.MACHINE_LEARNING_MODEL,
                                   bom_ref=f"{model_ref}#base:{base}", purl=purl))
    return Pedigree(ancestors=ancestors) if ancestors else None


def model_card(info: CardInfo, model_ref: str) -> dict[str, Any]:
    """The ``modelCard`` JSON of one model (1.6 schema); quantitative analysis omitted."""
    params: dict[str, Any] = {}
    task = info.first("pipeline_tag", "task")
    if task:
        params["task"] = task
    family = info.first("model_type")
    if family:
        params["architectureFamily"] = family
    architecture = info.first("architectures")
    if architecture:
        params["modelArchitecture"] = architecture
    sets = datasets(info)
    if sets:
        params["datasets"] = [{"ref": dataset_ref(name)} for name in sets]
    if task in TASK_IO:
        given, produced = TASK_IO[task]
        params["inputs"] = [{"format": given}]
        params["outputs"] = [{"format": produced}]
    card: dict[str, Any] = {"bom-ref": f"{model_ref}#modelcard"}
    if params:
        card["modelParameters"] = params
    properties = _card_properties(info)
    if properties:
        card["properties"] = properties
    return card


def _card_properties(info: CardInfo) -> list[dict[str, str]]:
    pairs: list[tuple[str, str]] = []
    if info.card_path:
        pairs.append(("hex:card", info.card_path))
    if info.config_path:
        pairs.append(("hex:config", info.config_path))
    name = info.first("model_name")
    if name:
        pairs.append(("hex:model-name", name))
    library = info.first("library_name")
    if library:
        pairs.append(("hex:library", library))
    pairs += [("hex:base-model", b) for b in info.many("base_model")]
    pairs += [("hex:language", lang) for lang in info.many("language")]
    return [{"name": k, "value": v} for k, v in pairs]


def tags(info: CardInfo) -> list[str]:
    value = info.card.get("tags")
    return [t for t in value if isinstance(t, str) and t] if isinstance(value, list) else []


def inject_cards(bom: dict[str, Any], cards: Mapping[str, dict[str, Any]]) -> None:
    """Add each card to the component whose bom-ref it belongs to, at any depth."""
    stack: list[dict[str, Any]] = list(bom.get("components") or [])
    while stack:
        component = stack.pop()
        card = cards.get(component.get("bom-ref", ""))
        if card is not None:
            component["modelCard"] = card
        stack.extend(component.get("components") or [])


def member_vpath(rel: str, member: str | None) -> str:
    """``rel!/member``: one string for a file or a member at any depth."""
    return f"{rel}{MEMBER_SEP}{member}" if member else rel
