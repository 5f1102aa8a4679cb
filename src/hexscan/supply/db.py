"""The local vulnerability DB: one SQLite file under HEX_HOME, read-only while scanning.

Why SQLite and why this shape:

- a scan opens ``<HEX_HOME>/vulndb.sqlite`` with ``mode=ro`` and never writes or fetches,
  so air-gapped and CI scans are reproducible and a scan cannot corrupt the store;
- an update (``hex vulnfetch``) works on a private copy, ``vulndb.sqlite.tmp-<pid>``, checks
  it with ``PRAGMA integrity_check`` and swaps it in with ``os.replace``: a scan sees the
  old file or the new one, never half of an update, and a failed fetch leaves the old DB
  byte-identical. A lock file keeps two updates from racing;
- every advisory keeps its upstream OSV JSON (zlib) so a later hex can re-parse it; the
  other tables are indexes for the look-ups the matcher makes;
- a curated set of advisories, KEV entries and model hashes ships inside the package, so a
  scan without any fetched DB still knows the most important model-loading CVEs. A record
  of the fetched DB wins over a curated record with the same id.

This module holds the schema and the reader (VulnDB); hexscan.supply.db_write the updater,
export and import; hexscan.supply.curated the shipped set.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hexscan.errors import VulnDBError
from hexscan.supply.curated import Curated, load_curated
from hexscan.supply.records import (
    Advisory,
    EpssScore,
    KevEntry,
    ModelHash,
    NvdCve,
    SeverityVector,
)
from hexscan.supply.versions import ecosystem_key, normalise

SCHEMA_VERSION = 1
DB_NAME = "vulndb.sqlite"
LOCK_NAME = "vulndb.lock"
TMP_PREFIX = DB_NAME + ".tmp-"
#: Tables an importable DB must have.
TABLES = ("meta", "source", "advisory", "alias", "affected", "severity", "cwe", "nvd_cve",
          "epss", "kev", "model_hash")

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE source(name TEXT PRIMARY KEY, url TEXT, etag TEXT, last_modified TEXT,
  fetched_at TEXT NOT NULL, cursor TEXT, record_count INTEGER);
CREATE TABLE advisory(id TEXT PRIMARY KEY, source TEXT NOT NULL, modified TEXT NOT NULL,
  published TEXT, withdrawn TEXT, summary TEXT, details TEXT, raw BLOB NOT NULL);
CREATE INDEX advisory_by_source ON advisory(source);
CREATE TABLE alias(advisory_id TEXT NOT NULL REFERENCES advisory(id) ON DELETE CASCADE,
  alias TEXT NOT NULL, PRIMARY KEY(advisory_id, alias));
CREATE INDEX alias_by_alias ON alias(alias);
CREATE TABLE affected(advisory_id TEXT NOT NULL REFERENCES advisory(id) ON DELETE CASCADE,
  ecosystem TEXT NOT NULL, name TEXT NOT NULL, purl TEXT, ranges TEXT NOT NULL,
  versions TEXT NOT NULL);
CREATE INDEX affected_pkg ON affected(ecosystem, name);
CREATE INDEX affected_by_advisory ON affected(advisory_id);
CREATE TABLE severity(record_id TEXT NOT NULL, origin TEXT NOT NULL, type TEXT NOT NULL,
  vector TEXT NOT NULL);
CREATE INDEX severity_by_record ON severity(record_id);
CREATE TABLE cwe(record_id TEXT NOT NULL, origin TEXT NOT NULL, cwe TEXT NOT NULL,
  PRIMARY KEY(record_id, origin, cwe));
CREATE TABLE nvd_cve(cve TEXT PRIMARY KEY, last_modified TEXT, vuln_status TEXT,
  raw BLOB NOT NULL);
CREATE TABLE epss(cve TEXT PRIMARY KEY, epss REAL NOT NULL, percentile REAL NOT NULL,
  score_date TEXT NOT NULL, model_version TEXT NOT NULL);
CREATE TABLE kev(cve TEXT PRIMARY KEY, date_added TEXT NOT NULL, due_date TEXT,
  ransomware TEXT, vendor TEXT, product TEXT, name TEXT);
CREATE TABLE model_hash(sha256 TEXT PRIMARY KEY, size INTEGER, name TEXT, reason TEXT,
  reference TEXT, added TEXT);
"""



def db_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / DB_NAME


def now_utc() -> str:
    """An RFC 3339 UTC timestamp with second precision (what every *_at column holds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SourceInfo:
    """One row of the ``source`` table: where a feed came from and how far it got."""

    name: str
    url: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: str
    cursor: str | None
    record_count: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- (de)serialising the records the DB keeps as JSON ------------------------------------

def pack(obj: Any) -> bytes:
    return zlib.compress(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def nvd_to_json(rec: NvdCve) -> dict[str, Any]:
    return asdict(rec)


def nvd_from_json(obj: dict[str, Any]) -> NvdCve:
    return NvdCve(
        cve=obj["cve"], last_modified=obj["last_modified"], published=obj.get("published"),
        vuln_status=obj.get("vuln_status"), description=obj.get("description") or "",
        vectors=tuple(SeverityVector(v["type"], v["vector"], v.get("origin", "nvd-primary"))
                      for v in obj.get("vectors") or ()),
        cwes=tuple(obj.get("cwes") or ()), references=tuple(obj.get("references") or ()))


# --- reading -----------------------------------------------------------------------------

def connect_ro(path: Path) -> sqlite3.Connection:
    """Open ``path`` read-only: sqlite refuses every write and creates no journal."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                           check_same_thread=False)


def schema_version_of(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else None
    except (TypeError, ValueError):
        return None


class VulnDB:
    """Read access to the fetched DB (when there is one) merged with the curated set.

    Never fetches and never writes. Problems with the DB file (corrupt, from a newer hex)
    do not stop a scan: the DB is ignored and ``warnings`` says why.
    """

    def __init__(self, home: str | None, conn: sqlite3.Connection | None, curated: Curated,
                 warnings: tuple[str, ...] = ()) -> None:
        self.home = home
        self.path = db_path(home) if home else None
        self._conn = conn
        self._curated = curated
        self.warnings = warnings
        self._cache: dict[str, Advisory] = {}

    @classmethod
    def open(cls, home: str | None) -> VulnDB:
        warnings: list[str] = []
        try:
            curated = load_curated()
        except VulnDBError as exc:
            curated, warnings = Curated.empty(), [str(exc)]
        conn = None
        path = db_path(home) if home else None
        if path is not None and path.is_file():
            try:
                conn = connect_ro(path)
                version = schema_version_of(conn)
                if version != SCHEMA_VERSION:
                    raise VulnDBError(f"vulnerability DB {path} has schema {version}, this hex "
                                      f"reads {SCHEMA_VERSION}; run `hex vulnfetch fetch`")
            except (sqlite3.Error, VulnDBError) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                msg = str(exc) if isinstance(exc, VulnDBError) else \
                    f"vulnerability DB {path} is unreadable ({exc}); run `hex vulnfetch fetch`"
                warnings.append(msg + "; using the embedded advisories only")
        return cls(home, conn, curated, tuple(warnings))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (e.g. to a worker process) as "open the same home again"."""
        return (VulnDB.open, (self.home,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def has_db(self) -> bool:
        return self._conn is not None

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        if self._conn is None:
            return []
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise VulnDBError(f"vulnerability DB {self.path}: {exc}") from exc

    def _advisory_from_raw(self, ident: str, raw: bytes) -> Advisory:
        from hexscan.supply.feeds.osv import parse_osv

        cached = self._cache.get(ident)
        if cached is None:
            try:
                cached = parse_osv(json.loads(zlib.decompress(raw)))
            except (zlib.error, ValueError) as exc:
                raise VulnDBError(f"vulnerability DB {self.path}: advisory {ident}: "
                                  f"{exc}") from exc
            self._cache[ident] = cached
        return cached

    def _db_ids(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        if not ids or self._conn is None:
            return set()
        return {r[0] for r in self._rows(
            "SELECT id FROM advisory WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),))}

    def _merge(self, rows: list[Any], curated_ids: Iterable[str]) -> list[Advisory]:
        found = {ident: self._advisory_from_raw(ident, raw) for ident, raw in rows}
        curated_ids = [i for i in curated_ids if i not in found]
        overridden = self._db_ids(curated_ids)
        for ident in curated_ids:
            if ident not in overridden:
                found[ident] = self._curated.advisories[ident]
        return [found[k] for k in sorted(found)]

    def advisories_for(self, ecosystem: str, name: str) -> list[Advisory]:
        """Every advisory naming this package, withdrawn ones included (the matcher skips
        them), sorted by id."""
        key = (ecosystem_key(ecosystem), normalise(ecosystem, name))
        rows = self._rows("SELECT DISTINCT a.id, a.raw FROM affected f JOIN advisory a "
                          "ON a.id = f.advisory_id WHERE f.ecosystem = ? AND f.name = ?", key)
        return self._merge(rows, self._curated.by_package.get(key, ()))

    def advisory(self, ident: str) -> Advisory | None:
        found = self._merge(self._rows("SELECT id, raw FROM advisory WHERE id = ?", (ident,)),
                            (ident,) if ident in self._curated.advisories else ())
        return found[0] if found else None

    def by_alias(self, alias: str) -> list[Advisory]:
        """Advisories whose id is ``alias`` or that list it among their aliases."""
        rows = self._rows("SELECT id, raw FROM advisory WHERE id = ? OR id IN "
                          "(SELECT advisory_id FROM alias WHERE alias = ?)", (alias, alias))
        return self._merge(rows, self._curated.by_alias.get(alias, ()))

    def nvd(self, cve: str) -> NvdCve | None:
        rows = self._rows("SELECT raw FROM nvd_cve WHERE cve = ?", (cve,))
        return nvd_from_json(unpack(rows[0][0])) if rows else None

    def epss(self, cve: str) -> EpssScore | None:
        rows = self._rows("SELECT cve, epss, percentile, score_date, model_version FROM epss "
                          "WHERE cve = ?", (cve,))
        return EpssScore(*rows[0]) if rows else None

    def kev(self, cve: str) -> KevEntry | None:
        rows = self._rows("SELECT cve, date_added, due_date, ransomware, vendor, product, name "
                          "FROM kev WHERE cve = ?", (cve,))
        return KevEntry(*rows[0]) if rows else self._curated.kev.get(cve)

    def model_hash(self, sha256: str) -> ModelHash | None:
        digest = sha256.lower()
        rows = self._rows("SELECT sha256, size, name, reason, reference, added FROM model_hash "
                          "WHERE sha256 = ?", (digest,))
        if rows:
            sha, size, name, reason, reference, added = rows[0]
            return ModelHash(sha, size, name or "", reason or "", reference, added)
        return self._curated.model_hashes.get(digest)

    def model_hash_sizes(self) -> tuple[frozenset[int], bool]:
        """The sizes of known-bad model files, and whether some entry has no size (then a
        size cannot rule a file out and only hashing tells)."""
        sizes = [r[0] for r in self._rows("SELECT DISTINCT size FROM model_hash")]
        sizes += [m.size for m in self._curated.model_hashes.values()]
        return frozenset(s for s in sizes if s is not None), any(s is None for s in sizes)

    def sources(self) -> dict[str, SourceInfo]:
        rows = self._rows("SELECT name, url, etag, last_modified, fetched_at, cursor, "
                          "record_count FROM source ORDER BY name")
        return {r[0]: SourceInfo(*r) for r in rows}

    def meta(self) -> dict[str, str]:
        return dict(self._rows("SELECT key, value FROM meta"))

    def built_at(self) -> str | None:
        """When the fetched DB was last updated; None when only the embedded set exists."""
        return self.meta().get("built_at") if self._conn is not None else None

    def embedded_generated(self) -> str:
        return self._curated.generated

    def counts(self) -> dict[str, int]:
        """Rows per data table of the fetched DB (all zero without one)."""
        out = {}
        for table in ("advisory", "nvd_cve", "epss", "kev", "model_hash"):
            rows = self._rows(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            out[table] = rows[0][0] if rows else 0
        return out

    def embedded_counts(self) -> dict[str, int]:
        return {"advisory": len(self._curated.advisories), "kev": len(self._curated.kev),
                "model_hash": len(self._curated.model_hashes)}
