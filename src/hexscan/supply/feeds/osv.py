"""OSV: parse records strictly, fetch an ecosystem's ``all.zip`` or only what changed.

Why both paths: ``<base>/<Ecosystem>/all.zip`` is the complete ecosystem (tens of MB for
PyPI) and is what a first fetch needs; afterwards ``modified_id.csv`` (``<modified>,<id>``
rows, newest first) names the records changed since the stored cursor, and fetching those
few ``<ID>.json`` files is far cheaper. Too many changes, or a record that cannot be
fetched, fall back to the zip.

The zip is read member by member with bounds (count, member size, total size): it comes
from the network and is never extracted to disk.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hexscan.supply.records import (
    Advisory,
    Affected,
    Event,
    Range,
    RecordError,
    SeverityVector,
)

if TYPE_CHECKING:
    from hexscan.supply.feeds.http import HttpClient

DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = ("PyPI",)
SEVERITY_TYPES = frozenset({"CVSS_V2", "CVSS_V3", "CVSS_V4"})
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER", "GIT"})
#: Record ids become URL path segments: no slashes, no dot-dot, nothing exotic.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
#: OSV ecosystem names are case-sensitive in URLs; users type them in any case.
KNOWN_ECOSYSTEMS = {e.lower(): e for e in (
    "PyPI", "npm", "Go", "crates.io", "Maven", "NuGet", "RubyGems", "Packagist", "Pub",
    "Hex", "Hackage", "CRAN", "SwiftURL", "GitHub Actions", "Bioconductor", "conan")}


def canonical_ecosystem(name: str) -> str:
    """The OSV spelling of a well-known ecosystem name; other names as given."""
    return KNOWN_ECOSYSTEMS.get(name.strip().lower(), name.strip())


# --- parsing -----------------------------------------------------------------------------

def parse_time(value: Any, what: str) -> datetime:
    """An RFC 3339 timestamp with a time zone, as an aware datetime (RecordError if not)."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise RecordError(f"{what}: not an RFC 3339 timestamp: {value!r:.60}")
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise RecordError(f"{what}: not an RFC 3339 timestamp: {value!r:.60}") from exc
    if when.tzinfo is None:
        raise RecordError(f"{what}: timestamp without a time zone: {value!r:.60}")
    return when.astimezone(UTC)


def _str(obj: Mapping[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(f"{where}: '{key}' is required")
        return None
    if not isinstance(value, str):
        raise RecordError(f"{where}: '{key}' must be a string")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{where}: '{key}' must be a list")
    return value


def _strings(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(obj, key, where)
    if not all(isinstance(i, str) for i in items):
        raise RecordError(f"{where}: '{key}' must be a list of strings")
    return tuple(items)


def _dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"{where}: expected an object")
    return value


def _event(obj: Any, where: str) -> Event:
    obj = _dict(obj, where)
    kinds = [k for k in EVENT_KINDS if k in obj]
    if len(kinds) != 1:
        raise RecordError(f"{where}: an event needs exactly one of {', '.join(EVENT_KINDS)}")
    version = obj[kinds[0]]
    if not isinstance(version, str):
        raise RecordError(f"{where}: event version must be a string")
    return Event(kinds[0], version)


def _range(obj: Any, where: str) -> Range:
    obj = _dict(obj, where)
    kind = _str(obj, "type", where, required=True)
    if kind not in RANGE_TYPES:
        raise RecordError(f"{where}: unknown range type {kind!r}")
    events = tuple(_event(e, f"{where}.events[{i}]")
                   for i, e in enumerate(_list(obj, "events", where)))
    if not any(e.kind == "introduced" for e in events):
        raise RecordError(f"{where}: a range needs an 'introduced' event")
    kinds = {e.kind for e in events}
    if {"fixed", "last_affected"} <= kinds:
        raise RecordError(f"{where}: 'fixed' and 'last_affected' in one range")
    return Range(kind, events)


def _affected(obj: Any, where: str) -> Affected | None:
    obj = _dict(obj, where)
    if obj.get("package") is None:
        return None  # e.g. a GIT-only entry: nothing a package look-up can match
    pkg = _dict(obj["package"], f"{where}.package")
    ecosystem = _str(pkg, "ecosystem", f"{where}.package", required=True)
    name = _str(pkg, "name", f"{where}.package", required=True)
    assert ecosystem is not None and name is not None
    return Affected(
        ecosystem=ecosystem, name=name,
        ranges=tuple(_range(r, f"{where}.ranges[{i}]")
                     for i, r in enumerate(_list(obj, "ranges", where))),
        versions=_strings(obj, "versions", where), purl=_str(pkg, "purl", f"{where}.package"))


def parse_osv(obj: Any) -> Advisory:
    """One OSV record as an Advisory. Required fields and the shapes of the fields hex uses
    are checked (RecordError); unknown fields are ignored."""
    obj = _dict(obj, "OSV record")
    ident = _str(obj, "id", "OSV record", required=True)
    assert ident is not None
    if not ident.strip():
        raise RecordError("OSV record: empty 'id'")
    where = f"OSV {ident}"
    modified = _str(obj, "modified", where, required=True)
    assert modified is not None
    parse_time(modified, f"{where}.modified")
    severity = []
    for i, item in enumerate(_list(obj, "severity", where)):
        item = _dict(item, f"{where}.severity[{i}]")
        kind = _str(item, "type", f"{where}.severity[{i}]", required=True)
        score = _str(item, "score", f"{where}.severity[{i}]", required=True)
        if kind in SEVERITY_TYPES and score:
            severity.append(SeverityVector(str(kind), str(score), "osv"))
    references = []
    for i, ref in enumerate(_list(obj, "references", where)):
        url = _str(_dict(ref, f"{where}.references[{i}]"), "url", f"{where}.references[{i}]")
        if url:
            references.append(url)
    specific = obj.get("database_specific")
    cwes: tuple[str, ...] = ()
    if isinstance(specific, dict):
        cwes = _strings(specific, "cwe_ids", f"{where}.database_specific")
    affected = (_affected(a, f"{where}.affected[{i}]")
                for i, a in enumerate(_list(obj, "affected", where)))
    return Advisory(
        id=ident, modified=modified, published=_str(obj, "published", where),
        withdrawn=_str(obj, "withdrawn", where), aliases=_strings(obj, "aliases", where),
        summary=_str(obj, "summary", where) or "", details=_str(obj, "details", where) or "",
        affected=tuple(a for a in affected if a is not None), severity=tuple(severity),
        references=tuple(references), cwes=cwes)


def parse_osv_bytes(data: bytes) -> Advisory:
    """One OSV record from its JSON bytes (RecordError when it is not JSON)."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"not JSON: {exc}") from exc
    return parse_osv(obj)


# --- the bulk zip ------------------------------------------------------------------------

@dataclass(frozen=True)
class ZipLimits:
    """Bounds on an ``all.zip`` (PyPI today: ~20k members, all well under 1 MiB)."""

    max_members: int = 500_000
    max_member_bytes: int = 16 << 20
    max_total_bytes: int = 4 << 30


@dataclass
class Batch:
    """Parsed records plus the ones that were rejected, with why."""

    records: list[tuple[Advisory, bytes]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def add(self, data: bytes, label: str) -> None:
        try:
            self.records.append((parse_osv_bytes(data), data))
        except RecordError as exc:
            self.rejected.append(f"{label}: {exc}")


def read_zip(path: str, limits: ZipLimits = ZipLimits()) -> Batch:
    """Every member of an OSV ``all.zip`` as a record, within ``limits`` (FeedError)."""
    from hexscan.supply.feeds.http import FeedError

    batch = Batch()
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > limits.max_members:
                raise FeedError(f"OSV zip has {len(members)} members, more than the limit "
                                f"of {limits.max_members}")
            for member in members:
                if member.file_size > limits.max_member_bytes:
                    raise FeedError(f"OSV zip member {member.filename!r} is "
                                    f"{member.file_size} bytes, over the limit")
                with archive.open(member) as handle:
                    data = handle.read(limits.max_member_bytes + 1)
                if len(data) > limits.max_member_bytes:
                    raise FeedError(f"OSV zip member {member.filename!r} is over the limit")
                total += len(data)
                if total > limits.max_total_bytes:
                    raise FeedError("OSV zip expands beyond the total size limit")
                batch.add(data, member.filename)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            OSError) as exc:
        raise FeedError(f"OSV zip is corrupt or truncated: {type(exc).__name__}: "
                        f"{exc}") from exc
    return batch


def check_batch(batch: Batch, what: str) -> None:
    """A feed whose records mostly fail to parse is not an OSV feed: refuse all of it."""
    from hexscan.supply.feeds.http import FeedError

    bad, good = len(batch.rejected), len(batch.records)
    if bad and bad * 10 > bad + good:
        raise FeedError(f"{what}: {bad} of {bad + good} records are malformed, e.g. "
                        f"{batch.rejected[0]}")


# --- modified_id.csv ---------------------------------------------------------------------

def parse_modified_csv(data: bytes) -> Iterator[tuple[datetime, str, str]]:
    """Rows of ``modified_id.csv`` as (modified, modified text, id); FeedError on a bad row."""
    from hexscan.supply.feeds.http import FeedError

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedError(f"modified_id.csv is not UTF-8: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 2 or not SAFE_ID.match(parts[1]):
            raise FeedError(f"modified_id.csv line {number}: expected '<modified>,<id>', got "
                            f"{line[:80]!r}")
        try:
            when = parse_time(parts[0], f"modified_id.csv line {number}")
        except RecordError as exc:
            raise FeedError(str(exc)) from exc
        yield when, parts[0], parts[1]


# --- one ecosystem -----------------------------------------------------------------------

@dataclass
class OsvUpdate:
    """What a fetch of one ecosystem produced; the DB applies it.

    ``mode``: "full" (``records`` replace the ecosystem), "incremental" (``records`` are
    upserted) or "unchanged" (a 304, nothing to write).
    """

    ecosystem: str
    mode: str
    url: str
    records: list[tuple[Advisory, bytes]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    cursor: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    notes: list[str] = field(default_factory=list)


def ecosystem_url(base: str, ecosystem: str, leaf: str) -> str:
    return f"{base.rstrip('/')}/{quote(ecosystem, safe='')}/{leaf}"


def _newest(records: list[tuple[Advisory, bytes]], cursor: str | None) -> str | None:
    best, best_text = (parse_time(cursor, "cursor"), cursor) if cursor else (None, None)
    for adv, _raw in records:
        when = parse_time(adv.modified, adv.id)
        if best is None or when > best:
            best, best_text = when, adv.modified
    return best_text


def fetch_full(client: HttpClient, base: str, ecosystem: str, *,
               limits: ZipLimits = ZipLimits(),
               progress: Callable[[int], None] | None = None) -> OsvUpdate:
    """Download and parse ``all.zip``: the whole ecosystem."""
    url = ecosystem_url(base, ecosystem, "all.zip")
    resp = client.get(url, progress=progress)
    try:
        batch = read_zip(resp.path or "", limits)
    finally:
        resp.discard()
    check_batch(batch, url)
    return OsvUpdate(ecosystem, "full", url, batch.records, batch.rejected,
                     cursor=_newest(batch.records, None))


def fetch_osv(client: HttpClient, base: str, ecosystem: str, *, cursor: str | None,
              etag: str | None, last_modified: str | None, full: bool = False,
              max_incremental: int = 1000, limits: ZipLimits = ZipLimits(),
              progress: Callable[[int], None] | None = None) -> OsvUpdate:
    """Bring one ecosystem up to date from the state a previous fetch left.

    Without a cursor (or with ``full``) this is ``all.zip``. Otherwise a conditional GET of
    ``modified_id.csv`` (304: unchanged), then each record modified after the cursor;
    more than ``max_incremental`` of them, or one that cannot be fetched, means the zip.
    """
    from hexscan.supply.feeds.http import FeedError

    if full or not cursor:
        return fetch_full(client, base, ecosystem, limits=limits, progress=progress)
    since = parse_time(cursor, "stored OSV cursor")
    csv_url = ecosystem_url(base, ecosystem, "modified_id.csv")
    try:
        resp = client.get(csv_url, etag=etag, last_modified=last_modified, progress=progress)
    except FeedError as exc:  # e.g. a mirror that only carries all.zip
        update = fetch_full(client, base, ecosystem, limits=limits, progress=progress)
        update.notes.append(f"no change list ({exc}); downloaded all.zip instead")
        return update
    if resp.not_modified:
        return OsvUpdate(ecosystem, "unchanged", csv_url, cursor=cursor, etag=etag,
                         last_modified=last_modified)
    try:
        rows = list(parse_modified_csv(resp.read_bytes()))
    finally:
        resp.discard()
    changed = {ident: text for when, text, ident in rows if when > since}
    if len(changed) > max_incremental:
        update = fetch_full(client, base, ecosystem, limits=limits, progress=progress)
        update.notes.append(f"{len(changed)} records changed since {cursor}: downloaded "
                            "all.zip instead")
        return update
    batch = Batch()
    for ident in sorted(changed):
        try:
            record = client.get(ecosystem_url(base, ecosystem, f"{ident}.json"),
                                progress=progress)
        except FeedError as exc:
            update = fetch_full(client, base, ecosystem, limits=limits, progress=progress)
            update.notes.append(f"{ident}: {exc}; downloaded all.zip instead")
            return update
        try:
            batch.add(record.read_bytes(), ident)
        finally:
            record.discard()
    check_batch(batch, csv_url)
    newest = max((parse_time(t, "csv"), t) for t in [cursor, *changed.values()])[1]
    return OsvUpdate(ecosystem, "incremental", csv_url, batch.records, batch.rejected,
                     cursor=newest, etag=resp.etag, last_modified=resp.last_modified)
