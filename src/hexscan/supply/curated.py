"""The curated advisory set shipped inside the package (supply/data/curated.json).

A fresh install with no fetched DB still knows the ML stack's most important advisories,
KEV entries and compromised-model hashes; VulnDB merges this set under any fetched records.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hexscan.errors import VulnDBError
from hexscan.supply.records import (
    Advisory,
    KevEntry,
    ModelHash,
    RecordError,
)
from hexscan.supply.versions import ecosystem_key, normalise

# --- the curated set shipped in the package ----------------------------------------------

@dataclass(frozen=True)
class Curated:
    """The embedded advisories, KEV entries and model hashes, indexed like the DB."""

    generated: str
    advisories: dict[str, Advisory]
    by_package: dict[tuple[str, str], tuple[str, ...]]
    by_alias: dict[str, tuple[str, ...]]
    kev: dict[str, KevEntry]
    model_hashes: dict[str, ModelHash]

    @classmethod
    def empty(cls) -> Curated:
        return cls("", {}, {}, {}, {}, {})


def parse_curated(data: bytes) -> Curated:
    """Parse the curated JSON strictly: it ships with hex, so any fault is a bug."""
    from hexscan.supply.feeds.models import parse_model_entry
    from hexscan.supply.feeds.osv import parse_osv

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VulnDBError(f"embedded curated set is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("generated"), str):
        raise VulnDBError("embedded curated set has no 'generated' date")
    try:
        advisories = [parse_osv(obj) for obj in _list(doc, "advisories")]
        kev = [_curated_kev(obj) for obj in _list(doc, "kev")]
        hashes = [parse_model_entry(obj) for obj in _list(doc, "model_hashes")]
    except RecordError as exc:
        raise VulnDBError(f"embedded curated set: {exc}") from exc
    by_package: dict[tuple[str, str], set[str]] = {}
    by_alias: dict[str, set[str]] = {}
    for adv in advisories:
        for aff in adv.affected:
            key = (ecosystem_key(aff.ecosystem), normalise(aff.ecosystem, aff.name))
            by_package.setdefault(key, set()).add(adv.id)
        for alias in (adv.id, *adv.aliases):
            by_alias.setdefault(alias, set()).add(adv.id)
    return Curated(
        generated=doc["generated"], advisories={a.id: a for a in advisories},
        by_package={k: tuple(sorted(v)) for k, v in by_package.items()},
        by_alias={k: tuple(sorted(v)) for k, v in by_alias.items()},
        kev={k.cve: k for k in kev}, model_hashes={m.sha256: m for m in hashes})


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise VulnDBError(f"embedded curated set: '{key}' is not a list")
    return value


def _curated_kev(obj: Any) -> KevEntry:
    if not isinstance(obj, dict) or not isinstance(obj.get("cveID"), str) \
            or not isinstance(obj.get("dateAdded"), str):
        raise RecordError(f"KEV entry without cveID/dateAdded: {obj!r:.80}")
    return KevEntry(cve=obj["cveID"], date_added=obj["dateAdded"], due_date=obj.get("dueDate"),
                    ransomware=obj.get("knownRansomwareCampaignUse"),
                    vendor=obj.get("vendorProject"), product=obj.get("product"),
                    name=obj.get("vulnerabilityName"))


@functools.cache
def load_curated() -> Curated:
    """The curated set of this hex build (parsed once per process)."""
    try:
        data = resources.files("hexscan.supply").joinpath("data", "curated.json").read_bytes()
    except OSError as exc:
        raise VulnDBError(f"embedded curated set is missing: {exc}") from exc
    return parse_curated(data)
