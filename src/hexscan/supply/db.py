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
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sqlite3
import sys
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from hexscan.errors import HexError
from hexscan.supply.records import (
    Advisory,
    EpssScore,
    KevEntry,
    ModelHash,
    NvdCve,
    RecordError,
    SeverityVector,
)

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

_RUNS = re.compile(r"[-_.]+")


class VulnDBError(HexError):
    """The vulnerability DB cannot be read, updated, imported or exported."""


def db_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / DB_NAME


def now_utc() -> str:
    """An RFC 3339 UTC timestamp with second precision (what every *_at column holds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ecosystem_key(ecosystem: str) -> str:
    """OSV ecosystem names compared without case ("PyPI" and "pypi" are one ecosystem)."""
    return ecosystem.strip().lower()


def normalise_name(ecosystem: str, name: str) -> str:
    """A package name as the index stores it: PEP 503 for PyPI, unchanged elsewhere."""
    name = name.strip()
    if ecosystem_key(ecosystem) == "pypi":
        return _RUNS.sub("-", name).lower()
    return name


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

def _pack(obj: Any) -> bytes:
    return zlib.compress(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def _unpack(blob: bytes) -> Any:
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
            key = (ecosystem_key(aff.ecosystem), normalise_name(aff.ecosystem, aff.name))
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


# --- reading -----------------------------------------------------------------------------

def _connect_ro(path: Path) -> sqlite3.Connection:
    """Open ``path`` read-only: sqlite refuses every write and creates no journal."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                           check_same_thread=False)


def _schema_version(conn: sqlite3.Connection) -> int | None:
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
                conn = _connect_ro(path)
                version = _schema_version(conn)
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
        key = (ecosystem_key(ecosystem), normalise_name(ecosystem, name))
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
        return nvd_from_json(_unpack(rows[0][0])) if rows else None

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


# --- writing -----------------------------------------------------------------------------

class _FileLock:
    """An exclusive, non-blocking lock on a file; the OS drops it if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise VulnDBError(f"another `hex vulnfetch` is updating {self.path.parent} "
                              "right now; try again when it has finished") from exc
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops flock/msvcrt locks
            self.fd = None


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_file(path: Path) -> None:
    """Raise VulnDBError unless ``path`` is an intact hex vulnerability DB of this schema."""
    try:
        conn = _connect_ro(path)
    except sqlite3.Error as exc:
        raise VulnDBError(f"{path}: cannot open as SQLite: {exc}") from exc
    try:
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise VulnDBError(f"{path}: not a hex vulnerability DB (missing tables: "
                              f"{', '.join(missing)})")
        version = _schema_version(conn)
        if version != SCHEMA_VERSION:
            raise VulnDBError(f"{path}: schema version {version}, this hex reads "
                              f"{SCHEMA_VERSION}")
        _integrity(conn, path)
    except sqlite3.Error as exc:
        raise VulnDBError(f"{path}: {exc}") from exc
    finally:
        conn.close()


def _integrity(conn: sqlite3.Connection, path: Path) -> None:
    result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise VulnDBError(f"{path}: integrity check failed: {'; '.join(result[:3])}")
    bad = conn.execute("PRAGMA foreign_key_check").fetchall()
    if bad:
        raise VulnDBError(f"{path}: {len(bad)} dangling rows (foreign_key_check)")


class VulnDBWriter:
    """One atomic update of the DB: a context manager around a private copy.

    On a clean exit the copy is checked and swapped in; on any exception it is deleted and
    the DB on disk is exactly what it was. Only one writer per HEX_HOME at a time.
    """

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self.path = db_path(self.home)
        self.tmp = self.home / f"{TMP_PREFIX}{os.getpid()}"
        self._lock = _FileLock(self.home / LOCK_NAME)
        self.conn: sqlite3.Connection | None = None
        #: Why the update started from an empty DB instead of a copy (None when copied).
        self.reset_reason: str | None = None

    # context management ---------------------------------------------------------------
    def __enter__(self) -> VulnDBWriter:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except OSError as exc:
            raise VulnDBError(f"cannot write under {self.home}: {exc}") from exc
        try:
            self._start()
        except BaseException:
            self._abort()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._commit()
        except BaseException:
            self._abort()
            raise

    def _start(self) -> None:
        for stale in self.home.glob(TMP_PREFIX + "*"):  # left by a killed update
            stale.unlink(missing_ok=True)
        if self.path.is_file():
            try:
                check_version = _connect_ro(self.path)
                try:
                    version = _schema_version(check_version)
                    if version == SCHEMA_VERSION:
                        dest = sqlite3.connect(self.tmp)
                        check_version.backup(dest)
                        dest.close()
                    else:
                        self.reset_reason = f"schema version {version} is not {SCHEMA_VERSION}"
                finally:
                    check_version.close()
            except sqlite3.Error as exc:
                self.reset_reason = f"the existing DB is unreadable ({exc})"
                self.tmp.unlink(missing_ok=True)
        self.conn = sqlite3.connect(self.tmp, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = MEMORY")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("PRAGMA foreign_keys = ON")
        tables = {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.conn.execute("BEGIN")
        if "meta" not in tables:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?), "
                              "('created_at', ?)", (str(SCHEMA_VERSION), now_utc()))

    def _commit(self) -> None:
        from hexscan import __version__

        conn = self._db()
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('built_at', ?), ('hex_version', ?)",
                     (now_utc(), __version__))
        conn.execute("COMMIT")
        _integrity(conn, self.tmp)
        conn.close()
        self.conn = None
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)
        _fsync(self.home)
        self._lock.release()

    def _abort(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None
        self.tmp.unlink(missing_ok=True)
        self._lock.release()

    def _db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise VulnDBError("the update is not open")
        return self.conn

    # sources ----------------------------------------------------------------------------
    def source(self, name: str) -> SourceInfo | None:
        row = self._db().execute("SELECT name, url, etag, last_modified, fetched_at, cursor, "
                                 "record_count FROM source WHERE name = ?", (name,)).fetchone()
        return SourceInfo(*row) if row else None

    def set_source(self, name: str, *, url: str | None, etag: str | None,
                   last_modified: str | None, cursor: str | None,
                   record_count: int | None) -> None:
        self._db().execute("INSERT OR REPLACE INTO source VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (name, url, etag, last_modified, now_utc(), cursor, record_count))

    def touch_source(self, name: str) -> None:
        """The feed answered "not modified": the data is current as of now."""
        self._db().execute("UPDATE source SET fetched_at = ? WHERE name = ?",
                           (now_utc(), name))

    def count(self, table: str, where: str = "", args: Iterable[Any] = ()) -> int:
        if table not in TABLES:
            raise ValueError(table)
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")  # noqa: S608
        return int(self._db().execute(sql, tuple(args)).fetchone()[0])

    # advisories -------------------------------------------------------------------------
    def replace_advisories(self, source: str, items: Iterable[tuple[Advisory, bytes]]) -> int:
        """Make ``items`` the whole content of ``source`` (a full download)."""
        conn = self._db()
        ids = [r[0] for r in conn.execute("SELECT id FROM advisory WHERE source = ?",
                                          (source,))]
        self._delete_advisories(ids)
        return self.upsert_advisories(source, items)

    def upsert_advisories(self, source: str, items: Iterable[tuple[Advisory, bytes]]) -> int:
        """Insert or replace advisories by id; returns how many were written."""
        conn = self._db()
        written = 0
        for adv, raw in items:
            self._delete_advisories([adv.id])
            conn.execute("INSERT INTO advisory VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (adv.id, source, adv.modified, adv.published, adv.withdrawn,
                          adv.summary, adv.details, zlib.compress(raw)))
            conn.executemany("INSERT OR IGNORE INTO alias VALUES (?, ?)",
                             [(adv.id, a) for a in adv.aliases])
            conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?)", [
                (adv.id, ecosystem_key(a.ecosystem), normalise_name(a.ecosystem, a.name),
                 a.purl, json.dumps([[r.type, [[e.kind, e.version] for e in r.events]]
                                     for r in a.ranges]), json.dumps(list(a.versions)))
                for a in adv.affected])
            conn.executemany("INSERT INTO severity VALUES (?, ?, ?, ?)",
                             [(adv.id, s.origin, s.type, s.vector) for s in adv.severity])
            conn.executemany("INSERT OR IGNORE INTO cwe VALUES (?, 'osv', ?)",
                             [(adv.id, c) for c in adv.cwes])
            written += 1
        return written

    def _delete_advisories(self, ids: list[str]) -> None:
        conn = self._db()
        listed = (json.dumps(ids),)
        for sql in ("DELETE FROM severity WHERE origin = 'osv' AND record_id IN "
                    "(SELECT value FROM json_each(?))",
                    "DELETE FROM cwe WHERE origin = 'osv' AND record_id IN "
                    "(SELECT value FROM json_each(?))",
                    "DELETE FROM advisory WHERE id IN (SELECT value FROM json_each(?))"):
            conn.execute(sql, listed)

    def referenced_cves(self) -> set[str]:
        """CVE ids some advisory (fetched or embedded) is about: what NVD data is kept for."""
        conn = self._db()
        cves = {r[0] for r in conn.execute("SELECT alias FROM alias WHERE alias LIKE 'CVE-%'")}
        cves |= {r[0] for r in conn.execute("SELECT id FROM advisory WHERE id LIKE 'CVE-%'")}
        with contextlib.suppress(VulnDBError):
            cves |= {c for c in load_curated().by_alias if c.startswith("CVE-")}
        return cves

    # enrichment -------------------------------------------------------------------------
    def upsert_nvd(self, records: Iterable[NvdCve]) -> int:
        conn = self._db()
        written = 0
        for rec in records:
            self.delete_nvd([rec.cve])
            conn.execute("INSERT INTO nvd_cve VALUES (?, ?, ?, ?)",
                         (rec.cve, rec.last_modified, rec.vuln_status, _pack(nvd_to_json(rec))))
            conn.executemany("INSERT INTO severity VALUES (?, ?, ?, ?)",
                             [(rec.cve, v.origin, v.type, v.vector) for v in rec.vectors])
            conn.executemany("INSERT OR IGNORE INTO cwe VALUES (?, 'nvd', ?)",
                             [(rec.cve, c) for c in rec.cwes])
            written += 1
        return written

    def delete_nvd(self, cves: Iterable[str]) -> None:
        conn = self._db()
        for cve in cves:
            conn.execute("DELETE FROM nvd_cve WHERE cve = ?", (cve,))
            conn.execute("DELETE FROM severity WHERE record_id = ? AND origin LIKE 'nvd%'",
                         (cve,))
            conn.execute("DELETE FROM cwe WHERE record_id = ? AND origin = 'nvd'", (cve,))

    def clear_nvd(self) -> None:
        conn = self._db()
        conn.execute("DELETE FROM nvd_cve")
        conn.execute("DELETE FROM severity WHERE origin LIKE 'nvd%'")
        conn.execute("DELETE FROM cwe WHERE origin = 'nvd'")

    def replace_epss(self, scores: Iterable[EpssScore]) -> int:
        conn = self._db()
        conn.execute("DELETE FROM epss")
        conn.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?, ?, ?)",
                         ((s.cve, s.epss, s.percentile, s.score_date, s.model_version)
                          for s in scores))
        return self.count("epss")

    def replace_kev(self, entries: Iterable[KevEntry]) -> int:
        conn = self._db()
        conn.execute("DELETE FROM kev")
        conn.executemany("INSERT OR REPLACE INTO kev VALUES (?, ?, ?, ?, ?, ?, ?)",
                         ((k.cve, k.date_added, k.due_date, k.ransomware, k.vendor, k.product,
                           k.name) for k in entries))
        return self.count("kev")

    def replace_model_hashes(self, entries: Iterable[ModelHash]) -> int:
        conn = self._db()
        conn.execute("DELETE FROM model_hash")
        conn.executemany("INSERT OR REPLACE INTO model_hash VALUES (?, ?, ?, ?, ?, ?)",
                         ((m.sha256, m.size, m.name, m.reason, m.reference, m.added)
                          for m in entries))
        return self.count("model_hash")


# --- air-gapped transfer -----------------------------------------------------------------

def export_db(home: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Write a consistent copy of the DB to ``dest`` (the SQLite backup API, read-only)."""
    src_path = db_path(home)
    if not src_path.is_file():
        raise VulnDBError(f"there is no vulnerability DB at {src_path}; run "
                          "`hex vulnfetch fetch` first")
    dest = Path(dest)
    partial = dest.with_name(dest.name + f".part-{os.getpid()}")
    try:
        src = _connect_ro(src_path)
        try:
            out = sqlite3.connect(partial)
            try:
                src.backup(out)
            finally:
                out.close()
        finally:
            src.close()
        check_file(partial)
        os.replace(partial, dest)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise VulnDBError(f"cannot export to {dest}: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return dest


def import_db(home: str | os.PathLike[str], src: str | os.PathLike[str]) -> Path:
    """Replace the DB with the exported file ``src`` after checking it, atomically."""
    src = Path(src)
    check_file(src)
    home = Path(home)
    target, tmp = db_path(home), home / f"{TMP_PREFIX}{os.getpid()}"
    lock = _FileLock(home / LOCK_NAME)
    try:
        home.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        try:
            conn = _connect_ro(src)
            try:
                out = sqlite3.connect(tmp)
                try:
                    conn.backup(out)
                finally:
                    out.close()
            finally:
                conn.close()
            check_file(tmp)
            _fsync(tmp)
            os.replace(tmp, target)
            _fsync(home)
        finally:
            tmp.unlink(missing_ok=True)
            lock.release()
    except (sqlite3.Error, OSError) as exc:
        raise VulnDBError(f"cannot import {src}: {exc}") from exc
    return target
