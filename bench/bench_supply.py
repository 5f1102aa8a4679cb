#!/usr/bin/env python3
"""Time the supply-chain path: `hex vulnfetch fetch` of PyPI-sized feeds, then matching.

    python bench/bench_supply.py                 # defaults: 20,000 advisories, 300,000 EPSS rows
    python bench/bench_supply.py --advisories 5000 --pins 200

Feeds are synthetic but shaped like the real ones (OSV all.zip of JSON records with
ECOSYSTEM ranges, aliases and CVSS vectors; the EPSS csv.gz; a KEV JSON of 1,800 entries)
and are served by a local HTTP server on 127.0.0.1, so the figures include the HTTP
transfer, parsing, the SQLite build and the atomic swap. Then it scans a requirements file
with ``--pins`` exact pins (a quarter of them vulnerable) and an empty directory, to show
what matching adds to a scan. Each hex run is a subprocess; its wall time and peak RSS
(ru_maxrss of the child) are reported. Nothing here goes beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

SEED = 20261126
VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def osv_zip(n: int, packages: list[str]) -> bytes:
    rng = random.Random(SEED)  # noqa: S311 - reproducible synthetic data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            name = packages[i % len(packages)]
            fixed = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            rec = {"schema_version": "1.6.0", "id": f"GHSA-bnch-{i:04x}-{i % 9999:04d}",
                   "modified": "2026-11-01T00:00:00Z", "published": "2025-01-01T00:00:00Z",
                   "aliases": [f"CVE-2025-{10000 + i}", f"PYSEC-2025-{i}"],
                   "summary": f"benchmark advisory {i}", "details": "x" * 400,
                   "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                                 "ranges": [{"type": "ECOSYSTEM", "events": [
                                     {"introduced": "0"}, {"fixed": fixed}]}],
                                 "versions": [f"0.{k}.0" for k in range(20)]}],
                   "severity": [{"type": "CVSS_V3", "score": VECTOR}],
                   "references": [{"type": "WEB", "url": f"https://example.invalid/{i}"}],
                   "database_specific": {"cwe_ids": ["CWE-502"]}}
            zf.writestr(f"{rec['id']}.json", json.dumps(rec))
    return buffer.getvalue()


def epss_gz(rows: int) -> bytes:
    lines = ["#model_version:v2025.03.14,score_date:2026-11-25T00:00:00+0000",
             "cve,epss,percentile"]
    rng = random.Random(SEED)  # noqa: S311 - reproducible synthetic data
    lines += [f"CVE-2025-{10000 + i},{rng.random():.5f},{rng.random():.5f}"
              for i in range(rows)]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def kev_json(rows: int) -> bytes:
    vulns = [{"cveID": f"CVE-2025-{10000 + i * 7}", "vendorProject": "v", "product": "p",
              "vulnerabilityName": "n", "dateAdded": "2026-01-01", "shortDescription": "d",
              "requiredAction": "a", "dueDate": "2026-02-01",
              "knownRansomwareCampaignUse": "Unknown"} for i in range(rows)]
    return json.dumps({"title": "bench", "catalogVersion": "1", "dateReleased":
                       "2026-11-25T00:00:00.000Z", "count": rows,
                       "vulnerabilities": vulns}).encode()


def serve(files: dict[str, bytes]) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = files.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit code of one hex subprocess."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hexscan", *args],  # noqa: S603
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"hex {' '.join(args)} failed with {code}: "
                         f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advisories", type=int, default=20_000)
    parser.add_argument("--epss", type=int, default=300_000)
    parser.add_argument("--kev", type=int, default=1_800)
    parser.add_argument("--pins", type=int, default=500)
    opts = parser.parse_args(argv)
    packages = [f"benchpkg-{i}" for i in range(max(opts.advisories // 4, 1))]
    t0 = time.perf_counter()
    files = {"/osv/PyPI/all.zip": osv_zip(opts.advisories, packages),
             "/epss.csv.gz": epss_gz(opts.epss), "/kev.json": kev_json(opts.kev)}
    made = time.perf_counter() - t0
    server, base = serve(files)
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "HEX_HOME": str(home), "HEX_OSV_URL": f"{base}/osv",
               "HEX_EPSS_URL": f"{base}/epss.csv.gz", "HEX_KEV_URL": f"{base}/kev.json"}
        fetch = ["vulnfetch", "fetch", "--source", "osv,epss,kev"]
        wall, rss, _ = run(fetch, env)
        rows.append(("vulnfetch fetch (full)", f"{len(files['/osv/PyPI/all.zip']) / 1e6:.1f} MB "
                     "zip", wall, rss))
        db_size = (home / "vulndb.sqlite").stat().st_size
        wall, rss, _ = run(["vulnfetch", "fetch", "--source", "osv,epss,kev", "--full"], env)
        rows.append(("vulnfetch fetch --full (again)", "same feeds", wall, rss))
        tree = Path(tmp) / "model"
        tree.mkdir()
        rng = random.Random(SEED)  # noqa: S311 - reproducible synthetic data
        pins = [f"{packages[rng.randrange(len(packages))]}=="
                f"{'0.1.0' if i % 4 == 0 else '99.0.0'}" for i in range(opts.pins)]
        (tree / "requirements.txt").write_text("\n".join(pins) + "\n")
        empty = Path(tmp) / "empty"
        empty.mkdir()
        for label, target, extra in (
                (f"scan: requirements.txt, {opts.pins} pins", tree, []),
                ("scan: same, --skip dependencies", tree, ["--skip", "dependencies"]),
                ("scan: empty directory", empty, [])):
            wall, rss, _ = run(["scan", str(target), "--json", "--no-history", *extra], env)
            rows.append((label, "", wall, rss))
    server.shutdown()
    print(f"feeds: {opts.advisories} advisories, {opts.epss} EPSS rows, {opts.kev} KEV "
          f"entries (generated in {made:.1f} s); DB {db_size / 1e6:.1f} MB")
    print("| step | input | wall | peak RSS |")
    print("|---|---|---:|---:|")
    for label, note, wall, rss in rows:
        print(f"| {label} | {note} | {wall:.2f} s | {rss:.0f} MiB |")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"largest child peak RSS: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
