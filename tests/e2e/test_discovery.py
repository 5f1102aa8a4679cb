"""End to end: what hex finds under its targets, and how it walks containers.

Every test runs ``hex`` in a subprocess on real files (see tests/fixtures/archives.py) and
validates the JSON report against the shipped schema (``HexRun.json()``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex
from fixtures.archives import PAYLOAD

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def scan_json(*args: str, cwd: Path | None = None, code: int | None = None,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    run = run_hex(*args, "--json", cwd=cwd, env=env)
    assert run.stderr == "", run.stderr
    if code is not None:
        assert run.code == code, (run.code, run.stdout[-2000:])
    return run.json()


def entries(report: dict[str, Any], path_end: str) -> dict[str | None, dict[str, Any]]:
    """files[] entries of one on-disk file, by member."""
    return {f["member"]: f for f in report["files"] if f["path"].endswith(path_end)}


def rules_at(report: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    """(rule_id, file name, member) of every result."""
    return {(r["rule_id"], Path(r["file_path"]).name, r["member"]) for r in report["results"]}


def errors_at(report: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(Path(e["path"]).name, e["member"], e["kind"]) for e in report["errors"]}


def write_limits(cwd: Path, **limits: int | float) -> None:
    body = "\n".join(f"{k} = {v}" for k, v in limits.items())
    (cwd / "hex.toml").write_text(f"[limits]\n{body}\n", encoding="utf-8")


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under root: kind/hash, mode and mtime (ns), without following links."""
    state: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(path)
            else:
                what = "dir" if stat.S_ISDIR(st.st_mode) else "other"
            state[str(path.relative_to(root))] = (what, st.st_mode, st.st_mtime_ns)
    return state


# --- plain files and directories ----------------------------------------------------------

def test_clean_directory_scans_every_file_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(PAYLOAD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.json").write_text('{"hidden_size": 4}\n')
    report = scan_json(str(tmp_path), code=EXIT_CLEAN)
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    assert by_name["model.pkl"]["format"] == "pickle"
    assert by_name["model.pkl"]["status"] == "scanned"
    assert by_name["config.json"]["status"] == "scanned"
    assert report["files_scanned"] == 2
    assert report["complete"] is True and report["errors"] == []


def test_unrecognised_file_is_listed_as_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "blob.xyz").write_bytes(bytes(range(256)) * 4)
    report = scan_json(str(tmp_path))
    (entry,) = report["files"]
    assert entry["status"] == "skipped" and entry["reason"]
    assert report["skipped"] == [entry]


def test_no_recursive_stays_at_the_top_level(tmp_path: Path) -> None:
    (tmp_path / "top.pkl").write_bytes(PAYLOAD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.pkl").write_bytes(PAYLOAD)
    names = {Path(f["path"]).name for f in scan_json(str(tmp_path))["files"]}
    assert names == {"top.pkl", "deep.pkl"}
    for flag in ("--no-recursive", "-R"):
        names = {Path(f["path"]).name for f in scan_json(str(tmp_path), flag)["files"]}
        assert names == {"top.pkl"}


def test_missing_target_is_an_error_entry_and_exit_3(tmp_path: Path) -> None:
    (tmp_path / "ok.pkl").write_bytes(PAYLOAD)
    report = scan_json(str(tmp_path / "ok.pkl"), str(tmp_path / "gone.pkl"),
                       code=EXIT_INCOMPLETE)
    assert errors_at(report) == {("gone.pkl", None, "unreadable")}
    assert entries(report, "ok.pkl")[None]["status"] == "scanned"


# --- links, fifos, sockets ----------------------------------------------------------------

def test_symlink_out_of_the_root_is_reported_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pkl").write_bytes(PAYLOAD)
    root = tmp_path / "model"
    root.mkdir()
    (root / "ok.pkl").write_bytes(PAYLOAD)
    (root / "file-link.pkl").symlink_to(outside / "secret.pkl")
    (root / "dir-link").symlink_to(outside, target_is_directory=True)
    (root / "rel-link.pkl").symlink_to(Path("..") / "outside" / "secret.pkl")
    report = scan_json(str(root), code=EXIT_CLEAN)  # MEDIUM < default fail-on HIGH
    escapes = {(r["rule_id"], Path(r["file_path"]).name, r["severity"])
               for r in report["results"]}
    assert escapes == {("HEX-DSC-001", name, "MEDIUM")
                       for name in ("file-link.pkl", "dir-link", "rel-link.pkl")}
    assert not any("outside" in f["path"] or "secret" in f["path"] for f in report["files"])
    for name in ("file-link.pkl", "dir-link", "rel-link.pkl"):
        entry = entries(report, name)[None]
        assert entry["status"] == "skipped"
        assert "out of the scanned tree" in entry["reason"]
    assert scan_json(str(root), "--fail-on", "medium", code=EXIT_FINDINGS)["results"]


def test_symlink_inside_the_root_is_not_scanned_twice(tmp_path: Path) -> None:
    (tmp_path / "real.pkl").write_bytes(PAYLOAD)
    (tmp_path / "alias.pkl").symlink_to("real.pkl")
    (tmp_path / "dangling.pkl").symlink_to("nowhere.pkl")
    (tmp_path / "loop").symlink_to("loop")
    report = scan_json(str(tmp_path), code=EXIT_CLEAN)
    assert report["results"] == []
    assert entries(report, "real.pkl")[None]["status"] == "scanned"
    for name in ("alias.pkl", "dangling.pkl", "loop"):
        assert entries(report, name)[None]["status"] == "skipped", name
    assert report["files_scanned"] == 1


def test_fifo_and_socket_are_skipped_not_read(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(PAYLOAD)
    os.mkfifo(tmp_path / "pipe.pkl")  # opening it for reading would block forever
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "sock.pkl"))
    try:
        report = scan_json(str(tmp_path), code=EXIT_CLEAN)
    finally:
        sock.close()
    for name in ("pipe.pkl", "sock.pkl"):
        entry = entries(report, name)[None]
        assert entry["status"] == "skipped" and "not a regular file" in entry["reason"]
    assert entries(report, "model.pkl")[None]["status"] == "scanned"


def test_read_only_tree_is_scanned_and_left_unchanged(
        tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    for name in ("plain.zip", "nested.tar.gz", "traversal.zip", "plain.7z", "model.pkl.gz",
                 "encrypted.zip", "truncated.zip", "model.pt"):
        shutil.copy(archive_samples[name], root / name)
    (root / "sub").mkdir()
    (root / "sub" / "model.pkl").write_bytes(PAYLOAD)
    (root / "escape").symlink_to("/etc/hostname")
    os.utime(root / "sub" / "model.pkl", ns=(1_000_000_000, 1_000_000_000))
    subprocess_cwd = tmp_path / "cwd"
    subprocess_cwd.mkdir()
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)
    before = tree_state(root)
    try:
        run = run_hex(str(root), "--json", "--hash", "--workers", "2", cwd=subprocess_cwd)
        report = run.json()
        # traversal.zip's member names are zip-slip (HEX-ARC-005, HIGH): findings win over
        # the incompleteness that the encrypted and truncated members cause.
        assert run.code == EXIT_FINDINGS
        assert {e["kind"] for e in report["errors"]} >= {"unreadable"}
        after = tree_state(root)
    finally:
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
    assert after == before
    assert not (tmp_path / "escaped.pkl").exists() and not Path("/abs/evil.pkl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "ro"]
    assert entries(report, "traversal.zip")["../../escaped.pkl"]["status"] == "scanned"
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert entries(report, "model.pkl")[None]["sha256"] == digest


# --- containers as virtual directories ----------------------------------------------------

@pytest.mark.parametrize(("sample", "member", "container_format"), [
    ("plain.zip", "model.pkl", "zip"),
    ("plain.tar", "model.pkl", "tar"),
    ("model.pkl.gz", "model.pkl", "gzip"),
    ("model.pkl.bz2", "model.pkl", "bzip2"),
    ("model.pkl.xz", "model.pkl", "xz"),
    ("plain.7z", "model.pkl", "7z"),
    ("nested.tar.gz", "nested.tar!/inner.zip!/deep/model.pkl", "gzip"),
])
def test_container_members_are_read_in_place(
        archive_samples: dict[str, Path], sample: str, member: str,
        container_format: str) -> None:
    report = scan_json(str(archive_samples[sample]), "--hash", code=EXIT_CLEAN)
    files = entries(report, sample)
    assert files[None]["format"] == container_format
    assert files[member]["format"] == "pickle"
    assert files[member]["status"] == "scanned"
    assert files[member]["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert all(f["path"] == str(archive_samples[sample]) for f in report["files"])


def test_nested_chain_lists_every_level(archive_samples: dict[str, Path]) -> None:
    files = entries(scan_json(str(archive_samples["nested.tar.gz"])), "nested.tar.gz")
    assert {m: f["format"] for m, f in files.items()} == {
        None: "gzip", "nested.tar": "tar", "nested.tar!/inner.zip": "zip",
        "nested.tar!/inner.zip!/deep/model.pkl": "pickle"}


def test_model_formats_that_are_containers(archive_samples: dict[str, Path]) -> None:
    report = scan_json(str(archive_samples["model.pt"]), str(archive_samples["model.joblib"]),
                       str(archive_samples["arrays.npz"]), code=EXIT_CLEAN)
    pt = entries(report, "model.pt")
    assert pt[None]["format"] == "pytorch-zip"
    assert any(m and m.endswith("data.pkl") and f["format"] == "pickle" for m, f in pt.items())
    joblib_files = entries(report, "model.joblib")
    assert joblib_files[None]["format"] == "zlib"
    assert joblib_files["model.joblib"]["format"] == "joblib"
    npz = entries(report, "arrays.npz")
    assert npz[None]["format"] == "numpy-npz" and npz["a.npy"]["format"] == "numpy-npy"


def test_tar_link_member_is_listed_not_followed(archive_samples: dict[str, Path]) -> None:
    files = entries(scan_json(str(archive_samples["plain.tar"]), code=EXIT_CLEAN), "plain.tar")
    assert files["link.pkl"]["status"] == "skipped"
    assert "link" in files["link.pkl"]["reason"]


def test_max_depth_bounds_nesting(tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    deep = str(archive_samples["deep.zip"])
    unbounded = entries(scan_json(deep, cwd=tmp_path, code=EXIT_CLEAN), "deep.zip")
    assert "l1.zip!/l2.zip!/l3.zip!/l4.zip!/model.pkl" in unbounded
    write_limits(tmp_path, max_depth=2)
    report = scan_json(deep, cwd=tmp_path, code=EXIT_INCOMPLETE)
    assert rules_at(report) == {("HEX-ARC-002", "deep.zip", "l1.zip!/l2.zip")}
    assert errors_at(report) == {("deep.zip", "l1.zip!/l2.zip", "limit")}
    assert set(entries(report, "deep.zip")) == {None, "l1.zip", "l1.zip!/l2.zip"}


def test_max_members_bounds_zip_tar_and_7z(tmp_path: Path,
                                           archive_samples: dict[str, Path]) -> None:
    write_limits(tmp_path, max_members=5)
    report = scan_json(str(archive_samples["many.zip"]), str(archive_samples["many.tar"]),
                       str(archive_samples["plain.7z"]), cwd=tmp_path, code=EXIT_INCOMPLETE)
    assert rules_at(report) == {("HEX-ARC-003", "many.zip", None),
                                ("HEX-ARC-003", "many.tar", None)}
    assert errors_at(report) == {("many.zip", None, "limit"), ("many.tar", None, "limit")}
    for name in ("many.zip", "many.tar"):
        assert len([m for m in entries(report, name) if m]) == 5
    write_limits(tmp_path, max_members=1)
    report = scan_json(str(archive_samples["plain.7z"]), cwd=tmp_path, code=EXIT_INCOMPLETE)
    assert rules_at(report) == {("HEX-ARC-003", "plain.7z", None)}


def test_member_size_limit(tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    write_limits(tmp_path, max_member_size=100_000)
    report = scan_json(str(archive_samples["big.tar"]), str(archive_samples["bomb.zip"]),
                       str(archive_samples["bomb.gz"]), cwd=tmp_path)
    assert rules_at(report) == {("HEX-ARC-001", "big.tar", "big.bin"),
                                ("HEX-ARC-001", "bomb.zip", "zeros.bin"),
                                ("HEX-ARC-001", "bomb.gz", "bomb")}
    assert errors_at(report) == {("big.tar", "big.bin", "limit"),
                                 ("bomb.zip", "zeros.bin", "limit"),
                                 ("bomb.gz", "bomb", "limit")}
    assert entries(report, "big.tar")["small.pkl"]["status"] == "scanned"  # the rest is read


def test_findings_at_fail_on_beat_incomplete(tmp_path: Path,
                                             archive_samples: dict[str, Path]) -> None:
    write_limits(tmp_path, max_member_size=100_000)
    run = run_hex(str(archive_samples["big.tar"]), "--json", cwd=tmp_path)
    assert run.code == EXIT_FINDINGS  # HEX-ARC-001 is HIGH
    run = run_hex(str(archive_samples["big.tar"]), "--json", "--fail-on", "critical",
                  cwd=tmp_path)
    assert run.code == EXIT_INCOMPLETE


def test_compression_ratio_limit(tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    bombs = (str(archive_samples["bomb.zip"]), str(archive_samples["bomb.gz"]))
    assert scan_json(*bombs, cwd=tmp_path, code=EXIT_CLEAN)["errors"] == []  # 4 MiB is fine
    write_limits(tmp_path, max_ratio=10, ratio_min_size=65536)
    report = scan_json(*bombs, cwd=tmp_path, code=EXIT_FINDINGS)
    assert rules_at(report) == {("HEX-ARC-001", "bomb.zip", "zeros.bin"),
                                ("HEX-ARC-001", "bomb.gz", "bomb")}
    zip_finding = next(r for r in report["results"] if r["file_path"].endswith("bomb.zip"))
    assert zip_finding["evidence"]["ratio"] > 10
    assert any(e["message"].startswith("max_ratio") for e in report["errors"])


def test_total_decompressed_size_limit(tmp_path: Path,
                                       archive_samples: dict[str, Path]) -> None:
    write_limits(tmp_path, max_total_size=100_000)
    report = scan_json(str(archive_samples["total.tar"]), cwd=tmp_path, code=EXIT_FINDINGS)
    assert ("HEX-ARC-001", "total.tar", "part2.bin") in rules_at(report)
    assert errors_at(report) == {("total.tar", "part2.bin", "limit")}
    files = entries(report, "total.tar")
    assert files["part0.bin"]["status"] != "error" and files["part2.bin"]["status"] == "error"


@pytest.mark.parametrize(("sample", "member"), [
    ("encrypted.zip", "secret.pkl"),
    ("encrypted.7z", "secret.pkl"),
    ("encrypted-headers.7z", None),
])
def test_encrypted_content_is_a_finding_and_incomplete(
        archive_samples: dict[str, Path], sample: str, member: str | None) -> None:
    report = scan_json(str(archive_samples[sample]), code=EXIT_INCOMPLETE)
    assert rules_at(report) == {("HEX-ARC-004", sample, member)}
    assert errors_at(report) == {(sample, member, "unreadable")}
    if member:
        assert entries(report, sample)[member]["status"] == "skipped"


def test_encrypted_zip_plain_member_is_still_read(archive_samples: dict[str, Path]) -> None:
    files = entries(scan_json(str(archive_samples["encrypted.zip"])), "encrypted.zip")
    assert files["open.txt"]["status"] == "scanned"


@pytest.mark.parametrize(("sample", "member"), [
    ("truncated.zip", None),
    ("truncated.tar", "big.bin"),
    ("truncated.tar.gz", "truncated.tar"),
    ("truncated.bz2", "truncated"),
    ("truncated.xz", "truncated"),
    ("corrupt.gz", "corrupt"),
    ("truncated.7z", None),
    ("truncated.joblib", "truncated.joblib"),
])
def test_corrupt_archives_are_malformed_never_a_crash(
        archive_samples: dict[str, Path], sample: str, member: str | None) -> None:
    report = scan_json(str(archive_samples[sample]), code=EXIT_INCOMPLETE)
    assert ("HEX-FMT-002", sample, member) in rules_at(report)
    assert (sample, member, "malformed") in errors_at(report)
    assert not any(e["kind"] in ("crash", "scanner-error") for e in report["errors"])
    assert entries(report, sample)[member]["status"] == "error"


def test_truncated_zip_keeps_its_container_format(archive_samples: dict[str, Path]) -> None:
    files = entries(scan_json(str(archive_samples["truncated.zip"])), "truncated.zip")
    assert files[None]["format"] == "zip" and files[None]["status"] == "error"


# --- fingerprints -------------------------------------------------------------------------

def _fingerprints(report: dict[str, Any]) -> dict[tuple[str, str, str | None], str]:
    return {(r["rule_id"], Path(r["file_path"]).name, r["member"]): r["fingerprint"]
            for r in report["results"]}


def test_fingerprints_are_stable_across_runs_order_and_location(
        tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    first = tmp_path / "first" / "tree"
    first.mkdir(parents=True)
    for name in ("encrypted.zip", "encrypted.7z", "many.zip", "bomb.zip", "plain.zip"):
        shutil.copy(archive_samples[name], first / name)
    (first / "nested").mkdir()
    shutil.copy(archive_samples["truncated.zip"], first / "nested" / "broken.zip")
    (first / "junk.bin").write_bytes(b"\x00\x01\x02 not a model" * 8)
    (first / "out.pkl").symlink_to("/etc/hostname")
    write_limits(tmp_path, max_members=5, max_ratio=10, ratio_min_size=65536)
    one = scan_json(str(first), cwd=tmp_path)
    prints = _fingerprints(one)
    assert len(prints) >= 6 and len(set(prints.values())) == len(prints)
    assert {rule for rule, _, _ in prints} >= {"HEX-ARC-001", "HEX-ARC-003", "HEX-ARC-004",
                                               "HEX-FMT-001", "HEX-FMT-002", "HEX-DSC-001"}
    assert _fingerprints(scan_json(str(first), "--workers", "1", cwd=tmp_path)) == prints
    second = tmp_path / "elsewhere" / "deeper" / "copy"
    shutil.copytree(first, second, symlinks=True)
    assert _fingerprints(scan_json(str(second), cwd=tmp_path)) == prints
    relative = scan_json(os.path.relpath(second, tmp_path), "--workers", "0", cwd=tmp_path)
    assert _fingerprints(relative) == prints
    ids = {r["id"] for r in one["results"]}
    assert ids == {r["id"] for r in relative["results"]}
    files = sorted(str(p) for p in first.iterdir() if p.is_file() and not p.is_symlink())
    forward = _fingerprints(scan_json(*files, cwd=tmp_path))
    backward = _fingerprints(scan_json(*reversed(files), cwd=tmp_path))
    assert forward == backward and forward
