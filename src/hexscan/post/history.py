"""The findings history: which findings of a target are new since its previous scan.

One SQLite file, ``<HEX_HOME>/history.sqlite`` (directories created 0700, the file 0600,
WAL journal), holds every recorded scan and its findings by fingerprint. A scan's target is
identified by ``target_key``: the real absolute paths of its targets, sorted, one per line,
so ``hex scan models`` and ``hex scan ./models/`` are the same target while a moved or
renamed tree starts a history of its own.

Recording a scan is one ``BEGIN IMMEDIATE`` transaction (compare with the previous scan of
the target, then insert), so concurrent scans queue on the lock (``busy_timeout``) instead
of interleaving, and a scan either is recorded whole or not at all.

Statuses and counts:

* a finding is ``existing`` when its fingerprint was in the previous scan of the target,
  else ``new``; an existing finding keeps its ``first_seen``;
* ``new`` / ``existing`` count unsuppressed findings of every severity (``--severity``
  only filters what is shown, the history records everything); a suppressed finding gets
  a status too, so its age is known when the suppression ends, and is recorded with
  ``suppressed = 1``, but it is not counted;
* ``fixed`` counts the unsuppressed findings of the previous scan whose fingerprint is
  gone now. A finding that merely became suppressed is still there, so it is not fixed.

The history is a convenience, never a reason for a scan to fail: a store that cannot be
opened, is corrupt or is locked for too long becomes a report warning, and the findings
keep no status.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hexscan.config import ScanConfig
from hexscan.model.report import HistorySummary, ScanReport
from hexscan.model.severity import Severity

DB_NAME = "history.sqlite"
SCHEMA_VERSION = 1
#: How long a scan waits for another one holding the write lock (milliseconds).
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = (
    """CREATE TABLE scans (
        id TEXT PRIMARY KEY,
        target_key TEXT NOT NULL,
        target TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        hex_version TEXT NOT NULL,
        counts TEXT NOT NULL,
        complete INTEGER NOT NULL)""",
    "CREATE INDEX scans_by_target ON scans (target_key)",
    """CREATE TABLE findings (
        scan_id TEXT NOT NULL REFERENCES scans (id),
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        severity TEXT NOT NULL,
        rel_path TEXT NOT NULL,
        member TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        suppressed INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scan_id, fingerprint))""",
)


class HistoryError(Exception):
    """The store exists but cannot be used (e.g. written by a newer hex)."""


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One recorded scan, as ``hex history`` lists it."""

    id: str
    target_key: str
    target: str
    started: str
    finished: str
    hex_version: str
    counts: dict[str, int]
    complete: bool

    @property
    def paths(self) -> list[str]:
        return self.target_key.split("\n")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "paths": self.paths,
                "started": self.started, "finished": self.finished,
                "hex_version": self.hex_version, "complete": self.complete,
                "counts": self.counts}


def db_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / DB_NAME


def target_key(roots: Iterable[str]) -> str:
    """The stable identity of a scan target: sorted real absolute paths, one per line."""
    return "\n".join(sorted({os.path.realpath(r) for r in roots}))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _make_private_dirs(path: Path) -> None:
    """Create ``path`` and missing parents as 0700; existing directories are left alone."""
    missing = []
    for parent in (path, *path.parents):
        if parent.is_dir():
            break
        missing.append(parent)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass  # another scan created it meanwhile


@contextmanager
def open_store(home: str, create: bool) -> Iterator[sqlite3.Connection | None]:
    """A connection to the store (None when it does not exist and ``create`` is false)."""
    path = db_path(home)
    if not create and not path.is_file():
        yield None
        return
    if create:
        _make_private_dirs(path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
        _ensure_schema(conn)
        yield conn
    finally:
        conn.close()


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front, so the read-compare-write of a
    scan cannot interleave with another scan's; any error rolls everything back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def _ensure_schema(conn: sqlite3.Connection) -> None:
    with _write_transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise HistoryError(f"schema version {row[0]}, this hex reads version "
                               f"{SCHEMA_VERSION}")


def _delete_scans(conn: sqlite3.Connection, key: str | None) -> int:
    where, args = ("WHERE target_key = ?", (key,)) if key is not None else ("", ())
    conn.execute(f"DELETE FROM findings WHERE scan_id IN (SELECT id FROM scans {where})",  # noqa: S608
                 args)
    return conn.execute(f"DELETE FROM scans {where}", args).rowcount  # noqa: S608


def _previous(conn: sqlite3.Connection, key: str) -> tuple[str | None, dict[str, tuple[Any, ...]]]:
    row = conn.execute("SELECT id FROM scans WHERE target_key = ? ORDER BY rowid DESC LIMIT 1",
                       (key,)).fetchone()
    if row is None:
        return None, {}
    rows = conn.execute(
        "SELECT fingerprint, rule_id, severity, rel_path, member, first_seen, suppressed "
        "FROM findings WHERE scan_id = ?", (row[0],))
    return row[0], {r[0]: r[1:] for r in rows}


def record(conn: sqlite3.Connection, report: ScanReport, clear: bool
           ) -> tuple[HistorySummary, dict[str, str]]:
    """Compare with the previous scan of the target and record this one, atomically.

    Returns the summary and the status of every fingerprint of the report.
    """
    key = target_key(report.roots)
    now = _now()
    with _write_transaction(conn):
        if clear:
            _delete_scans(conn, key)
        previous_id, before = _previous(conn, key)
        status = {f.fingerprint: "existing" if f.fingerprint in before else "new"
                  for f in report.findings}
        counted = [f for f in report.findings if f.suppression is None]
        tally = Counter(status[f.fingerprint] for f in counted)
        fixed = sorted(
            ({"fingerprint": fp, "rule_id": r[0], "severity": r[1], "rel_path": r[2],
              "member": r[3]} for fp, r in before.items() if not r[5] and fp not in status),
            key=lambda x: (x["rel_path"], x["member"] or "", x["rule_id"], x["fingerprint"]))
        summary = HistorySummary(new=tally["new"], existing=tally["existing"], fixed=len(fixed),
                                 previous_scan_id=previous_id, fixed_findings=tuple(fixed))
        severities = Counter(f.effective_severity.name.lower() for f in counted)
        counts = {s.name.lower(): severities[s.name.lower()] for s in sorted(Severity,
                                                                              reverse=True)}
        counts.update(suppressed=len(report.findings) - len(counted), new=summary.new,
                      existing=summary.existing, fixed=summary.fixed)
        conn.execute("INSERT INTO scans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (report.scan_id, key, report.target, report.timestamp, now,
                      report.version, json.dumps(counts), int(report.complete)))
        conn.executemany(
            "INSERT OR IGNORE INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(report.scan_id, f.fingerprint, f.rule.id, f.effective_severity.name,
              f.rel_path, f.member, before[f.fingerprint][4] if f.fingerprint in before
              else now, now, int(f.suppression is not None)) for f in report.findings])
    return summary, status


def apply(report: ScanReport, config: ScanConfig) -> ScanReport:
    """Mark findings new / existing and record the scan; a broken store is a warning."""
    if not config.history:
        return report
    try:
        with open_store(config.home, create=True) as conn:
            assert conn is not None
            summary, status = record(conn, report, config.clear)
    except (sqlite3.Error, OSError, HistoryError) as exc:
        warning = (f"history store {db_path(config.home)} could not be used ({exc}); "
                   "findings are not marked new or existing. Move the file away to start "
                   "a new history.")
        return replace(report, warnings=(*report.warnings, warning))
    return replace(report, history=summary, findings=tuple(
        replace(f, status=status[f.fingerprint]) for f in report.findings))


def list_scans(home: str, target: str | None = None, limit: int | None = None
               ) -> list[ScanRow]:
    """Recorded scans, newest first; ``target`` keeps the scans that include that path."""
    with open_store(home, create=False) as conn:
        if conn is None:
            return []
        sql = ("SELECT id, target_key, target, started, finished, hex_version, counts, "
               "complete FROM scans")
        args: list[Any] = []
        if target is not None:
            sql += (" WHERE instr(char(10) || target_key || char(10), "
                    "char(10) || ? || char(10)) > 0")
            args.append(os.path.realpath(target))
        sql += " ORDER BY rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [ScanRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), bool(r[7]))
                for r in conn.execute(sql, args)]


def forget(home: str, target: str | None = None) -> int:
    """Delete the recorded scans of ``target`` (every scan when None); how many went."""
    with open_store(home, create=False) as conn:
        if conn is None:
            return 0
        with _write_transaction(conn):
            if target is None:
                count = _delete_scans(conn, None)
            else:
                keys = [r[0] for r in conn.execute(
                    "SELECT DISTINCT target_key FROM scans WHERE instr(char(10) || "
                    "target_key || char(10), char(10) || ? || char(10)) > 0",
                    (os.path.realpath(target),))]
                count = sum(_delete_scans(conn, k) for k in keys)
    return count
