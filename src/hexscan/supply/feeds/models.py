"""The compromised-model hash feed: SHA-256 digests of model files known to be malicious.

There is no public standard feed, so hex reads a small JSON document from the URL the
user configures (``modelhash_url`` / ``HEX_MODELHASH_URL``)::

    {"models": [{"sha256": "<64 hex>", "size": 1234, "name": "...", "reason": "...",
                 "reference": "https://...", "added": "2025-01-31"}]}

Parsing is strict: one bad entry rejects the document, so a truncated or hostile file can
neither empty the list nor smuggle in an unusable digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hexscan.supply.records import ModelHash, RecordError

if TYPE_CHECKING:
    from hexscan.supply.feeds.http import HttpClient

SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
#: More entries than this is not a hash list hex can use (and bounds memory).
MAX_ENTRIES = 1_000_000


def parse_model_entry(obj: Any) -> ModelHash:
    """One ``models[]`` entry (RecordError when a field has the wrong shape)."""
    if not isinstance(obj, dict):
        raise RecordError(f"model hash entry is not an object: {obj!r:.60}")
    digest = obj.get("sha256")
    if not isinstance(digest, str) or not SHA256.match(digest):
        raise RecordError(f"model hash entry: 'sha256' must be 64 hex characters, got "
                          f"{digest!r:.80}")
    size = obj.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise RecordError(f"model hash {digest}: 'size' must be a non-negative integer")
    text: dict[str, str | None] = {}
    for key in ("name", "reason", "reference", "added"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"model hash {digest}: '{key}' must be a string")
        text[key] = value
    return ModelHash(sha256=digest.lower(), size=size, name=text["name"] or "",
                     reason=text["reason"] or "", reference=text["reference"],
                     added=text["added"])


def parse_models(data: bytes) -> list[ModelHash]:
    """The whole feed document (FeedError when it is not one)."""
    from hexscan.supply.feeds.http import FeedError

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"model hash feed is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise FeedError("model hash feed: expected an object with a 'models' list")
    if len(doc["models"]) > MAX_ENTRIES:
        raise FeedError(f"model hash feed: more than {MAX_ENTRIES} entries")
    try:
        return [parse_model_entry(entry) for entry in doc["models"]]
    except RecordError as exc:
        raise FeedError(f"model hash feed: {exc}") from exc


@dataclass
class ModelsUpdate:
    """The parsed feed, or ``entries`` None when the server said "not modified"."""

    url: str
    entries: list[ModelHash] | None
    etag: str | None
    last_modified: str | None


def fetch_models(client: HttpClient, url: str, *, etag: str | None = None,
                 last_modified: str | None = None,
                 progress: Callable[[int], None] | None = None) -> ModelsUpdate:
    """Conditional GET of the feed; a 304 keeps what the DB has."""
    resp = client.get(url, etag=etag, last_modified=last_modified, progress=progress)
    if resp.not_modified:
        return ModelsUpdate(url, None, etag, last_modified)
    try:
        entries = parse_models(resp.read_bytes())
    finally:
        resp.discard()
    return ModelsUpdate(url, entries, resp.etag, resp.last_modified)
