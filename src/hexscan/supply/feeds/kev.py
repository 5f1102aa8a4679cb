"""CISA Known Exploited Vulnerabilities catalog (the JSON feed, fetched whole).

KEV is small (under 2k entries) and every entry is an exploitation fact that raises a
finding's severity, so the parser is strict: a catalog whose entries lack the fields the
published schema requires, or whose ``count`` disagrees with its list (a truncated
download), is refused as a whole rather than half-loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from hexscan.supply.feeds.http import FeedError
from hexscan.supply.records import KevEntry

_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}\Z")
_TOP_TEXT = ("title", "catalogVersion", "dateReleased")
_ENTRY_TEXT = ("cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded",
               "dueDate", "knownRansomwareCampaignUse")
_RANSOMWARE = frozenset({"Known", "Unknown"})


def parse_kev(data: bytes) -> list[KevEntry]:
    """Parse the KEV JSON catalog; FeedError when it is not the documented shape.

    A CVE listed twice is kept once (its first entry).
    """
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"KEV catalog is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise FeedError("KEV catalog is not a JSON object")
    for key in _TOP_TEXT:
        if not isinstance(obj.get(key), str):
            raise FeedError(f"KEV catalog has no {key}")
    items = obj.get("vulnerabilities")
    if not isinstance(items, list):
        raise FeedError("KEV catalog has no vulnerabilities list")
    count = obj.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count != len(items):
        raise FeedError(f"KEV catalog count {count!r} does not match its "
                        f"{len(items)} entries (truncated?)")
    entries: dict[str, KevEntry] = {}
    for index, item in enumerate(items):
        entry = _entry(item, index)
        entries.setdefault(entry.cve, entry)
    return list(entries.values())


def _entry(item: Any, index: int) -> KevEntry:
    where = f"KEV vulnerabilities[{index}]"
    if not isinstance(item, Mapping):
        raise FeedError(f"{where} is not an object")
    for key in _ENTRY_TEXT:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise FeedError(f"{where} has no {key}")
    cve = item["cveID"].strip()
    if not _CVE_ID.match(cve):
        raise FeedError(f"{where}: cveID {cve[:40]!r} is not a CVE id")
    for key in ("dateAdded", "dueDate"):
        try:
            date.fromisoformat(item[key])
        except ValueError:
            raise FeedError(f"{where} ({cve}): {key} {item[key]!r} is not a date") from None
    ransomware = item["knownRansomwareCampaignUse"]
    if ransomware not in _RANSOMWARE:
        raise FeedError(f"{where} ({cve}): knownRansomwareCampaignUse is {ransomware!r}")
    return KevEntry(cve=cve, date_added=item["dateAdded"], due_date=item["dueDate"],
                    ransomware=ransomware, vendor=item["vendorProject"],
                    product=item["product"], name=item["vulnerabilityName"])
