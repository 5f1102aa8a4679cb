"""NVD CVE API 2.0: page through CVE records and keep what hex enriches findings with.

NVD is enrichment, not matching: packages are matched through OSV, then the CVE alias is
joined here for NVD's own CVSS vectors, CWE list and description. The API is two query
parameters and a page loop (``startIndex`` / ``resultsPerPage``), plus ``lastModStartDate``
/ ``lastModEndDate`` windows (at most 120 days each) for incremental refreshes.

NVD asks clients to pause between requests (about 6 s without an API key, far less with
one) and rate-limits with 429/503; the pauses go through ``HttpClient.sleep`` so a test
can count them without waiting, and retries with ``Retry-After`` are the client's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hexscan.supply.feeds.http import FeedError, HttpClient
from hexscan.supply.records import NvdCve, RecordError, SeverityVector

#: NVD's documented maximum span of one lastModStartDate/lastModEndDate window.
MAX_WINDOW = timedelta(days=120)
#: NVD's documented maximum (and default) page size.
MAX_PAGE_SIZE = 2000
#: Pause between requests that NVD asks for, without and with an API key (seconds).
PAUSE_WITHOUT_KEY = 6.0
PAUSE_WITH_KEY = 0.6
#: A ceiling on records per run, far above NVD's ~300k, so a server that reports an
#: absurd totalResults cannot keep the pager going for ever.
MAX_RECORDS = 5_000_000

_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}\Z")
_CWE_ID = re.compile(r"CWE-\d+\Z")
#: NVD metric lists, newest CVSS version first, with the OSV-style vector type of each.
_METRICS = (("cvssMetricV40", "CVSS_V4"), ("cvssMetricV31", "CVSS_V3"),
            ("cvssMetricV30", "CVSS_V3"), ("cvssMetricV2", "CVSS_V2"))
_ORIGINS = {"Primary": "nvd-primary", "Secondary": "nvd-secondary"}


def fetch_nvd(client: HttpClient, url: str, *, since: str | None, api_key: str | None,
              page_size: int = MAX_PAGE_SIZE,
              progress: Callable[[int, int], None] | None = None,
              now: datetime | None = None,
              keep: Callable[[str], bool] | None = None) -> tuple[list[NvdCve], str]:
    """Fetch CVE records from the NVD API at ``url``; return them and the new cursor.

    Without ``since`` this is a full mirror (every page up to ``totalResults``) and the
    cursor is the first page's server timestamp: anything modified while the later pages
    were read is newer than it, so the next incremental run picks it up again. With
    ``since`` (the previous cursor) it reads ``lastMod`` windows of at most 120 days up to
    ``now`` and the cursor is the end of the last window. ``progress(done, total)`` is
    called after each page with the records read so far and the totals announced so far.
    A CVE seen twice (records shift between pages while NVD is updated) is kept once, in
    its latest form. ``keep(cve_id)`` drops unwanted records page by page, so a full
    mirror of ~300k CVEs holds only the ones hex needs in memory.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
    end = _utc(now or datetime.now(UTC))
    pager = _Pager(client, url, api_key, page_size, progress, keep)
    if since is None:
        stamp = pager.run({})
        return pager.records(), _cursor_from_stamp(stamp, end)
    start = _parse_since(since)
    for window_start, window_end in windows(start, end):
        pager.run({"lastModStartDate": _nvd_date(window_start),
                   "lastModEndDate": _nvd_date(window_end)})
    return pager.records(), _nvd_date(max(start, end))


def windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Split [start, end] into consecutive windows no longer than NVD's 120-day limit."""
    while start < end:
        stop = min(start + MAX_WINDOW, end)
        yield start, stop
        start = stop


def parse_nvd_page(obj: Any) -> tuple[list[NvdCve], int]:
    """Parse one NVD API 2.0 response: its non-rejected CVEs and ``totalResults``.

    Strict on the shape (``format`` NVD_CVE, a ``vulnerabilities`` list, an integer
    ``totalResults``): a page that is not what NVD documents raises FeedError, a record
    that is malformed raises RecordError. Rejected CVEs are skipped.
    """
    records, total, _ = _parse_page(obj)
    return records, total


class _Pager:
    """The page loop over one query, shared by the full mirror and each lastMod window."""

    def __init__(self, client: HttpClient, url: str, api_key: str | None, page_size: int,
                 progress: Callable[[int, int], None] | None,
                 keep: Callable[[str], bool] | None = None) -> None:
        self.client = client
        self.keep = keep
        self.url = url
        self.headers = {"apiKey": api_key} if api_key else {}
        self.pause = PAUSE_WITH_KEY if api_key else PAUSE_WITHOUT_KEY
        self.page_size = page_size
        self.progress = progress
        self.requests = 0
        self.seen = 0
        self.announced = 0
        self.by_id: dict[str, NvdCve] = {}

    def run(self, query: Mapping[str, str]) -> str | None:
        """Read every page of ``query``; return the first page's timestamp, if any."""
        start, total, stamp = 0, None, None
        while total is None or start < total:
            obj = self._get({**query, "startIndex": start, "resultsPerPage": self.page_size})
            records, page_total, count = _parse_page(obj)
            if total is None:
                stamp = obj.get("timestamp") if isinstance(obj.get("timestamp"), str) else None
                self.announced += page_total
            total = page_total
            if start < total and count == 0:
                raise FeedError(f"{self.url}: empty page at startIndex {start} "
                                f"of totalResults {total}")
            start += count
            self.seen += count
            if self.seen > MAX_RECORDS:
                raise FeedError(f"{self.url}: more than {MAX_RECORDS} records")
            for record in records:
                if self.keep is not None and not self.keep(record.cve):
                    continue
                kept = self.by_id.get(record.cve)
                if kept is None or kept.last_modified <= record.last_modified:
                    self.by_id[record.cve] = record
            if self.progress is not None:
                self.progress(self.seen, self.announced)
        return stamp

    def records(self) -> list[NvdCve]:
        return list(self.by_id.values())

    def _get(self, params: Mapping[str, Any]) -> Any:
        if self.requests:
            self.client.sleep(self.pause)
        self.requests += 1
        resp = self.client.get(self.url, params=params, headers=self.headers)
        try:
            data = resp.read_bytes()
        finally:
            resp.discard()
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedError(f"{self.url}: not JSON: {exc}") from exc


def _parse_page(obj: Any) -> tuple[list[NvdCve], int, int]:
    """Records, totalResults and the number of raw entries (rejected ones included)."""
    if not isinstance(obj, dict):
        raise FeedError("NVD response is not a JSON object")
    if obj.get("format") != "NVD_CVE":
        raise FeedError(f"NVD response format is {obj.get('format')!r}, not 'NVD_CVE'")
    total = obj.get("totalResults")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise FeedError(f"NVD response totalResults is {total!r}")
    items = obj.get("vulnerabilities")
    if not isinstance(items, list):
        raise FeedError("NVD response has no vulnerabilities list")
    records = []
    for item in items:
        cve = item.get("cve") if isinstance(item, dict) else None
        if not isinstance(cve, dict):
            raise RecordError("NVD vulnerabilities[] entry has no cve object")
        if cve.get("vulnStatus") == "Rejected":
            continue
        records.append(parse_cve(cve))
    return records, total, len(items)


def parse_cve(cve: Mapping[str, Any]) -> NvdCve:
    """One ``vulnerabilities[].cve`` object as an NvdCve (RecordError when malformed)."""
    ident = _text(cve, "id")
    if not _CVE_ID.match(ident):
        raise RecordError(f"NVD record id {ident!r} is not a CVE id")
    return NvdCve(
        cve=ident,
        last_modified=_text(cve, "lastModified", ident),
        published=_optional_text(cve, "published", ident),
        vuln_status=_optional_text(cve, "vulnStatus", ident),
        description=_description(cve, ident),
        vectors=_vectors(cve, ident),
        cwes=_cwes(cve, ident),
        references=_references(cve, ident),
    )


def _description(cve: Mapping[str, Any], ident: str) -> str:
    for entry in _list(cve, "descriptions", ident):
        if isinstance(entry, dict) and entry.get("lang") == "en":
            return _text(entry, "value", ident)
    return ""


def _vectors(cve: Mapping[str, Any], ident: str) -> tuple[SeverityVector, ...]:
    metrics = cve.get("metrics", {})
    if not isinstance(metrics, dict):
        raise RecordError(f"{ident}: metrics is not an object")
    found = []
    for key, vector_type in _METRICS:
        for metric in _list(metrics, key, ident):
            if not isinstance(metric, dict):
                raise RecordError(f"{ident}: {key} entry is not an object")
            origin = _ORIGINS.get(metric.get("type", ""))
            if origin is None:
                raise RecordError(f"{ident}: {key} type is {metric.get('type')!r}")
            data = metric.get("cvssData")
            if not isinstance(data, dict):
                raise RecordError(f"{ident}: {key} has no cvssData")
            found.append(SeverityVector(vector_type, _text(data, "vectorString", ident), origin))
    return tuple(dict.fromkeys(found))


def _cwes(cve: Mapping[str, Any], ident: str) -> tuple[str, ...]:
    """CWE-<n> ids only: NVD's NVD-CWE-Other / NVD-CWE-noinfo placeholders are dropped."""
    found = []
    for weakness in _list(cve, "weaknesses", ident):
        if not isinstance(weakness, dict):
            raise RecordError(f"{ident}: weaknesses entry is not an object")
        for entry in _list(weakness, "description", ident):
            value = entry.get("value") if isinstance(entry, dict) else None
            if isinstance(value, str) and _CWE_ID.match(value):
                found.append(value)
    return tuple(dict.fromkeys(found))


def _references(cve: Mapping[str, Any], ident: str) -> tuple[str, ...]:
    urls = []
    for ref in _list(cve, "references", ident):
        if not isinstance(ref, dict):
            raise RecordError(f"{ident}: references entry is not an object")
        urls.append(_text(ref, "url", ident))
    return tuple(dict.fromkeys(urls))


def _list(obj: Mapping[str, Any], key: str, ident: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise RecordError(f"{ident}: {key} is not a list")
    return value


def _text(obj: Mapping[str, Any], key: str, ident: str = "NVD record") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise RecordError(f"{ident}: {key} is missing or not a string")
    return value


def _optional_text(obj: Mapping[str, Any], key: str, ident: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"{ident}: {key} is not a string")
    return value


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (NVD's timestamps are)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _parse_since(since: str) -> datetime:
    try:
        return _utc(datetime.fromisoformat(since))
    except ValueError as exc:
        raise FeedError(f"NVD cursor {since!r} is not an ISO-8601 date-time") from exc


def _nvd_date(moment: datetime) -> str:
    """NVD's extended ISO-8601 form with milliseconds and an explicit UTC offset."""
    moment = _utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def _cursor_from_stamp(stamp: str | None, fallback: datetime) -> str:
    if stamp is not None:
        try:
            return _nvd_date(datetime.fromisoformat(stamp))
        except ValueError:
            pass
    return _nvd_date(fallback)
