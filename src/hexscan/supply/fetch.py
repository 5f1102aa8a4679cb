"""``hex vulnfetch fetch``: bring the chosen feeds into the DB as ONE atomic update.

Every source is fetched into the same private copy of the DB (``VulnDBWriter``); only when
all of them succeeded is the copy swapped in. One failure (network, a malformed feed, a
full disk) discards the copy, so the DB a scan reads is always a complete, checked state.

Order matters: OSV first, so NVD enrichment can keep exactly the CVEs the advisories
(fetched or embedded) name.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from hexscan.config import ScanConfig
from hexscan.errors import VulnDBError
from hexscan.supply.db import db_path
from hexscan.supply.db_write import VulnDBWriter
from hexscan.supply.feeds import osv
from hexscan.supply.feeds.http import FeedError, HttpClient

if TYPE_CHECKING:
    from rich.progress import Progress

SOURCES = ("osv", "nvd", "epss", "kev", "models")
DEFAULT_NVD_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
DEFAULT_EPSS_URL = "https://epss.cyentia.com/epss_scores-current.csv.gz"
DEFAULT_KEV_URL = ("https://www.cisa.gov/sites/default/files/feeds/"
                   "known_exploited_vulnerabilities.json")


def default_sources(config: ScanConfig) -> tuple[str, ...]:
    """osv, epss, kev, plus models when a hash feed URL is configured. NVD is opt-in: it
    is enrichment only, and slow without an API key (NVD asks for 6 s between pages)."""
    return ("osv", "epss", "kev") + (("models",) if config.modelhash_url else ())


def parse_sources(text: str) -> tuple[str, ...]:
    """``osv,kev`` -> ("osv", "kev") in fetch order; ValueError names an unknown one."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise ValueError(f"unknown source(s) {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(SOURCES)}")
    return tuple(s for s in SOURCES if s in names)


def redact(url: str) -> str:
    """A URL without user:password, fit for the DB and the terminal."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class SourceResult:
    """What one source did: ``status`` is updated, unchanged, skipped or failed."""

    name: str
    status: str
    written: int = 0
    total: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.name, "status": self.status, "written": self.written,
                "total": self.total, "notes": self.notes}


@dataclass
class FetchResult:
    db: Path
    results: list[SourceResult] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Reporter:
    """Progress of a fetch: a rich line per source on a terminal, silent otherwise."""

    def __init__(self, bar: Progress | None = None) -> None:
        self.bar = bar
        self._task: Any = None
        self._bytes = 0

    def start(self, label: str) -> None:
        if self.bar is not None:
            self._bytes = 0
            self._task = self.bar.add_task(label, total=None, detail="")

    def bytes(self, count: int) -> None:
        """Download callback: ``count`` more bytes arrived."""
        if self.bar is not None and self._task is not None:
            self._bytes += count
            self.bar.update(self._task, detail=f"{self._bytes / 1e6:.1f} MB")

    def pages(self, done: int, total: int) -> None:
        """NVD callback: ``done`` of ``total`` CVE records read."""
        if self.bar is not None and self._task is not None:
            self.bar.update(self._task, completed=done, total=total or None,
                            detail=f"{done:,}/{total:,} CVEs")

    def finish(self, result: SourceResult) -> None:
        if self.bar is not None and self._task is not None:
            self.bar.update(self._task, total=1, completed=1, detail=result.status)
            self._task = None


@dataclass
class Fetcher:
    """The settings of one fetch run."""

    config: ScanConfig
    client: HttpClient
    full: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    reporter: Reporter = field(default_factory=Reporter)
    max_incremental: int = 1000

    def run(self, sources: Sequence[str], ecosystems: Sequence[str]) -> FetchResult:
        result = FetchResult(db_path(self.config.home))
        current: SourceResult | None = None
        try:
            with VulnDBWriter(self.config.home) as writer:
                if writer.reset_reason:
                    result.results.append(SourceResult(
                        "db", "reset", notes=[f"started a new DB: {writer.reset_reason}"]))
                for name, step in self._steps(sources, ecosystems, writer):
                    current = SourceResult(name, "failed")
                    self.reporter.start(name)
                    step(current)
                    self.reporter.finish(current)
                    result.results.append(current)
                    current = None
        except (FeedError, ValueError, VulnDBError, sqlite3.Error, OSError) as exc:
            if current is not None:
                current.notes.append(str(exc))
                result.results.append(current)
            result.error = _describe(exc)
        return result

    def _steps(self, sources: Sequence[str], ecosystems: Sequence[str],
               writer: VulnDBWriter) -> Iterator[tuple[str, Callable[[SourceResult], None]]]:
        if "osv" in sources:
            for eco in self._ecosystems(ecosystems, writer):
                yield f"osv:{eco}", _bind(self._osv, writer, eco)
        for name in ("nvd", "epss", "kev", "models"):
            if name in sources:
                yield name, _bind(getattr(self, f"_{name}"), writer)

    def _ecosystems(self, chosen: Sequence[str], writer: VulnDBWriter) -> list[str]:
        """The ecosystems asked for; by default PyPI plus any the DB already holds."""
        if chosen:
            return list(dict.fromkeys(osv.canonical_ecosystem(e) for e in chosen))
        known = [r[0].split(":", 1)[1] for r in writer._db().execute(
            "SELECT name FROM source WHERE name LIKE 'osv:%' ORDER BY name")]
        return list(dict.fromkeys([*osv.DEFAULT_ECOSYSTEMS, *known]))

    def _url(self, value: str | None, default: str) -> str:
        return value or default

    # one method per source ---------------------------------------------------------------
    def _osv(self, writer: VulnDBWriter, eco: str, out: SourceResult) -> None:
        name = f"osv:{eco}"
        info = writer.source(name)
        base = self._url(self.config.osv_url, osv.DEFAULT_URL)
        update = osv.fetch_osv(
            self.client, base, eco, cursor=None if info is None else info.cursor,
            etag=None if info is None else info.etag,
            last_modified=None if info is None else info.last_modified, full=self.full,
            max_incremental=self.max_incremental, progress=self.reporter.bytes)
        out.notes += update.notes
        if update.rejected:
            out.notes.append(f"{len(update.rejected)} malformed record(s) skipped, e.g. "
                             f"{update.rejected[0]}")
        if update.mode == "unchanged":
            writer.touch_source(name)
            out.status = "unchanged"
        else:
            if update.mode == "full":
                out.written = writer.replace_advisories(name, update.records)
            else:
                out.written = writer.upsert_advisories(name, update.records)
            out.status = "updated" if out.written or update.mode == "full" else "unchanged"
            out.notes.append("full download (all.zip)" if update.mode == "full" else
                             f"{out.written} changed record(s) since the last fetch")
            writer.set_source(name, url=redact(update.url), etag=update.etag,
                              last_modified=update.last_modified, cursor=update.cursor,
                              record_count=writer.count("advisory", "source = ?", (name,)))
        out.total = writer.count("advisory", "source = ?", (name,))

    def _nvd(self, writer: VulnDBWriter, out: SourceResult) -> None:
        from hexscan.supply.feeds.nvd import fetch_nvd

        info = writer.source("nvd")
        url = self._url(self.config.nvd_url, DEFAULT_NVD_URL)
        since = None if self.full or info is None else info.cursor
        api_key = self.env.get("NVD_API_KEY") or None
        wanted = writer.referenced_cves()
        keep, cursor = fetch_nvd(self.client, url, since=since, api_key=api_key,
                                 progress=self.reporter.pages, keep=wanted.__contains__)
        if since is None:
            writer.clear_nvd()
        out.written = writer.upsert_nvd(keep)
        out.total = writer.count("nvd_cve")
        out.status = "updated"
        out.notes.append(f"{len(keep)} CVE record(s) named by an advisory kept"
                         + ("" if api_key else "; no NVD_API_KEY: NVD "
                                            "allows 5 requests per 30 s without one"))
        writer.set_source("nvd", url=redact(url), etag=None, last_modified=None,
                          cursor=cursor, record_count=out.total)

    def _conditional(self, writer: VulnDBWriter, name: str, url: str,
                     apply: Callable[[Any], tuple[int, str | None, list[str]]],
                     out: SourceResult) -> None:
        """A whole-file feed: conditional GET, parse, replace its table."""
        info = writer.source(name)
        use_cache = info is not None and not self.full
        resp = self.client.get(url, etag=info.etag if use_cache and info else None,
                               last_modified=info.last_modified if use_cache and info else None,
                               progress=self.reporter.bytes)
        if resp.not_modified:
            writer.touch_source(name)
            out.status = "unchanged"
            out.notes.append("not modified since the last fetch")
            out.total = None if info is None else info.record_count
            return
        try:
            out.written, cursor, notes = apply(resp)
        finally:
            resp.discard()
        out.notes += notes
        out.total = out.written
        out.status = "updated"
        writer.set_source(name, url=redact(url), etag=resp.etag,
                          last_modified=resp.last_modified, cursor=cursor,
                          record_count=out.written)

    def _epss(self, writer: VulnDBWriter, out: SourceResult) -> None:
        from hexscan.supply.feeds.epss import parse_epss

        def apply(resp: Any) -> tuple[int, str | None, list[str]]:
            scores, model_version, score_date = parse_epss(resp.path)
            return (writer.replace_epss(scores), score_date,
                    [f"model {model_version}, scores of {score_date}"])

        self._conditional(writer, "epss", self._url(self.config.epss_url, DEFAULT_EPSS_URL),
                          apply, out)

    def _kev(self, writer: VulnDBWriter, out: SourceResult) -> None:
        from hexscan.supply.feeds.kev import parse_kev

        def apply(resp: Any) -> tuple[int, str | None, list[str]]:
            entries = parse_kev(resp.read_bytes())
            newest = max((e.date_added for e in entries), default=None)
            return writer.replace_kev(entries), newest, []

        self._conditional(writer, "kev", self._url(self.config.kev_url, DEFAULT_KEV_URL),
                          apply, out)

    def _models(self, writer: VulnDBWriter, out: SourceResult) -> None:
        from hexscan.supply.feeds.models import parse_models

        if not self.config.modelhash_url:
            out.status = "skipped"
            out.notes.append("no compromised-model feed configured (set modelhash_url or "
                             "HEX_MODELHASH_URL)")
            return

        def apply(resp: Any) -> tuple[int, str | None, list[str]]:
            entries = parse_models(resp.read_bytes())
            newest = max((e.added for e in entries if e.added), default=None)
            return writer.replace_model_hashes(entries), newest, []

        self._conditional(writer, "models", self.config.modelhash_url, apply, out)


def _bind(method: Callable[..., None], *args: Any) -> Callable[[SourceResult], None]:
    def step(out: SourceResult) -> None:
        method(*args, out)
    return step


def _describe(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.Error):
        return f"vulnerability DB: {exc}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return str(exc)


@contextlib.contextmanager
def progress_bar(enabled: bool, color: bool) -> Iterator[Reporter]:
    """A Reporter with a rich bar on stderr when ``enabled`` (a terminal)."""
    if not enabled:
        yield Reporter()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[detail]}"),
                  console=Console(stderr=True, no_color=not color), transient=True) as bar:
        yield Reporter(bar)
