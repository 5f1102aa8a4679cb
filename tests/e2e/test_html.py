"""End to end: ``hex scan --format html`` on hostile input, parsed and opened in a real browser.

The scanned tree holds real pickles whose string constants and file names are HTML
payloads. The page must show them as text, fetch nothing, agree with the JSON report of the
same scan, and render to a readable screenshot in headless Chromium (skipped when no
Chromium binary is installed; ``.ci/run`` installs Debian's).
"""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run_hex

from hexscan import __version__
from hexscan.model.finding import Cvss, Finding, Location, Suppression
from hexscan.model.report import ErrorEntry, Fact, FileEntry, HistorySummary, ScanReport, Status
from hexscan.model.severity import Severity
from hexscan.report import html as html_report
from hexscan.rules.registry import get as rule

GOLDEN = REPO / "tests" / "golden"
SCRIPT_PAYLOAD = "<script>alert(1)</script>"
ATTR_PAYLOAD = '"><img src=x onerror=alert(1)>'
#: A path, not a name: "/" cannot be in a file name, so the payload spans a directory.
SCRIPT_NAME = "<script>alert(2)</script>.pkl"
ATTR_NAME = '"><img src=x onerror=alert(3)>.pkl'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (.ci/run installs Debian's chromium)")


class _Shell:
    """Pickles as a call of os.system with ``command``; pickling it runs nothing."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


@pytest.fixture(scope="session")
def hostile_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three malicious pickles (payloads in a constant and in the path), two benign files."""
    import numpy as np
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("html") / "models"
    (root / SCRIPT_NAME).parent.mkdir(parents=True)
    (root / "evil_script.pkl").write_bytes(pickle.dumps(_Shell(SCRIPT_PAYLOAD), protocol=2))
    (root / "evil_attr.pkl").write_bytes(pickle.dumps(_Shell(ATTR_PAYLOAD), protocol=4))
    (root / SCRIPT_NAME).write_bytes(pickle.dumps(_Shell("id"), protocol=2))
    (root / ATTR_NAME).write_bytes(pickle.dumps({"epoch": 1, "name": "tiny"}, protocol=4))
    np.save(root / "weights.npy", np.arange(6, dtype=np.float32))
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(root / "model.safetensors"))
    return root


@dataclass
class Scan:
    html: str
    path: Path
    report: dict[str, Any]


@pytest.fixture(scope="session")
def scan(hostile_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """The HTML and the JSON report of the same tree, each with a fresh history."""
    out = tmp_path_factory.mktemp("html-out") / "report.html"
    homes = tmp_path_factory.mktemp("homes")
    run = run_hex(str(hostile_tree), "--format", "html", "-o", str(out),
                  env={"HEX_HOME": str(homes / "a")})
    assert run.code == 1, run.stderr
    assert run.stdout == ""
    as_json = run_hex(str(hostile_tree), "--json", env={"HEX_HOME": str(homes / "b")})
    assert as_json.code == 1, as_json.stderr
    return Scan(out.read_text(encoding="utf-8"), out, as_json.json())


# --------------------------------------------------------------------------- page reader

@dataclass
class Page:
    """What the tests need from a page, read with the stdlib parser (no browser needed)."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: str = ""
    scripts: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    cards: dict[str, str] = field(default_factory=dict)
    #: One per file row: [file, format, size, status, findings, worst severity].
    rows: list[list[str]] = field(default_factory=list)
    #: File cell text -> rule ids of the findings inside that file's <details>.
    rules_in: dict[str, list[str]] = field(default_factory=dict)
    filter_status: str = ""

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)

    def attr(self, tag: str, name: str) -> list[str | None]:
        return [a[name] for t, a in self.tags if t == tag and name in a]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.open: list[list[Any]] = []  # [tag, depth, buffer, on_close]
        self.row: list[str] | None = None
        self.file: str | None = None
        self.card: str | None = None
        self.texts: list[str] = []

    def capture(self, tag: str, on_close: Any) -> None:
        self.open.append([tag, 1, [], on_close])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.page.tags.append((tag, a))
        for item in self.open:
            if item[0] == tag:
                item[1] += 1
        classes = (a.get("class") or "").split()
        if tag in ("script", "style"):
            self.capture(tag, (self.page.scripts if tag == "script" else self.page.styles).append)
        elif tag == "div" and "card" in classes:
            self.card = a.get("data-key")
        elif tag == "dd" and self.card:
            key, self.card = self.card, None
            self.capture(tag, lambda t, k=key: self.page.cards.__setitem__(k, t))
        elif tag == "tr" and "file-row" in classes:
            self.row = []
            self.page.rows.append(self.row)
        elif tag in ("th", "td") and self.row is not None:
            self.capture(tag, self._cell)
        elif tag == "article" and self.file is not None:
            self.page.rules_in[self.file].append(a.get("data-rule") or "")
        elif tag == "span" and a.get("id") == "filter-status":
            self.capture(tag, lambda t: setattr(self.page, "filter_status", t))

    def _cell(self, value: str) -> None:
        assert self.row is not None
        if not self.row:
            self.file = value
            self.page.rules_in[value] = []
        self.row.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.row = None
        if tag == "tbody":
            self.file = None
        for item in list(self.open):
            if item[0] == tag:
                item[1] -= 1
                if item[1] == 0:
                    self.open.remove(item)
                    raw = "".join(item[2])
                    item[3](raw if tag in ("script", "style") else " ".join(raw.split()))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for item in self.open:
            item[2].append(data)


def read_page(source: str) -> Page:
    reader = _Reader()
    reader.feed(source)
    reader.close()
    reader.page.text = "".join(reader.texts)
    return reader.page


def summary_cards(report: dict[str, Any]) -> dict[str, str]:
    """What the summary cards must say for this JSON report."""
    s = report["summary"]
    expected = {k: str(s[k]) for k in ("total_issues", "critical", "high", "medium", "low",
                                       "info", "suppressed")}
    expected["security_score"] = f"{s['security_score']}/100"
    expected["files_scanned"] = str(report["files_scanned"])
    expected["errors"] = str(len(report["errors"]))
    expected["skipped"] = str(len(report["skipped"]))
    expected["complete"] = "yes" if report["complete"] else "no"
    for key in ("new", "existing", "fixed"):
        if key in s:
            expected[key] = str(s[key])
    return expected


def assert_nothing_injected(page: Page) -> None:
    """Only hex's own markup: one script, no image, no event handler, no fetchable URL."""
    assert page.count("script") == 1
    for banned in ("img", "iframe", "object", "embed", "link", "base", "audio", "video"):
        assert page.count(banned) == 0, banned
    for tag, attrs in page.tags:
        assert (attrs.get("http-equiv") or "").lower() != "refresh", attrs
        assert not [n for n in attrs if n.startswith("on")], (tag, attrs)
        assert "src" not in attrs and "srcset" not in attrs, (tag, attrs)
        if "href" in attrs:
            assert tag == "a", (tag, attrs)
            assert re.fullmatch(r"https://[^\s\"'<>]+", attrs["href"] or ""), attrs
        assert "style" not in attrs, (tag, attrs)
    for css in page.styles:
        assert "url(" not in css and "@import" not in css


# --------------------------------------------------------------------------- static checks

def test_hostile_strings_are_text_not_markup(scan: Scan) -> None:
    assert "<script>alert" not in scan.html.lower()
    assert "<img" not in scan.html.lower()
    page = read_page(scan.html)
    assert_nothing_injected(page)
    # The payloads are shown to the reader, as text.
    assert SCRIPT_PAYLOAD in page.text
    assert ATTR_PAYLOAD in page.text
    assert SCRIPT_NAME in page.text and ATTR_NAME in page.text


def test_page_fetches_nothing_and_pins_its_script(scan: Scan) -> None:
    page = read_page(scan.html)
    [csp] = [a["content"] for t, a in page.tags
             if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert csp is not None
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'none'"
    assert "unsafe-inline" not in directives["script-src"]
    [script] = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert directives["script-src"] == f"'sha256-{digest}'"
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*http://""", scan.html)
    # Only CWE and rule references are links; they open on a click, nothing loads them.
    hrefs = page.attr("a", "href")
    assert hrefs and all(h and h.startswith("https://") for h in hrefs)


def test_summary_and_files_agree_with_the_json_report(scan: Scan) -> None:
    page = read_page(scan.html)
    assert page.cards == summary_cards(scan.report)
    assert scan.report["summary"]["critical"] == 3
    assert len(page.rows) == len(scan.report["files"]) == 6
    findings_per_file: dict[str, int] = {}
    for r in scan.report["results"]:
        findings_per_file[r["file_path"]] = findings_per_file.get(r["file_path"], 0) + 1
    for row in page.rows:
        assert int(row[4]) == findings_per_file.get(row[0], 0), row
    evil = next(row[0] for row in page.rows if row[0].endswith("evil_script.pkl"))
    assert page.rules_in[evil] == ["HEX-PKL-001"]
    hostile = next(row[0] for row in page.rows if row[0].endswith(SCRIPT_NAME))
    assert page.rules_in[hostile] == ["HEX-PKL-001"]
    clean = next(row for row in page.rows if row[0].endswith("model.safetensors"))
    assert clean[4] == "0" and clean[1] == "safetensors" and page.rules_in[clean[0]] == []


# --------------------------------------------------------------------------- golden files

def _normalise(page: str, root: Path | None = None) -> str:
    if root is not None:
        page = page.replace(str(root), "ROOT")
    page = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "SCAN-ID",
                  page)
    page = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIMESTAMP", page)
    page = re.sub(r"\d+\.\d\d s\b", "DURATION", page)
    return page.replace(f"hex {__version__}", "hex VERSION").replace(
        f">{__version__}<", ">VERSION<")


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HEX_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"{path} is missing; run with HEX_REGEN_GOLDEN=1 to write it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} changed; review the diff and regenerate with HEX_REGEN_GOLDEN=1")


def test_golden_scan(hostile_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    # A home of its own: a vulnerability DB another test fetched would add a warning.
    run = run_hex(str(hostile_tree), "--format", "html", "-o", str(out), "--no-history",
                  env={"HEX_HOME": str(tmp_path / "home")})
    assert run.code == 1, run.stderr
    assert_golden("html-scan.html", _normalise(out.read_text(encoding="utf-8"), hostile_tree))


def full_report() -> ScanReport:
    """A report with every part the page can show, including hostile advisory text."""
    pkl, dep = rule("HEX-PKL-001"), rule("HEX-SUP-001")
    hostile = "model\u202egnp.pkl"  # a right-to-left override hides the real extension
    findings = (
        Finding(pkl, "posix.system is called", key="posix.system", confidence=0.95,
                evidence={"global": "posix.system", "arg": SCRIPT_PAYLOAD}, offset=12,
                file_path="/m/bundle.zip", rel_path="bundle.zip", member="data.pkl",
                scanner="pickle", status="new",
                also_at=(Location("/m/bundle.zip", "bundle.zip", "copy/data.pkl"),)),
        Finding(dep, f"vulnerable dependency {ATTR_PAYLOAD}", key="GHSA-x", scanner="deps",
                severity=Severity.HIGH, file_path="/m/requirements.txt",
                rel_path="requirements.txt", status="existing", in_baseline=True,
                cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8,
                          "CRITICAL"),
                cwe=("CWE-94", "NVD-CWE-Other"), remediation="Upgrade to 2.0.",
                references=("https://osv.dev/GHSA-x", "javascript:alert(4)",
                            'https://x.test/"onmouseover="alert(5)'),
                vulnerability={"id": "GHSA-x", "aliases": ["CVE-2025-1"], "package": "tool",
                               "version": "1.0", "fixed": ["2.0"],
                               "epss": {"score": 0.5, "percentile": 0.9}, "kev": True}),
        Finding(pkl, "suppressed one", key="k", file_path=f"/m/{hostile}", rel_path=hostile,
                scanner="pickle", suppression=Suppression("test fixture", ".hexignore:3",
                                                          "2030-01-01")),
        Finding(rule("HEX-PKL-003"), "low one", key="low", severity=Severity.LOW,
                file_path="/m/orphan.bin", rel_path="orphan.bin", scanner="pickle"),
    )
    files = (FileEntry("/m/bundle.zip", None, "zip", 4096, Status.SCANNED),
             FileEntry("/m/bundle.zip", "data.pkl", "pickle", 2_500_000, Status.SCANNED),
             FileEntry("/m/requirements.txt", None, "requirements", 40, Status.SCANNED),
             FileEntry(f"/m/{hostile}", None, "pickle", 10, Status.SCANNED),
             FileEntry("/m/big.bin", None, "unknown", None, Status.SKIPPED, "not a model"),
             FileEntry("/m/broken.pt", None, "torch", 77, Status.ERROR, "truncated"))
    return ScanReport(
        scan_id="00000000-0000-0000-0000-000000000000", timestamp="2026-01-02T03:04:05Z",
        target="/m", version="VERSION", findings=findings, files=files,
        errors=(ErrorEntry("/m/broken.pt", "data.pkl", "malformed",
                           f"zip ends early {SCRIPT_PAYLOAD}"),),
        duration_s=1.5, fail_on="CRITICAL", roots=("/m",), verbose=True,
        facts=(Fact("dependency", {"name": "tool", "version": "1.0"}, "/m/requirements.txt",
                    "requirements.txt"),),
        warnings=(f"vulnerability database is 40 days old {ATTR_PAYLOAD}",),
        history=HistorySummary(1, 1, 1, "prev-id", ({"rule": "HEX-PKL-002",
                                                     "path": "old.pkl"},)))


def test_golden_full_report() -> None:
    page = html_report.render(full_report())
    assert_golden("html-full.html", page)
    parsed = read_page(page)
    assert_nothing_injected(parsed)
    hrefs = parsed.attr("a", "href")
    assert "https://osv.dev/GHSA-x" in hrefs
    assert "https://cwe.mitre.org/data/definitions/94.html" in hrefs
    assert not any("javascript" in (h or "") or "onmouseover" in (h or "") for h in hrefs)
    assert "javascript:alert(4)" in parsed.text  # shown, not followable
    assert "model\\u202egnp.pkl" in parsed.text and "\u202e" not in page
    assert parsed.cards["new"] == "1" and parsed.cards["suppressed"] == "1"
    assert parsed.cards["complete"] == "no" and parsed.cards["errors"] == "1"
    # Every file entry has a row, and the finding of no listed file still gets one.
    assert [r[0] for r in parsed.rows][-1] == "/m/orphan.bin"
    assert len(parsed.rows) == 7


# --------------------------------------------------------------------------- in Chromium

def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--disable-background-networking",
               f"--user-data-dir={profile}", *args]
    # The argv is a fixed browser command and paths this test created.
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120,  # noqa: S603
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@needs_chromium
def test_browser_dom(scan: Scan, tmp_path: Path) -> None:
    """After the browser parsed the page and ran its script, nothing was injected."""
    dom = chromium(tmp_path / "profile", "--dump-dom", scan.path.as_uri()).stdout
    page = read_page(dom)
    assert_nothing_injected(page)
    assert page.cards == summary_cards(scan.report)
    assert len(page.rows) == len(scan.report["files"])
    evil = next(row[0] for row in page.rows if row[0].endswith("evil_script.pkl"))
    assert page.rules_in[evil] == ["HEX-PKL-001"]
    assert SCRIPT_PAYLOAD in page.text and ATTR_PAYLOAD in page.text
    # The policy allowed the pinned script: it revealed the filter and counted findings.
    total = scan.report["summary"]["total_issues"]
    assert page.filter_status == f"Showing {total} of {total} findings."
    assert not [a for t, a in page.tags if t == "form" and "hidden" in a]


@needs_chromium
def test_policy_blocks_what_escaping_might_miss(scan: Scan, tmp_path: Path,
                                                httpserver: Any) -> None:
    """Markup forced into the page can neither fetch nor run; without the policy it could."""
    httpserver.expect_request("/pixel.png").respond_with_data(b"", status=204)
    httpserver.expect_request("/style.css").respond_with_data("", status=204)
    injected = (f'<img src="{httpserver.url_for("/pixel.png")}">'
                f'<link rel="stylesheet" href="{httpserver.url_for("/style.css")}">'
                '<script>document.title = "ran";</script></body>')
    guarded = tmp_path / "guarded.html"
    guarded.write_text(scan.html.replace("</body>", injected), encoding="utf-8")
    dom = chromium(tmp_path / "p1", "--dump-dom", guarded.as_uri()).stdout
    assert httpserver.log == []
    assert "<title>ran</title>" not in dom
    # Control: the same page without its policy does fetch and run.
    open_page = tmp_path / "open.html"
    open_page.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "",
                                guarded.read_text(encoding="utf-8")), encoding="utf-8")
    dom = chromium(tmp_path / "p2", "--dump-dom", open_page.as_uri()).stdout
    assert "<title>ran</title>" in dom
    assert {req.path for req, _ in httpserver.log} >= {"/pixel.png"}


def png_pixels(data: bytes) -> Any:
    """The pixels of an 8-bit RGB/RGBA PNG as a (height, width, 3) array (no Pillow here)."""
    import numpy as np

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    lines = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    prev = np.zeros(width * bpp, dtype=np.uint8)
    for y in range(height):
        kind, line = lines[y, 0], lines[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64)
            row = (row % 256).astype(np.uint8).reshape(-1)
        elif kind == 2:  # Up
            row = line + prev
        else:  # Average and Paeth depend on the pixel just decoded: one byte at a time
            row = np.array(_unfilter_serial(int(kind), line.tolist(), prev.tolist(), bpp),
                           dtype=np.uint8)
        out[y] = prev = row
    return out.reshape(height, width, bpp)[:, :, :3]


def _unfilter_serial(kind: int, line: list[int], prev: list[int], bpp: int) -> list[int]:
    for i, value in enumerate(line):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            line[i] = (value + (a + b) // 2) & 0xFF
            continue
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        line[i] = (value + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return line


@needs_chromium
def test_screenshot(scan: Scan, tmp_path: Path) -> None:
    """The page renders: a full-size picture with text, and the critical red of the chart."""
    shot = tmp_path / "page.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
             "--force-color-profile=srgb", scan.path.as_uri())
    import numpy as np

    pixels = png_pixels(shot.read_bytes())
    assert pixels.shape == (2000, 1280, 3)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 20
    # --critical of the light theme fills the chart's bar and the badges.
    critical = np.all(pixels == [0xA4, 0x16, 0x1A], axis=2)
    assert critical.sum() > 500
    background = np.all(pixels == [0xF6, 0xF7, 0xF9], axis=2)
    assert 0.3 < background.mean() < 0.95
