#!/usr/bin/env python3
"""Real-world precision benchmark: hex on the model files that PyPI packages ship.

    python bench/realworld.py                 # download (cached), collect, scan, report
    python bench/realworld.py --check         # the same, exit 1 when a MEDIUM+ finding remains
    python bench/realworld.py --only mediapipe,joblib --no-download

Every file in the corpus was written by a real library or by its authors' tooling and is
shipped to millions of users, so a MEDIUM or higher finding on it is a false alarm: the
benchmark is hex's standing precision test. What it does:

1. ``pip download --no-deps`` each pinned package of ``realworld_packages.toml`` (a wheel,
   or a source archive with ``--ignore-requires-python``: it is read, never built) into
   ``bench/out/realworld/cache`` (git-ignored; nothing downloaded is committed).
2. Read each archive with zipfile/tarfile and collect every model file, by extension and
   by content (pickle, zip, npy, HDF5, TFLite, GGUF, safetensors magic), into
   ``bench/out/realworld/files/<package>-<version>/``. Extracting downloaded package
   archives here is the benchmark's job; hex itself never extracts what it scans.
3. Run ``python -m hexscan scan files/ --json`` once and summarise: packages, files per
   format, files analysed, findings per rule and severity, and every MEDIUM+ finding
   (file, rule, message), as Markdown on stdout and in ``bench/out/realworld.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
WORK = OUT / "realworld"
PACKAGES = HERE / "realworld_packages.toml"

#: Names that model loaders read (and the compressed streams joblib writes).
MODEL_EXTENSIONS = frozenset({
    ".pkl", ".pickle", ".joblib", ".jbl", ".dill", ".pt", ".pth", ".ckpt", ".bin", ".npy",
    ".npz", ".safetensors", ".onnx", ".h5", ".hdf5", ".keras", ".pb", ".pbtxt", ".binarypb",
    ".tflite", ".mlmodel", ".caffemodel", ".gguf", ".ggml", ".model", ".dat", ".mat", ".sav",
    ".gz", ".bz2", ".xz", ".lzma", ".z", ".lz4", ".zip", ".msgpack", ".jit", ".weights",
})
#: Leading bytes that mark a model or container file whatever its name.
MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\x80\x02"), (0, b"\x80\x03"), (0, b"\x80\x04"), (0, b"\x80\x05"),
    (0, b"PK\x03\x04"), (0, b"\x93NUMPY"), (0, b"\x89HDF\r\n\x1a\n"), (4, b"TFL3"),
    (0, b"GGUF"),
)
#: Files larger than this are not collected (the corpus stays a few hundred MB).
MAX_MEMBER = 200 * 1024 * 1024


@dataclass(frozen=True)
class Package:
    """One pinned package of the corpus."""

    name: str
    version: str
    kind: str
    python: str | None
    max_files: int | None
    why: str

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"


def load_packages(path: Path) -> list[Package]:
    """The pinned package list."""
    rows = tomllib.loads(path.read_text())["package"]
    return [Package(r["name"], r["version"], r["kind"], r.get("python"), r.get("max_files"),
                    r.get("why", "")) for r in rows]


def download(pkg: Package, cache: Path) -> Path | None:
    """The package archive in the cache, downloaded with pip when missing."""
    dest = cache / pkg.label
    found = _archive_in(dest)
    if found is not None:
        return found
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", str(dest), f"{pkg.name}=={pkg.version}"]
    if pkg.kind == "sdist":
        cmd += ["--no-binary", ":all:", "--ignore-requires-python"]
    else:
        cmd += ["--only-binary", ":all:"]
        if pkg.python:
            cmd += ["--python-version", pkg.python]
    print(f"downloading {pkg.label} ({pkg.kind}) ...", file=sys.stderr)
    try:
        subprocess.run(cmd, check=True, timeout=900, stdout=subprocess.DEVNULL,  # noqa: S603
                       stderr=subprocess.PIPE)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        err = getattr(exc, "stderr", b"") or b""
        print(f"  failed: {err.decode(errors='replace').strip()[-300:]}", file=sys.stderr)
        return None
    return _archive_in(dest)


def _archive_in(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    for item in sorted(folder.iterdir()):
        if item.name.endswith((".whl", ".tar.gz", ".zip", ".tgz")):
            return item
    return None


def _is_model(name: str, head: bytes) -> bool:
    ext = posixpath.splitext(name.lower())[1]
    if ext in MODEL_EXTENSIONS:
        return True
    if len(head) >= 10 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") < 1 << 28:
        return True  # safetensors: header length, then JSON
    return any(head[off:off + len(magic)] == magic for off, magic in MAGIC)


@contextlib.contextmanager
def _members(archive: Path) -> Iterator[list[tuple[str, int, object]]]:
    """(name, size, handle) of every regular file of a wheel, zip or tar archive."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            yield [(i.filename, i.file_size, (zf, i)) for i in zf.infolist() if not i.is_dir()]
        return
    with tarfile.open(archive) as tf:
        yield [(t.name, t.size, (tf, t)) for t in tf.getmembers() if t.isfile()]


def _read(handle: object, n: int | None) -> bytes:
    container, info = handle  # type: ignore[misc]
    if isinstance(container, zipfile.ZipFile):
        with container.open(info) as fh:
            return fh.read() if n is None else fh.read(n)
    fh = container.extractfile(info)
    if fh is None:
        return b""
    with fh:
        return fh.read() if n is None else fh.read(n)


def _bundle_dirs(names: list[str]) -> tuple[str, ...]:
    """Folders that are one model as a whole (a SavedModel, a Core ML package): every file
    in them is collected, so the scan sees them with their context (variables/, manifest)."""
    dirs = {posixpath.dirname(n) + "/" for n in names
            if posixpath.basename(n) == "saved_model.pb"}
    for name in names:
        head, sep, _ = name.partition(".mlpackage/")
        if sep:
            dirs.add(head + sep)
    return tuple(sorted(dirs))


def collect(pkg: Package, archive: Path, files_root: Path) -> int:
    """Copy the package's model files into ``files_root/<label>/``; returns how many."""
    dest = files_root / pkg.label
    done = files_root.parent / "collected" / pkg.label  # outside the scanned tree
    if dest.is_dir() and done.exists():
        return int(done.read_text())
    shutil.rmtree(dest, ignore_errors=True)
    with _members(archive) as members:
        bundles = _bundle_dirs([name for name, _, _ in members])
        chosen = [(name, handle) for name, size, handle in members
                  if 0 < size <= MAX_MEMBER and not name.endswith((".py", ".pyc", ".so"))
                  and (name.startswith(bundles) or _is_model(name, _read(handle, 64)))]
        if pkg.max_files and len(chosen) > pkg.max_files:
            step = len(chosen) / pkg.max_files
            chosen = [chosen[int(i * step)] for i in range(pkg.max_files)]
        for name, handle in chosen:
            rel = Path(*[p for p in Path(name).parts if p not in ("..", "/")])
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_read(handle, None))
    dest.mkdir(parents=True, exist_ok=True)
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(str(len(chosen)))
    return len(chosen)


def run_hex(roots: list[Path], report: Path, hex_cmd: list[str]) -> dict[str, object]:
    """One hex scan of the whole corpus; returns the JSON report."""
    cmd = [*hex_cmd, "scan", *map(str, roots), "--json", "-o", str(report), "--no-history",
           "--timeout", "3000", "--fail-on", "critical"]
    env = dict(os.environ)
    subprocess.run(cmd, check=False, env=env, timeout=3600)  # noqa: S603
    data: dict[str, object] = json.loads(report.read_text())
    return data


def _rel(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def summarise(report: dict[str, object], root: Path, packages: dict[str, int]) -> tuple[str, int]:
    """The Markdown summary and the number of MEDIUM+ findings."""
    files = report.get("files", [])
    results = report.get("results", [])
    assert isinstance(files, list) and isinstance(results, list)
    top = [f for f in files if f.get("member") is None]
    formats = Counter(f["format"] for f in files)
    status = Counter(f["status"] for f in files)
    by_rule = Counter((r["rule_id"], r["severity"]) for r in results)
    serious = [r for r in results if r["severity"] in ("MEDIUM", "HIGH", "CRITICAL")]
    lines = ["# hex on real-world model files", ""]
    lines += ["| package | files collected |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(packages.items())]
    lines += ["", f"Files on disk: {len(top)}; files and archive members seen: {len(files)}; "
              f"analysed: {status.get('scanned', 0)}; skipped: {status.get('skipped', 0)}; "
              f"errors: {status.get('error', 0)}; files with MEDIUM+ findings: "
              f"{len({(r['file_path'], r.get('member')) for r in serious})}.", ""]
    lines += ["| format | files and members |", "|---|---|"]
    lines += [f"| {fmt} | {n} |" for fmt, n in formats.most_common()]
    lines += ["", "| rule | severity | findings |", "|---|---|---|"]
    lines += [f"| {rule} | {sev} | {n} |" for (rule, sev), n in sorted(by_rule.items())]
    lines += ["", "## MEDIUM+ findings", ""]
    if not serious:
        lines.append("None.")
    else:
        lines += ["| file | member | rule | severity | message |", "|---|---|---|---|---|"]
        for r in sorted(serious, key=lambda r: (r["file_path"], r.get("member") or "")):
            message = str(r["description"]).replace("|", "\\|").replace("\n", " ")[:240]
            lines.append(f"| {_rel(r['file_path'], root)} | {r.get('member') or ''} | "
                         f"{r['rule_id']} | {r['severity']} | {message} |")
    return "\n".join(lines) + "\n", len(serious)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when any MEDIUM+ finding remains")
    parser.add_argument("--only", default="", help="comma-separated package names")
    parser.add_argument("--no-download", action="store_true",
                        help="use only what is already in the cache")
    parser.add_argument("--collect-only", action="store_true", help="do not run hex")
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--packages", type=Path, default=PACKAGES,
                        help="the pinned package list (TOML)")
    parser.add_argument("--hex", default=f"{sys.executable} -m hexscan",
                        help="the command that runs hex")
    args = parser.parse_args(argv)
    wanted = {n for n in args.only.split(",") if n}
    packages = [p for p in load_packages(args.packages) if not wanted or p.name in wanted]
    files_root = args.workdir / "files"
    files_root.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for pkg in packages:
        archive = _archive_in(args.workdir / "cache" / pkg.label) if args.no_download \
            else download(pkg, args.workdir / "cache")
        if archive is None:
            print(f"skipping {pkg.label}: no archive", file=sys.stderr)
            continue
        counts[pkg.label] = collect(pkg, archive, files_root)
    if args.collect_only:
        print(json.dumps(counts, indent=1))
        return 0
    roots = [files_root / label for label in counts] if wanted else [files_root]
    report = run_hex(roots, args.workdir / "report.json", args.hex.split())
    markdown, serious = summarise(report, files_root, counts)
    print(markdown)
    (args.workdir.parent / "realworld.md").write_text(markdown)
    return 1 if args.check and serious else 0


if __name__ == "__main__":
    sys.exit(main())
