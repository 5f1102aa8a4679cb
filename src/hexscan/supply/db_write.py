"""Writing the vulnerability DB: the atomic updater, the lock, export and import.

Every update works on a private copy of ``vulndb.sqlite``, checks it and swaps it in with
``os.replace``; see hexscan.supply.db for why.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hexscan.errors import VulnDBError
from hexscan.supply.curated import load_curated
from hexscan.supply.db import (
    LOCK_NAME,
    SCHEMA,
    SCHEMA_VERSION,
    TABLES,
    TMP_PREFIX,
    SourceInfo,
    connect_ro,
    db_path,
    now_utc,
    nvd_to_json,
    pack,
    schema_version_of,
)
from hexscan.supply.records import (
    Advisory,
    EpssScore,
    KevEntry,
    ModelHash,
    NvdCve,
)
from hexscan.supply.versions import ecosystem_key, normalise

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
        conn = connect_ro(path)
    except sqlite3.Error as exc:
        raise VulnDBError(f"{path}: cannot open as SQLite: {exc}") from exc
    try:
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise VulnDBError(f"{path}: not a hex vulnerability DB (missing tables: "
                              f"{', '.join(missing)})")
        version = schema_version_of(conn)
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
                check_version = connect_ro(self.path)
                try:
                    version = schema_version_of(check_version)
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
                (adv.id, ecosystem_key(a.ecosystem), normalise(a.ecosystem, a.name),
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
                         (rec.cve, rec.last_modified, rec.vuln_status, pack(nvd_to_json(rec))))
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
        src = connect_ro(src_path)
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
            conn = connect_ro(src)
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
