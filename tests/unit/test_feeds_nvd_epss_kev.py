"""NVD pager, EPSS bulk CSV and KEV catalog parsers, each against a real HTTP server.

The server is pytest-httpserver on 127.0.0.1; the records are authored here in the
upstream shapes (NVD CVE API 2.0, EPSS ``csv.gz``, CISA KEV JSON).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from hexscan.supply.feeds.epss import parse_epss
from hexscan.supply.feeds.http import FeedError, HttpClient
from hexscan.supply.feeds.kev import parse_kev
from hexscan.supply.feeds.nvd import MAX_WINDOW, fetch_nvd, parse_nvd_page
from hexscan.supply.records import EpssScore, KevEntry, RecordError, SeverityVector

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
STAMP = "2026-11-25T11:58:01.123"


# --- NVD -------------------------------------------------------------------------------


def nvd_cve(ident: str, *, status: str = "Analyzed", modified: str = "2026-11-01T10:00:00.000",
            metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``vulnerabilities[]`` entry as NVD API 2.0 returns it."""
    return {"cve": {
        "id": ident, "sourceIdentifier": "security-advisories@github.com",
        "published": "2026-10-01T09:00:00.000", "lastModified": modified, "vulnStatus": status,
        "descriptions": [{"lang": "es", "value": "Descripción"},
                         {"lang": "en", "value": f"Description of {ident}"}],
        "metrics": metrics or {},
        "weaknesses": [{"source": "nvd@nist.gov", "type": "Primary",
                        "description": [{"lang": "en", "value": "CWE-502"},
                                        {"lang": "en", "value": "NVD-CWE-Other"}]}],
        "references": [{"url": f"https://example.org/{ident}", "source": "x"},
                       {"url": f"https://example.org/{ident}", "source": "y"}],
    }}


def nvd_page(items: list[dict[str, Any]], total: int, start: int = 0) -> dict[str, Any]:
    return {"resultsPerPage": len(items), "startIndex": start, "totalResults": total,
            "format": "NVD_CVE", "version": "2.0", "timestamp": STAMP,
            "vulnerabilities": items}


def metric(version: str, vector: str, kind: str = "Primary") -> dict[str, Any]:
    return {"source": "nvd@nist.gov", "type": kind,
            "cvssData": {"version": version, "vectorString": vector, "baseScore": 0.0}}


class NvdWorld:
    """A real NVD-like endpoint: pages through ``items`` by startIndex/resultsPerPage."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        start = int(request.args["startIndex"])
        size = int(request.args["resultsPerPage"])
        page = nvd_page(self.items[start:start + size], len(self.items), start)
        return Response(json.dumps(page), content_type="application/json")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> HttpClient:
    return HttpClient(timeout=10, retries=2, sleep=sleeps.append)


def serve_nvd(httpserver: HTTPServer, items: list[dict[str, Any]]) -> NvdWorld:
    world = NvdWorld(items)
    httpserver.expect_request("/rest/json/cves/2.0").respond_with_handler(world)
    return world


def test_paging_stops_at_total_results(httpserver: HTTPServer, client: HttpClient,
                                       sleeps: list[float]) -> None:
    world = serve_nvd(httpserver, [nvd_cve(f"CVE-2026-000{n}") for n in range(1, 4)])
    progress: list[tuple[int, int]] = []
    records, cursor = fetch_nvd(client, httpserver.url_for("/rest/json/cves/2.0"),
                                since=None, api_key=None, page_size=2,
                                progress=lambda done, total: progress.append((done, total)),
                                now=NOW)
    assert [r.cve for r in records] == ["CVE-2026-0001", "CVE-2026-0002", "CVE-2026-0003"]
    assert [req.args["startIndex"] for req in world.requests] == ["0", "2"]
    assert {req.args["resultsPerPage"] for req in world.requests} == {"2"}
    assert all("lastModStartDate" not in req.args for req in world.requests)
    assert progress == [(2, 3), (3, 3)]
    assert sleeps == [6.0]  # one NVD pause between the two requests, none before the first
    assert cursor == "2026-11-25T11:58:01.123+00:00"  # the server's timestamp, in UTC


def test_keep_drops_unwanted_records_while_paging(httpserver: HTTPServer,
                                                   client: HttpClient) -> None:
    """A full mirror keeps only the CVEs hex needs; paging still reads every page."""
    world = serve_nvd(httpserver, [nvd_cve(f"CVE-2026-000{n}") for n in range(1, 6)])
    wanted = {"CVE-2026-0002", "CVE-2026-0005"}
    records, _ = fetch_nvd(client, httpserver.url_for("/rest/json/cves/2.0"), since=None,
                           api_key=None, page_size=2, now=NOW, keep=wanted.__contains__)
    assert sorted(r.cve for r in records) == sorted(wanted)
    assert [req.args["startIndex"] for req in world.requests] == ["0", "2", "4"]


def test_api_key_header_only_when_given(httpserver: HTTPServer, client: HttpClient,
                                        sleeps: list[float]) -> None:
    world = serve_nvd(httpserver, [nvd_cve(f"CVE-2026-000{n}") for n in range(1, 4)])
    url = httpserver.url_for("/rest/json/cves/2.0")
    fetch_nvd(client, url, since=None, api_key=None, page_size=2, now=NOW)
    assert all("apiKey" not in req.headers for req in world.requests)
    assert sleeps == [6.0]
    world.requests.clear()
    sleeps.clear()
    fetch_nvd(client, url, since=None, api_key="k-123", page_size=2, now=NOW)
    assert [req.headers.get("apiKey") for req in world.requests] == ["k-123", "k-123"]
    assert sleeps == [0.6]


def test_429_with_retry_after_is_retried(httpserver: HTTPServer, client: HttpClient,
                                         sleeps: list[float]) -> None:
    path = "/rest/json/cves/2.0"
    httpserver.expect_ordered_request(path).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "1"}))
    httpserver.expect_ordered_request(path).respond_with_json(
        nvd_page([nvd_cve("CVE-2026-1111")], 1))
    records, _ = fetch_nvd(client, httpserver.url_for(path), since=None, api_key=None,
                           now=NOW)
    assert [r.cve for r in records] == ["CVE-2026-1111"]
    assert len(httpserver.log) == 2
    assert sleeps == [1.0]  # the Retry-After pause, and no NVD pause (one logical request)


def test_old_cursor_is_fetched_in_120_day_windows(httpserver: HTTPServer, client: HttpClient,
                                                  sleeps: list[float]) -> None:
    seen: list[dict[str, str]] = []

    def windowed(request: Request) -> Response:
        seen.append(dict(request.args))
        items = [nvd_cve("CVE-2026-2222")] if len(seen) == 2 else []
        return Response(json.dumps(nvd_page(items, len(items))),
                        content_type="application/json")

    httpserver.expect_request("/cves").respond_with_handler(windowed)
    since = NOW - timedelta(days=300)
    records, cursor = fetch_nvd(client, httpserver.url_for("/cves"),
                                since=since.isoformat(), api_key=None, now=NOW)
    bounds = [(datetime.fromisoformat(q["lastModStartDate"]),
               datetime.fromisoformat(q["lastModEndDate"])) for q in seen]
    assert bounds == [(since, since + MAX_WINDOW),
                      (since + MAX_WINDOW, since + 2 * MAX_WINDOW),
                      (since + 2 * MAX_WINDOW, NOW)]
    assert all(end - start <= timedelta(days=120) for start, end in bounds)
    assert seen[0]["lastModStartDate"] == "2026-01-29T12:00:00.000+00:00"
    assert all(q["startIndex"] == "0" for q in seen)
    assert [r.cve for r in records] == ["CVE-2026-2222"]
    assert cursor == "2026-11-25T12:00:00.000+00:00"
    assert sleeps == [6.0, 6.0]


def test_recent_cursor_is_one_window_and_naive_cursor_is_utc(
        httpserver: HTTPServer, client: HttpClient) -> None:
    world = serve_nvd(httpserver, [])
    _, cursor = fetch_nvd(client, httpserver.url_for("/rest/json/cves/2.0"),
                          since="2026-11-20T00:00:00", api_key=None, now=NOW)
    assert [(r.args["lastModStartDate"], r.args["lastModEndDate"]) for r in world.requests] \
        == [("2026-11-20T00:00:00.000+00:00", "2026-11-25T12:00:00.000+00:00")]
    assert cursor == "2026-11-25T12:00:00.000+00:00"


def test_rejected_cves_are_skipped_but_still_advance_the_pager(
        httpserver: HTTPServer, client: HttpClient) -> None:
    world = serve_nvd(httpserver, [nvd_cve("CVE-2026-0001", status="Rejected"),
                                   nvd_cve("CVE-2026-0002"), nvd_cve("CVE-2026-0003")])
    records, _ = fetch_nvd(client, httpserver.url_for("/rest/json/cves/2.0"), since=None,
                           api_key=None, page_size=2, now=NOW)
    assert [r.cve for r in records] == ["CVE-2026-0002", "CVE-2026-0003"]
    assert len(world.requests) == 2
    page, total = parse_nvd_page(nvd_page([nvd_cve("CVE-2026-0001", status="Rejected")], 1))
    assert page == [] and total == 1


def test_record_fields() -> None:
    item = nvd_cve("CVE-2025-32434", metrics={
        "cvssMetricV2": [metric("2.0", "AV:N/AC:L/Au:N/C:P/I:P/A:P")],
        "cvssMetricV31": [metric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")],
        "cvssMetricV40": [metric("4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/"
                                        "SC:N/SI:N/SA:N", "Secondary")],
        "cvssMetricV30": [metric("3.0", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N",
                                 "Secondary")]})
    (record,), total = parse_nvd_page(nvd_page([item], 1))
    assert total == 1
    assert record.cve == "CVE-2025-32434" and record.vuln_status == "Analyzed"
    assert record.last_modified == "2026-11-01T10:00:00.000"
    assert record.published == "2026-10-01T09:00:00.000"
    assert record.description == "Description of CVE-2025-32434"
    assert record.vectors == (
        SeverityVector("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/"
                       "SA:N", "nvd-secondary"),
        SeverityVector("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "nvd-primary"),
        SeverityVector("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N",
                       "nvd-secondary"),
        SeverityVector("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "nvd-primary"))
    assert record.cwes == ("CWE-502",)
    assert record.references == ("https://example.org/CVE-2025-32434",)


@pytest.mark.parametrize("page", [
    [], "NVD_CVE", {"format": "NVD_CPE", "totalResults": 0, "vulnerabilities": []},
    {"format": "NVD_CVE", "totalResults": "3", "vulnerabilities": []},
    {"format": "NVD_CVE", "totalResults": -1, "vulnerabilities": []},
    {"format": "NVD_CVE", "totalResults": 1},
    {"format": "NVD_CVE", "totalResults": 1, "vulnerabilities": {"cve": {}}},
])
def test_malformed_page_shape_is_feed_error(page: Any) -> None:
    with pytest.raises(FeedError):
        parse_nvd_page(page)


def broken(mutate: Any) -> dict[str, Any]:
    item = nvd_cve("CVE-2026-0001", metrics={"cvssMetricV31": [
        metric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")]})
    mutate(item)
    return nvd_page([item], 1)


@pytest.mark.parametrize("page", [
    nvd_page(["CVE-2026-0001"], 1),  # type: ignore[list-item]
    nvd_page([{"id": "CVE-2026-0001"}], 1),
    broken(lambda i: i["cve"].pop("id")),
    broken(lambda i: i["cve"].update(id="GHSA-xxxx-yyyy-zzzz")),
    broken(lambda i: i["cve"].pop("lastModified")),
    broken(lambda i: i["cve"].update(descriptions="text")),
    broken(lambda i: i["cve"].update(metrics=[])),
    broken(lambda i: i["cve"]["metrics"]["cvssMetricV31"][0].update(type="Tertiary")),
    broken(lambda i: i["cve"]["metrics"]["cvssMetricV31"][0].pop("cvssData")),
    broken(lambda i: i["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"].pop("vectorString")),
    broken(lambda i: i["cve"]["references"].append({"source": "no url"})),
])
def test_malformed_record_is_record_error(page: dict[str, Any]) -> None:
    with pytest.raises(RecordError):
        parse_nvd_page(page)


def test_bad_json_and_http_errors_are_feed_errors(httpserver: HTTPServer,
                                                  client: HttpClient) -> None:
    httpserver.expect_request("/junk").respond_with_data(b"\x00not json", status=200)
    httpserver.expect_request("/down").respond_with_data("boom", status=500)
    httpserver.expect_request("/forbidden").respond_with_data("no", status=403)
    for path in ("/junk", "/down", "/forbidden"):
        with pytest.raises(FeedError):
            fetch_nvd(client, httpserver.url_for(path), since=None, api_key=None, now=NOW)


def test_empty_page_before_total_results_is_an_error_not_a_loop(
        httpserver: HTTPServer, client: HttpClient) -> None:
    httpserver.expect_request("/liar").respond_with_json(nvd_page([], 5))
    with pytest.raises(FeedError, match="empty page"):
        fetch_nvd(client, httpserver.url_for("/liar"), since=None, api_key=None, now=NOW)
    assert len(httpserver.log) == 1


def test_bad_cursor_and_page_size() -> None:
    with pytest.raises(FeedError, match="cursor"):
        fetch_nvd(HttpClient(), "http://127.0.0.1:9/", since="yesterday", api_key=None)
    with pytest.raises(ValueError, match="page_size"):
        fetch_nvd(HttpClient(), "http://127.0.0.1:9/", since=None, api_key=None,
                  page_size=5000)


# --- EPSS ------------------------------------------------------------------------------

EPSS_TEXT = ("#model_version:v2025.03.14,score_date:2026-05-18T00:00:00Z\n"
             "cve,epss,percentile\n"
             "CVE-2023-44487,0.94400,0.99990\n"
             "CVE-2024-53981,0.00407,0.60248\n"
             "CVE-1999-0001,1e-05,0.00012\n")


def write_gz(tmp_path: Path, text: str, name: str = "epss.csv.gz") -> str:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    return str(path)


def test_epss_served_and_parsed(httpserver: HTTPServer, client: HttpClient,
                                tmp_path: Path) -> None:
    httpserver.expect_request("/epss_scores-current.csv.gz").respond_with_data(
        gzip.compress(EPSS_TEXT.encode()), content_type="application/gzip")
    resp = client.get(httpserver.url_for("/epss_scores-current.csv.gz"))
    try:
        assert resp.path is not None
        scores, model, date = parse_epss(resp.path)
    finally:
        resp.discard()
    assert model == "v2025.03.14" and date == "2026-05-18T00:00:00Z"
    assert scores[0] == EpssScore("CVE-2023-44487", 0.944, 0.9999, date, model)
    assert [s.epss for s in scores] == [0.944, 0.00407, 0.00001]
    assert all(isinstance(s.percentile, float) for s in scores)


def test_epss_tolerates_crlf_and_trailing_blank_line(tmp_path: Path) -> None:
    scores, _, _ = parse_epss(write_gz(tmp_path, EPSS_TEXT.replace("\n", "\r\n") + "\r\n"))
    assert len(scores) == 3


@pytest.mark.parametrize("text", [
    "",
    "cve,epss,percentile\nCVE-2023-44487,0.9,0.9\n",  # no #model_version line
    "#score_date:2026-05-18T00:00:00Z\ncve,epss,percentile\nCVE-2023-44487,0.9,0.9\n",
    "#model_version:v2025.03.14,score_date:someday\ncve,epss,percentile\n"
    "CVE-2023-44487,0.9,0.9\n",
    "#model_version:v2025.03.14,score_date:2026-05-18T00:00:00Z\n",  # no header
    "#model_version:v2025.03.14,score_date:2026-05-18T00:00:00Z\ncve,score\n",
    "#model_version:v2025.03.14,score_date:2026-05-18T00:00:00Z\ncve,epss,percentile\n",
    EPSS_TEXT + "CVE-2024-0001,1.5,0.5\n",
    EPSS_TEXT + "CVE-2024-0001,-0.1,0.5\n",
    EPSS_TEXT + "CVE-2024-0001,nan,0.5\n",
    EPSS_TEXT + "CVE-2024-0001,high,0.5\n",
    EPSS_TEXT + "CVE-2024-0001,0.5\n",
    EPSS_TEXT + "CVE-2024-0001,0.5,0.5,extra\n",
    EPSS_TEXT + "GHSA-aaaa-bbbb-cccc,0.5,0.5\n",
    EPSS_TEXT + "CVE-2023-44487,0.5,0.5\n",  # duplicate
    EPSS_TEXT + "CVE-2024-0001," + "9" * 5000 + ",0.5\n",  # over-long line
], ids=lambda t: repr(t[-40:]))
def test_epss_malformed_rows_are_feed_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(FeedError):
        parse_epss(write_gz(tmp_path, text))


def test_epss_bad_gzip_is_feed_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv.gz"
    plain.write_text(EPSS_TEXT)
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress((EPSS_TEXT * 50).encode())[:-20])
    not_utf8 = write_gz(tmp_path, "x", "latin.csv.gz")
    Path(not_utf8).write_bytes(gzip.compress(b"#model_version:v\xff,score_date:2026-01-01\n"))
    for path in (str(plain), str(truncated), not_utf8, str(tmp_path / "missing.csv.gz")):
        with pytest.raises(FeedError):
            parse_epss(path)


def test_epss_endless_line_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b"#model_version:v1,score_date:2026-01-01\ncve,epss,percentile\n")
        for _ in range(64):
            out.write(b"A" * (1 << 20))  # 64 MiB without a newline, a few KB compressed
    with pytest.raises(FeedError, match="longer than"):
        parse_epss(str(path))


def test_epss_row_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hexscan.supply.feeds import epss

    monkeypatch.setattr(epss, "MAX_ROWS", 2)
    with pytest.raises(FeedError, match="more than 2 rows"):
        parse_epss(write_gz(tmp_path, EPSS_TEXT))


# --- KEV -------------------------------------------------------------------------------


def kev_entry(cve: str, **extra: Any) -> dict[str, Any]:
    entry = {"cveID": cve, "vendorProject": "IETF", "product": "HTTP/2",
             "vulnerabilityName": "HTTP/2 Rapid Reset Attack Vulnerability",
             "dateAdded": "2023-10-10", "shortDescription": "HTTP/2 rapid reset DDoS.",
             "requiredAction": "Apply mitigations per vendor instructions.",
             "dueDate": "2023-10-31", "knownRansomwareCampaignUse": "Unknown",
             "notes": "", "cwes": ["CWE-400"]}
    entry.update(extra)
    return entry


def kev_catalog(entries: list[Any], count: int | None = None) -> dict[str, Any]:
    return {"title": "CISA Catalog of Known Exploited Vulnerabilities",
            "catalogVersion": "2026.11.24", "dateReleased": "2026-11-24T17:00:00.0000Z",
            "count": len(entries) if count is None else count, "vulnerabilities": entries}


def test_kev_served_and_parsed(httpserver: HTTPServer, client: HttpClient) -> None:
    log4j = kev_entry("CVE-2021-44228", vendorProject="Apache", product="Log4j2",
                      vulnerabilityName="Apache Log4j2 Remote Code Execution Vulnerability",
                      dateAdded="2021-12-10", dueDate="2021-12-24",
                      knownRansomwareCampaignUse="Known")
    catalog = kev_catalog([kev_entry("CVE-2023-44487"), log4j])
    httpserver.expect_request("/feeds/known_exploited_vulnerabilities.json") \
        .respond_with_json(catalog)
    resp = client.get(httpserver.url_for("/feeds/known_exploited_vulnerabilities.json"))
    try:
        entries = parse_kev(resp.read_bytes())
    finally:
        resp.discard()
    assert entries == [
        KevEntry("CVE-2023-44487", "2023-10-10", "2023-10-31", "Unknown", "IETF", "HTTP/2",
                 "HTTP/2 Rapid Reset Attack Vulnerability"),
        KevEntry("CVE-2021-44228", "2021-12-10", "2021-12-24", "Known", "Apache", "Log4j2",
                 "Apache Log4j2 Remote Code Execution Vulnerability")]


def test_kev_duplicate_cve_kept_once() -> None:
    catalog = kev_catalog([kev_entry("CVE-2023-44487"),
                           kev_entry("CVE-2023-44487", dateAdded="2024-01-01")])
    (entry,) = parse_kev(json.dumps(catalog).encode())
    assert entry.date_added == "2023-10-10"


def without(key: str) -> dict[str, Any]:
    entry = kev_entry("CVE-2023-44487")
    del entry[key]
    return kev_catalog([entry])


@pytest.mark.parametrize("data", [
    b"", b"<html>maintenance</html>", b"\xff\xfe", b"[]",
    json.dumps({k: v for k, v in kev_catalog([]).items() if k != "title"}).encode(),
    json.dumps({k: v for k, v in kev_catalog([]).items() if k != "vulnerabilities"}).encode(),
    json.dumps(kev_catalog([kev_entry("CVE-2023-44487")], count=1766)).encode(),
    json.dumps(kev_catalog([kev_entry("CVE-2023-44487")], count="1")).encode(),
    json.dumps(kev_catalog(["CVE-2023-44487"])).encode(),
    *(json.dumps(without(key)).encode() for key in (
        "cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded", "dueDate",
        "knownRansomwareCampaignUse")),
    json.dumps(kev_catalog([kev_entry("2023-44487")])).encode(),
    json.dumps(kev_catalog([kev_entry("CVE-2023-44487", dateAdded="10/10/2023")])).encode(),
    json.dumps(kev_catalog([kev_entry("CVE-2023-44487",
                                      knownRansomwareCampaignUse="Maybe")])).encode(),
    json.dumps(kev_catalog([kev_entry("CVE-2023-44487", product=None)])).encode(),
])
def test_kev_malformed_is_feed_error(data: bytes) -> None:
    with pytest.raises(FeedError):
        parse_kev(data)
