"""End to end: ``hex vulnfetch`` against real HTTP feeds on 127.0.0.1.

A small world is authored here: five OSV records zipped into ``PyPI/all.zip`` with
zipfile, a ``modified_id.csv``, NVD API pages, an EPSS ``csv.gz`` and a KEV catalog. hex
runs as a subprocess with HEX_*_URL pointing at pytest-httpserver, exactly as a user would
point it at a mirror.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import HexRun, run_hex
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from hexscan.supply.db import DB_NAME, TMP_PREFIX, VulnDB

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RCE = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
LOCAL = "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"


def osv_record(ident: str, modified: str, package: str, *, aliases: tuple[str, ...] = (),
               events: list[dict[str, str]] | None = None, versions: list[str] | None = None,
               **extra: Any) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": package,
                                            "purl": f"pkg:pypi/{package}"}}
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return {"schema_version": "1.6.0", "id": ident, "modified": modified,
            "published": "2026-01-01T00:00:00Z", "aliases": list(aliases),
            "summary": f"{package}: test advisory {ident}", "details": "Authored for tests.",
            "affected": [affected],
            "references": [{"type": "WEB", "url": f"https://example.invalid/{ident}"}],
            **extra}


RECORDS = {r["id"]: r for r in [
    osv_record("GHSA-hx01-aaaa-0001", "2026-01-01T00:00:00Z", "hexdemo-loader",
               aliases=("CVE-2099-10001",), events=[{"introduced": "0"}, {"fixed": "1.4.0"}],
               severity=[{"type": "CVSS_V3", "score": RCE}],
               database_specific={"cwe_ids": ["CWE-502"]}),
    osv_record("PYSEC-2099-2", "2026-01-02T00:00:00Z", "Hexdemo_Utils",
               versions=["0.9.0", "0.9.1"]),
    osv_record("GHSA-hx03-cccc-0003", "2026-01-03T00:00:00Z", "hexdemo-loader",
               events=[{"introduced": "0"}], withdrawn="2026-01-04T00:00:00Z"),
    osv_record("GHSA-hx04-dddd-0004", "2026-01-04T00:00:00Z", "hexdemo-cache",
               aliases=("CVE-2099-10004",),
               events=[{"introduced": "1.0"}, {"last_affected": "2.0.0"}]),
    osv_record("MAL-2099-5", "2026-01-05T00:00:00Z", "hexdemo-evil",
               events=[{"introduced": "0"}]),
]}
NEWEST = "2026-01-05T00:00:00Z"
#: What changed upstream after the first fetch: one record updated, one new.
CHANGED = osv_record("PYSEC-2099-2", "2026-03-01T00:00:00Z", "Hexdemo_Utils",
                     versions=["0.9.0", "0.9.1", "0.9.2"])
ADDED = osv_record("GHSA-hx06-ffff-0006", "2026-02-15T00:00:00Z", "hexdemo-loader",
                   events=[{"introduced": "1.0"}, {"fixed": "1.5.0"}])
MODIFIED_CSV = "\n".join([f"{CHANGED['modified']},{CHANGED['id']}",
                          f"{ADDED['modified']},{ADDED['id']}",
                          *[f"{r['modified']},{r['id']}"
                            for r in sorted(RECORDS.values(), key=lambda r: r["modified"],
                                            reverse=True)]]) + "\n"


def all_zip(records: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for rec in records:
            archive.writestr(f"{rec['id']}.json", json.dumps(rec, indent=1))
    return buf.getvalue()


def nvd_cve(ident: str, vector: str, cwe: str) -> dict[str, Any]:
    return {"cve": {
        "id": ident, "sourceIdentifier": "cve@example.invalid",
        "published": "2026-01-01T00:00:00.000", "lastModified": "2026-01-06T00:00:00.000",
        "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": f"{ident} description from NVD"}],
        "metrics": {"cvssMetricV31": [{
            "source": "nvd@nist.gov", "type": "Primary",
            "cvssData": {"version": "3.1", "vectorString": vector, "baseScore": 7.8,
                         "baseSeverity": "HIGH"}}]},
        "weaknesses": [{"source": "nvd@nist.gov", "type": "Primary",
                        "description": [{"lang": "en", "value": cwe}]}],
        "references": [{"url": f"https://example.invalid/nvd/{ident}",
                        "source": "cve@example.invalid"}]}}


NVD_ITEMS = [nvd_cve("CVE-2099-10001", LOCAL, "CWE-502"),
             nvd_cve("CVE-2099-10004", RCE, "CWE-94"),
             nvd_cve("CVE-2099-19999", RCE, "CWE-79")]  # named by no advisory


def nvd_page(start: int, size: int = 2) -> dict[str, Any]:
    chunk = NVD_ITEMS[start:start + size]
    return {"resultsPerPage": len(chunk), "startIndex": start, "totalResults": len(NVD_ITEMS),
            "format": "NVD_CVE", "version": "2.0", "timestamp": "2026-11-25T10:00:00.000",
            "vulnerabilities": chunk}


EPSS = gzip.compress(b"#model_version:v2025.03.14,score_date:2026-11-25T00:00:00Z\n"
                     b"cve,epss,percentile\n"
                     b"CVE-2099-10001,0.93120,0.99800\n"
                     b"CVE-2099-10004,0.00043,0.11000\n")
KEV = json.dumps({
    "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.11.25",
    "dateReleased": "2026-11-25T12:00:00.000Z", "count": 1,
    "vulnerabilities": [{
        "cveID": "CVE-2099-10001", "vendorProject": "Hexdemo", "product": "loader",
        "vulnerabilityName": "Hexdemo loader deserialisation", "dateAdded": "2026-03-01",
        "shortDescription": "Loading a crafted file runs code.",
        "requiredAction": "Apply updates per vendor instructions.", "dueDate": "2026-03-22",
        "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": ["CWE-502"]}]}).encode()


def conditional(body: bytes, etag: str, content_type: str) -> Callable[[Request], Response]:
    """A handler that answers 304 when the client already has ``etag``."""
    def handle(request: Request) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type=content_type, headers={"ETag": etag})
    return handle


def nvd_handler(fail: Callable[[int, int], Response | None] | None = None
                ) -> Callable[[Request], Response]:
    """NVD pages by startIndex; ``fail(call_number, start)`` may answer instead."""
    calls = {"n": 0}

    def handle(request: Request) -> Response:
        calls["n"] += 1
        start = int(request.args.get("startIndex", "0"))
        if fail is not None:
            answer = fail(calls["n"], start)
            if answer is not None:
                return answer
        return Response(json.dumps(nvd_page(start)), content_type="application/json")
    return handle


class World:
    """The fixture feeds on one pytest-httpserver, and a HEX_HOME to fetch into."""

    def __init__(self, server: HTTPServer, home: Path) -> None:
        self.server = server
        self.home = home
        self.db = home / DB_NAME
        self.serve_osv(list(RECORDS.values()))
        server.expect_request("/epss.csv.gz").respond_with_handler(
            conditional(EPSS, '"epss-1"', "application/gzip"))
        server.expect_request("/kev.json").respond_with_handler(
            conditional(KEV, '"kev-1"', "application/json"))

    def serve_osv(self, records: list[dict[str, Any]]) -> None:
        self.server.expect_request("/osv/PyPI/all.zip").respond_with_data(
            all_zip(records), content_type="application/zip")

    @property
    def env(self) -> dict[str, str]:
        url = self.server.url_for
        return {"HEX_HOME": str(self.home), "HEX_OSV_URL": url("/osv"),
                "HEX_NVD_URL": url("/nvd"), "HEX_EPSS_URL": url("/epss.csv.gz"),
                "HEX_KEV_URL": url("/kev.json"), "NVD_API_KEY": "test-key-0000"}

    def hex(self, *args: str, cwd: Path | None = None) -> HexRun:
        return run_hex("vulnfetch", *args, env=self.env, cwd=cwd or self.home)

    def paths(self) -> list[str]:
        """Every path requested so far, in order."""
        return [req.path for req, _resp in self.server.log]

    def fetch_ok(self, *args: str) -> HexRun:
        run = self.hex("fetch", *args)
        assert run.code == EXIT_OK, run.stdout + run.stderr
        return run


@pytest.fixture
def world(httpserver: HTTPServer, tmp_path: Path) -> World:
    home = tmp_path / "home"
    home.mkdir()
    return World(httpserver, home)


def status(world: World) -> dict[str, Any]:
    run = world.hex("status", "--json")
    assert run.code == EXIT_OK, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def scanned_ids(world: World, tmp_path: Path) -> str:
    """Scan a requirements file that pins vulnerable test packages; the report JSON."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "requirements.txt").write_text("hexdemo-loader==1.0.0\n")
    run = run_hex("scan", str(project), "--json", "--workers", "0", "--no-history",
                  env={"HEX_HOME": str(world.home)}, cwd=project)
    assert run.code in (0, 1), run.stderr
    return json.dumps(run.json()["results"])


# --- tests --------------------------------------------------------------------------------

def test_full_fetch_fills_every_table_and_status_reports_it(world: World) -> None:
    run = world.fetch_ok()
    assert "Vulnerability DB updated" in run.stdout
    assert "osv:PyPI" in run.stdout and "epss" in run.stdout and "kev" in run.stdout
    assert "/nvd" not in world.paths()  # NVD is opt-in
    data = status(world)
    assert data["exists"] and data["schema_version"] == 1 and data["built_at"]
    assert data["sources"]["osv:PyPI"]["record_count"] == 5
    assert data["sources"]["osv:PyPI"]["cursor"] == NEWEST
    assert data["sources"]["epss"]["record_count"] == 2
    assert data["sources"]["epss"]["cursor"] == "2026-11-25T00:00:00Z"
    assert data["sources"]["kev"]["record_count"] == 1
    assert data["counts"]["advisory"] == 5 and data["embedded"]["generated"]
    text = world.hex("status")
    assert text.code == EXIT_OK and "osv:PyPI" in text.stdout and "Embedded" in text.stdout

    db = VulnDB.open(str(world.home))
    ids = [a.id for a in db.advisories_for("PyPI", "HexDemo.Loader")]
    assert ids == ["GHSA-hx01-aaaa-0001", "GHSA-hx03-cccc-0003"]
    assert db.advisories_for("PyPI", "hexdemo-utils")[0].affected[0].versions == ("0.9.0",
                                                                                  "0.9.1")
    epss = db.epss("CVE-2099-10001")
    assert epss is not None and epss.epss == pytest.approx(0.9312)
    assert epss.model_version == "v2025.03.14"
    kev = db.kev("CVE-2099-10001")
    assert kev is not None and kev.due_date == "2026-03-22"


def test_incremental_fetch_downloads_only_changed_records(world: World) -> None:
    world.fetch_ok("--source", "osv")
    server = world.server
    server.expect_request("/osv/PyPI/modified_id.csv").respond_with_handler(
        conditional(MODIFIED_CSV.encode(), '"csv-1"', "text/csv"))
    for rec in [*RECORDS.values(), CHANGED, ADDED]:
        body = CHANGED if rec["id"] == CHANGED["id"] else rec
        server.expect_request(f"/osv/PyPI/{rec['id']}.json").respond_with_json(body)
    run = world.fetch_ok("--source", "osv")
    assert "2 changed record(s)" in run.stdout
    fetched = [p for p in world.paths() if p.endswith(".json")]
    assert sorted(fetched) == ["/osv/PyPI/GHSA-hx06-ffff-0006.json",
                               "/osv/PyPI/PYSEC-2099-2.json"]
    assert world.paths().count("/osv/PyPI/all.zip") == 1
    db = VulnDB.open(str(world.home))
    assert db.advisories_for("PyPI", "hexdemo_utils")[0].affected[0].versions[-1] == "0.9.2"
    assert "GHSA-hx06-ffff-0006" in [a.id for a in db.advisories_for("PyPI", "hexdemo-loader")]
    assert db.sources()["osv:PyPI"].cursor == CHANGED["modified"]
    assert db.sources()["osv:PyPI"].record_count == 6


def test_mirror_without_a_change_list_falls_back_to_the_zip(world: World) -> None:
    world.fetch_ok("--source", "osv")
    world.server.clear_all_handlers()  # a mirror that only carries all.zip
    world.serve_osv([*RECORDS.values(), ADDED])
    world.server.expect_request("/osv/PyPI/modified_id.csv").respond_with_data(
        "not here", status=404)
    run = world.fetch_ok("--source", "osv")
    assert "downloaded all.zip instead" in run.stdout
    assert world.paths().count("/osv/PyPI/all.zip") == 2
    assert VulnDB.open(str(world.home)).advisory(ADDED["id"]) is not None


def test_model_hash_feed_is_fetched_when_configured(world: World) -> None:
    skipped = world.fetch_ok("--source", "models")
    assert "skipped" in skipped.stdout and "HEX_MODELHASH_URL" in skipped.stdout
    digest = "0f" * 32
    world.server.expect_request("/models.json").respond_with_json({"models": [
        {"sha256": digest.upper(), "size": 4096, "name": "evil.pt", "reason": "reverse shell",
         "reference": "https://example.invalid/evil", "added": "2026-11-01"}]})
    env = {**world.env, "HEX_MODELHASH_URL": world.server.url_for("/models.json")}
    run = run_hex("vulnfetch", "fetch", env=env)  # default sources now include models
    assert run.code == EXIT_OK, run.stdout + run.stderr
    assert "/models.json" in world.paths()
    found = VulnDB.open(str(world.home)).model_hash(digest)
    assert found is not None and found.size == 4096 and found.name == "evil.pt"
    world.server.clear_all_handlers()
    world.server.expect_request("/models.json").respond_with_json(
        {"models": [{"sha256": "not-a-digest"}]})
    before = world.db.read_bytes()
    bad = run_hex("vulnfetch", "fetch", "--source", "models", env=env)
    assert_unchanged(world, before, bad, "64 hex characters")


def test_not_modified_feeds_are_a_no_op(world: World) -> None:
    world.fetch_ok()
    world.server.expect_request("/osv/PyPI/modified_id.csv").respond_with_handler(
        conditional(MODIFIED_CSV.encode(), '"csv-1"', "text/csv"))
    for rec in (CHANGED, ADDED):
        world.server.expect_request(f"/osv/PyPI/{rec['id']}.json").respond_with_json(rec)
    world.fetch_ok()  # incremental: stores the csv ETag
    before = VulnDB.open(str(world.home))
    counts, cursor = before.counts(), before.sources()["osv:PyPI"].cursor
    mark = len(world.server.log)
    run = world.fetch_ok()
    third = world.server.log[mark:]
    assert sorted((req.path, req.headers.get("If-None-Match"), resp.status_code)
                  for req, resp in third) == [
        ("/epss.csv.gz", '"epss-1"', 304), ("/kev.json", '"kev-1"', 304),
        ("/osv/PyPI/modified_id.csv", '"csv-1"', 304)]
    assert run.stdout.count("unchanged") == 3
    after = VulnDB.open(str(world.home))
    assert after.counts() == counts and after.sources()["osv:PyPI"].cursor == cursor


def test_nvd_rate_limit_is_retried_and_paging_stops_at_total(world: World) -> None:
    def limited(call: int, start: int) -> Response | None:
        if call == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return None

    world.server.expect_request("/nvd").respond_with_handler(nvd_handler(limited))
    run = world.fetch_ok("--source", "osv,nvd")
    assert "NVD_API_KEY" not in run.stdout + run.stderr and "test-key" not in run.stdout
    nvd = [(req.args.get("startIndex"), req.headers.get("apiKey"), resp.status_code)
           for req, resp in world.server.log if req.path == "/nvd"]
    assert nvd == [("0", "test-key-0000", 429), ("0", "test-key-0000", 200),
                   ("2", "test-key-0000", 200)]
    db = VulnDB.open(str(world.home))
    rec = db.nvd("CVE-2099-10001")
    assert rec is not None and rec.vectors[0].vector == LOCAL and rec.cwes == ("CWE-502",)
    assert db.nvd("CVE-2099-10004") is not None
    assert db.nvd("CVE-2099-19999") is None  # no advisory names it: not kept
    assert status(world)["sources"]["nvd"]["record_count"] == 2


def assert_unchanged(world: World, before: bytes, run: HexRun, message: str) -> None:
    assert run.code == EXIT_FAILED, run.stdout + run.stderr
    assert message in run.stderr
    assert "previous vulnerability DB is unchanged" in run.stderr
    assert world.db.read_bytes() == before
    assert not list(world.home.glob(TMP_PREFIX + "*"))


def test_fetch_dying_half_way_leaves_the_previous_db(world: World, tmp_path: Path) -> None:
    world.fetch_ok()
    before = world.db.read_bytes()

    def second_page_down(call: int, start: int) -> Response | None:
        if start > 0:
            return Response("boom", status=500, headers={"Retry-After": "1"})
        return None

    world.server.expect_request("/nvd").respond_with_handler(nvd_handler(second_page_down))
    run = world.hex("fetch", "--source", "osv,nvd", "--full", "--retries", "1")
    assert_unchanged(world, before, run, "HTTP 500")
    assert [req.args.get("startIndex") for req, _ in world.server.log
            if req.path == "/nvd"] == ["0", "2", "2"]

    world.server.clear_all_handlers()  # now a zip cut off in the middle of the download
    good = all_zip(list(RECORDS.values()))
    world.server.expect_request("/osv/PyPI/all.zip").respond_with_data(
        good[: len(good) // 2], content_type="application/zip")
    run = world.hex("fetch", "--source", "osv", "--full")
    assert_unchanged(world, before, run, "corrupt or truncated")

    db = VulnDB.open(str(world.home))  # still the complete previous DB
    assert db.sources()["osv:PyPI"].record_count == 5 and db.kev("CVE-2099-10001")
    assert "GHSA-hx01-aaaa-0001" in scanned_ids(world, tmp_path)


@pytest.mark.parametrize("path, body, message", [
    ("/kev.json", b'{"title": "x", "vulnerabilities": [', "KEV catalog is not JSON"),
    ("/epss.csv.gz", gzip.compress(b"cve,epss,percentile\nCVE-2099-1,0.1,0.2\n"),
     "#model_version"),
    ("/osv/PyPI/all.zip", all_zip([{"id": "X-1"}, {"id": "X-2"}]), "malformed"),
])
def test_malformed_feed_is_refused_with_a_clear_error(world: World, path: str, body: bytes,
                                                      message: str) -> None:
    world.fetch_ok()
    before = world.db.read_bytes()
    world.server.clear_all_handlers()
    if path != "/osv/PyPI/all.zip":
        world.serve_osv(list(RECORDS.values()))
    for other, data in (("/kev.json", KEV), ("/epss.csv.gz", EPSS)):
        if other != path:
            world.server.expect_request(other).respond_with_data(data)
    world.server.expect_request(path).respond_with_data(body)
    run = world.hex("fetch", "--full")
    assert_unchanged(world, before, run, message)


def test_export_import_round_trip_for_an_air_gapped_machine(world: World,
                                                           tmp_path: Path) -> None:
    world.fetch_ok()
    dump = tmp_path / "carry" / "vulndb-export.sqlite"
    dump.parent.mkdir()
    run = world.hex("export", str(dump))
    assert run.code == EXIT_OK, run.stderr
    offline = tmp_path / "offline-home"
    imported = run_hex("vulnfetch", "import", str(dump), env={"HEX_HOME": str(offline)})
    assert imported.code == EXIT_OK, imported.stderr
    source = status(world)
    other = json.loads(run_hex("vulnfetch", "status", "--json",
                               env={"HEX_HOME": str(offline)}).stdout)
    assert other["counts"] == source["counts"] and other["sources"] == source["sources"]

    before = (offline / DB_NAME).read_bytes()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    bad = run_hex("vulnfetch", "import", str(junk), env={"HEX_HOME": str(offline)})
    assert bad.code == EXIT_FAILED and "previous vulnerability DB is unchanged" in bad.stderr
    assert (offline / DB_NAME).read_bytes() == before


def test_scan_opens_the_db_read_only(world: World, tmp_path: Path) -> None:
    world.fetch_ok()
    stat = world.db.stat()
    before = (world.db.read_bytes(), stat.st_mtime_ns, stat.st_size)
    results = scanned_ids(world, tmp_path)
    assert "GHSA-hx01-aaaa-0001" in results  # the fetched advisory is what matched
    after = world.db.stat()
    assert (world.db.read_bytes(), after.st_mtime_ns, after.st_size) == before
    assert sorted(p.name for p in world.home.iterdir() if p.name.startswith("vulndb")) == [
        "vulndb.lock", DB_NAME]


def test_usage_errors_exit_2(world: World) -> None:
    run = world.hex("fetch", "--source", "osv,bogus")
    assert run.code == EXIT_USAGE and "bogus" in run.stderr
    run = world.hex("fetch", "--source", "kev", "--ecosystem", "npm")
    assert run.code == EXIT_USAGE
    assert world.server.log == [] and not world.db.exists()
    missing = world.hex("export", str(world.home / "out.sqlite"))
    assert missing.code == EXIT_FAILED and "run `hex vulnfetch fetch`" in missing.stderr
