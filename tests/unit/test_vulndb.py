"""The vulnerability DB store and the OSV / model-hash parsers, without a network.

The DB tests write real SQLite files through VulnDBWriter and read them back through the
read-only VulnDB, the way a fetch and a scan do.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hexscan.errors import VulnDBError
from hexscan.supply import db as dbmod
from hexscan.supply.curated import parse_curated
from hexscan.supply.db import VulnDB
from hexscan.supply.db_write import VulnDBWriter, export_db, import_db
from hexscan.supply.feeds import osv
from hexscan.supply.feeds.http import FeedError
from hexscan.supply.feeds.models import parse_models
from hexscan.supply.records import (
    EpssScore,
    KevEntry,
    ModelHash,
    NvdCve,
    RecordError,
    SeverityVector,
)

TORCH_GHSA = "GHSA-53q9-r3pm-6pq6"
SHA_A = "a" * 64
SHA_B = "B" * 64


def record(ident: str, package: str = "hexdemo-loader", **extra: Any) -> dict[str, Any]:
    """A small, valid OSV record for ``package`` (introduced 0, fixed 1.4.0)."""
    base: dict[str, Any] = {
        "schema_version": "1.6.0", "id": ident, "modified": "2026-01-02T03:04:05Z",
        "published": "2026-01-01T00:00:00Z", "summary": f"{ident} summary",
        "affected": [{"package": {"ecosystem": "PyPI", "name": package},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "0"}, {"fixed": "1.4.0"}]}]}],
    }
    base.update(extra)
    return base


def item(obj: dict[str, Any]) -> tuple[Any, bytes]:
    raw = json.dumps(obj).encode()
    return osv.parse_osv(obj), raw


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def filled(home: Path) -> Path:
    """A DB with advisories, NVD, EPSS, KEV and model hashes in it."""
    with VulnDBWriter(home) as w:
        w.replace_advisories("osv:PyPI", [
            item(record("GHSA-hx01-aaaa-0001", aliases=["CVE-2099-10001"],
                        severity=[{"type": "CVSS_V3",
                                   "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
                                  {"type": "Ubuntu", "score": "high"}],
                        database_specific={"cwe_ids": ["CWE-502"]})),
            item(record("PYSEC-2099-2", package="Hexdemo_Utils",
                        affected=[{"package": {"ecosystem": "PyPI", "name": "Hexdemo_Utils"},
                                   "versions": ["0.9.0", "0.9.1"]}])),
            item(record("GHSA-hx03-cccc-0003", withdrawn="2026-02-01T00:00:00Z")),
        ])
        w.set_source("osv:PyPI", url="http://x/PyPI/all.zip", etag=None, last_modified=None,
                     cursor="2026-01-02T03:04:05Z", record_count=3)
        w.upsert_nvd([NvdCve("CVE-2099-10001", "2026-01-05T00:00:00.000",
                             vuln_status="Analyzed", description="desc",
                             vectors=(SeverityVector("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/"
                                                     "S:U/C:H/I:H/A:H", "nvd-primary"),),
                             cwes=("CWE-502",), references=("https://example.invalid/a",))])
        w.replace_epss([EpssScore("CVE-2099-10001", 0.5, 0.97, "2026-05-18T00:00:00Z",
                                  "v2025.03.14")])
        w.replace_kev([KevEntry("CVE-2099-10001", "2026-03-01", "2026-03-22", "Known",
                                "Hexdemo", "loader", "Hexdemo loader RCE")])
        w.replace_model_hashes([ModelHash(SHA_A, 1234, "evil.pkl", "reverse shell"),
                                ModelHash(SHA_B.lower(), None, "other.bin", "stealer")])
    return home


# --- OSV parsing --------------------------------------------------------------------------

def test_parse_osv_reads_the_fields_hex_uses_and_ignores_unknown_ones() -> None:
    adv = osv.parse_osv(record(
        "GHSA-hx01-aaaa-0001", aliases=["CVE-2099-10001"], future_field={"x": 1},
        severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/"
                   "VA:H/SC:N/SI:N/SA:N"}, {"type": "Ubuntu", "score": "medium"}],
        references=[{"type": "WEB", "url": "https://example.invalid/x"}],
        database_specific={"cwe_ids": ["CWE-502", "CWE-94"], "other": True}))
    assert adv.id == "GHSA-hx01-aaaa-0001" and adv.cve == "CVE-2099-10001"
    assert [s.type for s in adv.severity] == ["CVSS_V4"]
    assert adv.cwes == ("CWE-502", "CWE-94")
    assert adv.references == ("https://example.invalid/x",)
    (aff,) = adv.affected
    assert (aff.ecosystem, aff.name) == ("PyPI", "hexdemo-loader")
    assert [(e.kind, e.version) for e in aff.ranges[0].events] == [("introduced", "0"),
                                                                   ("fixed", "1.4.0")]


@pytest.mark.parametrize("broken, message", [
    ({"modified": "2026-01-01T00:00:00Z"}, "'id' is required"),
    ({"id": "X-1"}, "'modified' is required"),
    ({"id": "X-1", "modified": "yesterday"}, "RFC 3339"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00"}, "time zone"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00Z", "aliases": "CVE-1"}, "aliases"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "PyPI"}}]}, "'name' is required"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}]}]},
     "introduced"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
                    "ranges": [{"type": "ECOSYSTEM",
                                "events": [{"introduced": "0", "fixed": "1"}]}]}]},
     "exactly one"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [
                        {"introduced": "0"}, {"fixed": "1"}, {"last_affected": "0.9"}]}]}]},
     "last_affected"),
    ({"id": "X-1", "modified": "2026-01-01T00:00:00Z",
      "severity": [{"type": "CVSS_V3"}]}, "'score' is required"),
    ([1, 2], "expected an object"),
])
def test_parse_osv_is_strict_about_what_it_needs(broken: Any, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        osv.parse_osv(broken)


def test_affected_entry_without_a_package_is_skipped() -> None:
    adv = osv.parse_osv(record("X-1", affected=[
        {"ranges": [{"type": "GIT", "repo": "https://example.invalid/r.git",
                     "events": [{"introduced": "abc"}]}]}]))
    assert adv.affected == ()


# --- the zip and the CSV ------------------------------------------------------------------

def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_read_zip_parses_every_member(tmp_path: Path) -> None:
    path = tmp_path / "all.zip"
    path.write_bytes(make_zip({f"R-{i}.json": json.dumps(record(f"R-{i}")).encode()
                               for i in range(5)}))
    batch = osv.read_zip(str(path))
    assert sorted(a.id for a, _raw in batch.records) == [f"R-{i}" for i in range(5)]
    assert batch.rejected == []


@pytest.mark.parametrize("limits, message", [
    (osv.ZipLimits(max_members=2), "more than the limit"),
    (osv.ZipLimits(max_member_bytes=100), "over the limit"),
    (osv.ZipLimits(max_total_bytes=500), "total size"),
])
def test_read_zip_is_bounded(tmp_path: Path, limits: osv.ZipLimits, message: str) -> None:
    path = tmp_path / "all.zip"
    path.write_bytes(make_zip({f"R-{i}.json": json.dumps(record(f"R-{i}")).encode()
                               for i in range(3)}))
    with pytest.raises(FeedError, match=message):
        osv.read_zip(str(path), limits)


def test_truncated_zip_is_a_feed_error(tmp_path: Path) -> None:
    data = make_zip({f"R-{i}.json": json.dumps(record(f"R-{i}")).encode() for i in range(3)})
    path = tmp_path / "all.zip"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FeedError, match="corrupt or truncated"):
        osv.read_zip(str(path))


def test_a_zip_of_mostly_bad_records_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "all.zip"
    path.write_bytes(make_zip({"a.json": b"{not json", "b.json": b'{"id": "B"}',
                               "c.json": json.dumps(record("C")).encode()}))
    batch = osv.read_zip(str(path))
    assert [a.id for a, _ in batch.records] == ["C"] and len(batch.rejected) == 2
    with pytest.raises(FeedError, match="2 of 3 records are malformed"):
        osv.check_batch(batch, "all.zip")


def test_modified_csv_rows_and_unsafe_ids() -> None:
    rows = list(osv.parse_modified_csv(b"2026-02-01T00:00:00Z,GHSA-x\n"
                                       b"2026-01-01T00:00:00.5Z,PYSEC-1\n"))
    assert [(text, ident) for _when, text, ident in rows] == [
        ("2026-02-01T00:00:00Z", "GHSA-x"), ("2026-01-01T00:00:00.5Z", "PYSEC-1")]
    with pytest.raises(FeedError, match="expected '<modified>,<id>'"):
        list(osv.parse_modified_csv(b"2026-02-01T00:00:00Z,../../etc/passwd\n"))
    with pytest.raises(FeedError, match="RFC 3339"):
        list(osv.parse_modified_csv(b"soon,GHSA-x\n"))


# --- the model hash feed ------------------------------------------------------------------

def test_model_feed_is_parsed_strictly() -> None:
    good = parse_models(json.dumps({"models": [
        {"sha256": SHA_B, "size": 10, "name": "n", "reason": "r", "added": "2026-01-01"},
        {"sha256": SHA_A}]}).encode())
    assert good[0].sha256 == SHA_B.lower() and good[1].size is None
    for doc, message in [({"models": [{"sha256": "abc"}]}, "64 hex"),
                         ({"models": [{"sha256": SHA_A, "size": -1}]}, "non-negative"),
                         ({"models": [{"sha256": SHA_A, "name": 5}]}, "'name'"),
                         ({"hashes": []}, "'models' list")]:
        with pytest.raises(FeedError, match=message):
            parse_models(json.dumps(doc).encode())
    with pytest.raises(FeedError, match="not JSON"):
        parse_models(b"\xff")


# --- reading ------------------------------------------------------------------------------

def test_shipped_curated_set_parses_strictly() -> None:
    data = Path(dbmod.__file__).with_name("data").joinpath("curated.json").read_bytes()
    curated = parse_curated(data)
    assert curated.generated and TORCH_GHSA in curated.advisories


def test_without_a_db_only_the_embedded_set_is_used(tmp_path: Path) -> None:
    for home in (None, str(tmp_path / "nowhere")):
        db = VulnDB.open(home)
        assert not db.has_db and db.built_at() is None and db.warnings == ()
        assert db.embedded_generated()
        ids = [a.id for a in db.advisories_for("pypi", "Torch")]
        assert TORCH_GHSA in ids
        assert db.by_alias("CVE-2025-32434")[0].id == TORCH_GHSA
        assert db.sources() == {}
    assert not (tmp_path / "nowhere").exists()  # opening never creates anything


def test_lookups_by_package_alias_and_id(filled: Path) -> None:
    db = VulnDB.open(str(filled))
    assert db.has_db and db.built_at() is not None
    ids = [a.id for a in db.advisories_for("PyPI", "HexDemo_Loader")]
    assert ids == ["GHSA-hx01-aaaa-0001", "GHSA-hx03-cccc-0003"]  # withdrawn included
    assert [a.id for a in db.advisories_for("pypi", "hexdemo.utils")] == ["PYSEC-2099-2"]
    assert db.advisories_for("npm", "hexdemo-loader") == []
    adv = db.advisory("GHSA-hx01-aaaa-0001")
    assert adv is not None and adv.cwes == ("CWE-502",) and len(adv.severity) == 1
    assert [a.id for a in db.by_alias("CVE-2099-10001")] == ["GHSA-hx01-aaaa-0001"]
    nvd = db.nvd("CVE-2099-10001")
    assert nvd is not None and nvd.vectors[0].origin == "nvd-primary"
    assert nvd.cwes == ("CWE-502",)
    assert db.epss("CVE-2099-10001") == EpssScore("CVE-2099-10001", 0.5, 0.97,
                                                  "2026-05-18T00:00:00Z", "v2025.03.14")
    kev = db.kev("CVE-2099-10001")
    assert kev is not None and kev.ransomware == "Known"
    assert db.nvd("CVE-2099-99999") is None and db.epss("CVE-2099-99999") is None
    assert db.model_hash(SHA_A.upper()) == ModelHash(SHA_A, 1234, "evil.pkl", "reverse shell")
    sizes, unsized = db.model_hash_sizes()
    assert 1234 in sizes and unsized
    assert db.sources()["osv:PyPI"].cursor == "2026-01-02T03:04:05Z"
    # the embedded set is still there next to the fetched DB
    assert TORCH_GHSA in [a.id for a in db.advisories_for("PyPI", "torch")]


def test_fetched_record_overrides_the_embedded_one(home: Path) -> None:
    override = record(TORCH_GHSA, package="torch", summary="fetched copy",
                      aliases=["CVE-2025-32434"])
    with VulnDBWriter(home) as w:
        w.upsert_advisories("osv:PyPI", [item(override)])
    db = VulnDB.open(str(home))
    torch = [a for a in db.advisories_for("PyPI", "torch") if a.id == TORCH_GHSA]
    assert [a.summary for a in torch] == ["fetched copy"]
    assert [a.summary for a in db.by_alias("CVE-2025-32434") if a.id == TORCH_GHSA] == [
        "fetched copy"]
    adv = db.advisory(TORCH_GHSA)
    assert adv is not None and adv.summary == "fetched copy"


def test_scan_side_open_is_read_only(filled: Path) -> None:
    path = filled / dbmod.DB_NAME
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    db = VulnDB.open(str(filled))
    db.advisories_for("PyPI", "hexdemo-loader")
    db.kev("CVE-2099-10001")
    assert db._conn is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db._conn.execute("DELETE FROM kev")
    db.close()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in filled.iterdir()) == sorted([dbmod.DB_NAME, dbmod.LOCK_NAME])


def test_corrupt_or_foreign_db_is_ignored_with_a_warning(home: Path) -> None:
    (home / dbmod.DB_NAME).write_bytes(b"this is not sqlite" * 100)
    db = VulnDB.open(str(home))
    assert not db.has_db and "unreadable" in db.warnings[0]
    assert TORCH_GHSA in [a.id for a in db.advisories_for("PyPI", "torch")]
    with VulnDBWriter(home) as w:  # a fetch repairs it by starting afresh
        assert w.reset_reason and "unreadable" in w.reset_reason
    assert VulnDB.open(str(home)).has_db


def test_newer_schema_is_ignored_with_a_warning(filled: Path) -> None:
    conn = sqlite3.connect(filled / dbmod.DB_NAME)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    db = VulnDB.open(str(filled))
    assert not db.has_db and "schema 99" in db.warnings[0]


# --- writing ------------------------------------------------------------------------------

def test_a_failed_update_leaves_the_db_byte_identical(filled: Path) -> None:
    path = filled / dbmod.DB_NAME
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="network gone"), VulnDBWriter(filled) as w:
        w.replace_advisories("osv:PyPI", [])
        w.replace_kev([])
        assert w.tmp.exists()
        raise RuntimeError("network gone")
    assert path.read_bytes() == before
    assert not list(filled.glob(dbmod.TMP_PREFIX + "*"))
    assert [a.id for a in VulnDB.open(str(filled)).advisories_for("PyPI", "hexdemo-loader")]


def test_full_replace_drops_records_no_longer_published(filled: Path) -> None:
    with VulnDBWriter(filled) as w:
        w.replace_advisories("osv:PyPI", [item(record("GHSA-hx01-aaaa-0001"))])
    db = VulnDB.open(str(filled))
    assert [a.id for a in db.advisories_for("PyPI", "hexdemo-loader")] == [
        "GHSA-hx01-aaaa-0001"]
    assert db.advisories_for("PyPI", "hexdemo-utils") == []
    assert db.by_alias("CVE-2099-10001") == []  # the new copy has no alias


def test_two_updates_cannot_run_at_once(home: Path) -> None:
    with VulnDBWriter(home):
        with pytest.raises(VulnDBError, match="another `hex vulnfetch`"), VulnDBWriter(home):
            pass
    with VulnDBWriter(home):  # the lock is free again
        pass


def test_stale_temp_file_of_a_killed_update_is_removed(filled: Path) -> None:
    stale = filled / f"{dbmod.TMP_PREFIX}999999"
    stale.write_bytes(b"half written")
    with VulnDBWriter(filled):
        pass
    assert not stale.exists()


def test_export_import_round_trip(filled: Path, tmp_path: Path) -> None:
    dump = export_db(filled, tmp_path / "dump.sqlite")
    other = tmp_path / "other"
    import_db(other, dump)
    a, b = VulnDB.open(str(filled)), VulnDB.open(str(other))
    assert a.counts() == b.counts() and a.sources() == b.sources()
    assert b.kev("CVE-2099-10001") == a.kev("CVE-2099-10001")


def test_import_refuses_a_bad_file_and_keeps_the_db(filled: Path, tmp_path: Path) -> None:
    path = filled / dbmod.DB_NAME
    before = path.read_bytes()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"junk" * 1000)
    with pytest.raises(VulnDBError, match="cannot open as SQLite|not a database"):
        import_db(filled, junk)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE meta(key TEXT, value TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(VulnDBError, match="missing tables"):
        import_db(filled, other)
    newer = export_db(filled, tmp_path / "newer.sqlite")
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(VulnDBError, match="schema version 2"):
        import_db(filled, newer)
    assert path.read_bytes() == before


def test_export_without_a_db_is_an_error(home: Path, tmp_path: Path) -> None:
    with pytest.raises(VulnDBError, match="no vulnerability DB"):
        export_db(home, tmp_path / "x.sqlite")
    assert not os.path.exists(tmp_path / "x.sqlite")
