"""End to end: findings history (new / existing / fixed), ``hex history``, in-scan
deduplication, ``--baseline`` and suppressions (.hexignore, config).

Every test gets a private HEX_HOME and scans real malicious pickles written by hand
(``os.system`` streams): they are only ever written here, never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import HexRun, run_hex
from regression.pickle_asm import os_system

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
SYSTEM_RULE = "HEX-PKL-001"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"HEX_HOME": str(home)}


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty working directory: no stray hex.toml, pyproject.toml or .hexignore."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def evil(cmd: str = "id") -> bytes:
    return os_system(cmd)


def scan(target: Path | str, *args: str, env: dict[str, str], cwd: Path) -> HexRun:
    return run_hex("scan", str(target), "--json", "--workers", "0", *args, env=env, cwd=cwd)


def by_path(report: dict[str, Any], section: str = "results") -> dict[str, dict[str, Any]]:
    """Findings keyed by ``rel file name[!/member]`` (the file name under the root)."""
    out = {}
    for r in report[section]:
        name = Path(r["file_path"]).name + (f"!/{r['member']}" if r["member"] else "")
        out[name] = r
    return out


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


# --- history: new -> existing -> fixed, --clear, hex history ------------------------------

def test_new_existing_fixed_then_clear(tmp_path: Path, env: dict[str, str], home: Path,
                                       cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil("a"), "b.pkl": evil("b"),
                                      "clean.txt": b"hello\n"})
    first = scan(root, env=env, cwd=cwd)
    assert first.code == EXIT_FINDINGS, first.stderr
    one = first.json()
    assert {r["status"] for r in one["results"]} == {"new"}
    assert one["history"]["new"] == 2 and one["history"]["existing"] == 0
    assert one["history"]["fixed"] == 0 and one["history"]["previous_scan_id"] is None
    assert one["summary"]["new"] == 2

    # first_seen is carried over: age the recorded first sighting, then rescan
    with sqlite3.connect(home / "history.sqlite") as db:
        db.execute("UPDATE findings SET first_seen = '2000-01-01T00:00:00Z'")
    db.close()

    two = scan(root, env=env, cwd=cwd).json()
    assert {r["status"] for r in two["results"]} == {"existing"}
    assert (two["history"]["new"], two["history"]["existing"], two["history"]["fixed"]) == \
        (0, 2, 0)
    assert two["history"]["previous_scan_id"] == one["scan_id"]

    (root / "b.pkl").unlink()
    three = scan(root, env=env, cwd=cwd).json()
    assert [r["status"] for r in three["results"]] == ["existing"]
    assert (three["history"]["new"], three["history"]["existing"],
            three["history"]["fixed"]) == (0, 1, 1)
    fixed = three["history"]["fixed_findings"]
    assert [(f["rule_id"], f["rel_path"], f["member"]) for f in fixed] == \
        [(SYSTEM_RULE, "b.pkl", None)]
    assert fixed[0]["fingerprint"] == by_path(one)["b.pkl"]["fingerprint"]

    with sqlite3.connect(home / "history.sqlite") as db:
        seen = db.execute("SELECT rel_path, first_seen FROM findings WHERE scan_id = ?",
                          (three["scan_id"],)).fetchall()
    db.close()
    assert seen == [("a.pkl", "2000-01-01T00:00:00Z")]

    cleared = scan(root, "--clear", env=env, cwd=cwd).json()
    assert [r["status"] for r in cleared["results"]] == ["new"]
    assert cleared["history"]["previous_scan_id"] is None
    assert (cleared["history"]["new"], cleared["history"]["fixed"]) == (1, 0)

    listed = run_hex("history", "--json", env=env, cwd=cwd)
    assert listed.code == 0, listed.stderr
    scans = json.loads(listed.stdout)
    assert [s["id"] for s in scans] == [cleared["scan_id"]]  # --clear forgot the others
    assert scans[0]["paths"] == [os.path.realpath(root)]
    assert scans[0]["counts"]["critical"] == 1 and scans[0]["counts"]["new"] == 1


def test_hex_history_lists_newest_first_with_counts(tmp_path: Path, env: dict[str, str],
                                                     cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil(), "b.pkl": evil("b")})
    other = tree(tmp_path / "other", {"c.pkl": evil("c")})
    ids = [scan(root, env=env, cwd=cwd).json()["scan_id"]]
    (root / "a.pkl").unlink()
    ids.append(scan(root, env=env, cwd=cwd).json()["scan_id"])
    ids.append(scan(other, env=env, cwd=cwd).json()["scan_id"])

    scans = json.loads(run_hex("history", "--json", env=env, cwd=cwd).stdout)
    assert [s["id"] for s in scans] == ids[::-1]
    counts = [(s["counts"]["critical"], s["counts"]["new"], s["counts"]["existing"],
               s["counts"]["fixed"]) for s in scans]
    assert counts == [(1, 1, 0, 0), (1, 0, 1, 1), (2, 2, 0, 0)]

    text = run_hex("history", env=env, cwd=cwd)
    assert text.code == 0
    lines = text.stdout.splitlines()
    assert "NEW" in lines[0] and "FIXED" in lines[0] and "CRIT" in lines[0]
    assert len(lines) == 4 and str(os.path.realpath(other)) in lines[1]

    only = json.loads(run_hex("history", "--json", "--target", str(root), env=env,
                              cwd=cwd).stdout)
    assert [s["id"] for s in only] == ids[1::-1]
    limited = json.loads(run_hex("history", "--json", "--limit", "1", env=env, cwd=cwd).stdout)
    assert [s["id"] for s in limited] == [ids[2]]

    forgot = run_hex("history", "--clear", "--target", str(root), env=env, cwd=cwd)
    assert forgot.code == 0 and "forgot 2" in forgot.stdout
    assert [s["id"] for s in json.loads(run_hex("history", "--json", env=env,
                                                cwd=cwd).stdout)] == [ids[2]]
    assert scan(root, env=env, cwd=cwd).json()["history"]["new"] == 1
    run_hex("history", "--clear", env=env, cwd=cwd)
    assert "no scans recorded" in run_hex("history", env=env, cwd=cwd).stdout


def test_store_is_private_wal_and_versioned(tmp_path: Path, env: dict[str, str], home: Path,
                                            cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    assert scan(root, env=env, cwd=cwd).code == EXIT_FINDINGS
    db_file = home / "history.sqlite"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
    db = sqlite3.connect(db_file)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                          ).fetchone()[0] == "1"
        cols = {r[1] for r in db.execute("PRAGMA table_info(findings)")}
        assert {"scan_id", "fingerprint", "rule_id", "severity", "rel_path", "member",
                "first_seen", "last_seen"} <= cols
    finally:
        db.close()


def test_same_target_spelled_differently_shares_history(tmp_path: Path, env: dict[str, str],
                                                        cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    scan(root, env=env, cwd=cwd)
    again = scan(os.path.relpath(root, cwd) + "/", env=env, cwd=cwd).json()
    assert again["history"]["existing"] == 1


def test_concurrent_scans_queue_on_the_store(tmp_path: Path, env: dict[str, str], home: Path,
                                             cwd: Path) -> None:
    root = tree(tmp_path / "models", {f"m{i}.pkl": evil(str(i)) for i in range(3)})
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HEX_")}
    full_env.update(env)
    procs = [subprocess.Popen([sys.executable, "-m", "hexscan", "scan", str(root), "--json",  # noqa: S603
                               "--workers", "0"], cwd=cwd, env=full_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [EXIT_FINDINGS] * 4, [e for _, e in outs]
    reports = [json.loads(out) for out, _ in outs]
    assert all(r["warnings"] == [] for r in reports)
    news = sorted(r["history"]["new"] for r in reports)
    assert news == [0, 0, 0, 3]  # exactly one scan saw an empty history
    scans = json.loads(run_hex("history", "--json", env=env, cwd=cwd).stdout)
    assert len(scans) == 4
    db = sqlite3.connect(home / "history.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM findings").fetchone()[0] == 12
    finally:
        db.close()


# --- store failures and --no-history ------------------------------------------------------

def test_corrupt_store_is_a_warning(tmp_path: Path, env: dict[str, str], home: Path,
                                    cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    home.mkdir()
    (home / "history.sqlite").write_bytes(b"this is not a database\n" * 200)
    run = scan(root, env=env, cwd=cwd)
    assert run.code == EXIT_FINDINGS, run.stderr
    report = run.json()
    assert report["history"] is None
    assert [r["status"] for r in report["results"]] == [None]
    assert any("history store" in w and "could not be used" in w for w in report["warnings"])
    assert "Traceback" not in run.stderr

    out = tmp_path / "report.json"
    text = run_hex("scan", str(root), "-o", str(out), "--json", env=env, cwd=cwd)
    assert text.code == EXIT_FINDINGS and json.loads(out.read_text())["results"]
    listing = run_hex("history", env=env, cwd=cwd)
    assert listing.code == 1 and "could not be read" in listing.stderr
    assert "Traceback" not in listing.stderr


def test_unwritable_home_is_a_warning(tmp_path: Path, cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    blocker = tmp_path / "file"
    blocker.write_text("a file where HEX_HOME's parent should be\n")
    run = scan(root, env={"HEX_HOME": str(blocker / "home")}, cwd=cwd)
    assert run.code == EXIT_FINDINGS
    assert any("history store" in w for w in run.json()["warnings"])


def test_no_history_writes_nothing(tmp_path: Path, env: dict[str, str], home: Path,
                                   cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    report = scan(root, "--no-history", env=env, cwd=cwd).json()
    assert report["history"] is None and report["results"][0]["status"] is None
    assert "new" not in report["summary"]
    (cwd / "hex.toml").write_text("history = false\n")
    assert scan(root, env=env, cwd=cwd).json()["history"] is None
    assert not home.exists()


# --- fingerprints -------------------------------------------------------------------------

def test_fingerprints_survive_moves_renames_and_file_order(tmp_path: Path,
                                                           env: dict[str, str],
                                                           cwd: Path) -> None:
    files = {"a.pkl": evil("a"), "sub/b.pkl": evil("b"), "z.zip": b""}
    buf = tmp_path / "z.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/c.pkl", evil("c"))
    files["z.zip"] = buf.read_bytes()
    first = tree(tmp_path / "one", files)
    second = tree(tmp_path / "deep" / "er" / "two", dict(reversed(list(files.items()))))

    def prints(root: Path) -> list[tuple[str, str]]:
        report = scan(root, "--no-history", env=env, cwd=cwd).json()
        return sorted((r["rule_id"], r["fingerprint"]) for r in report["results"])

    base = prints(first)
    assert len(base) == 3
    assert prints(second) == base
    moved = tmp_path / "renamed"
    shutil.move(first, moved)
    assert prints(moved) == base
    # the history is per target: a moved tree starts its own
    assert scan(moved, env=env, cwd=cwd).json()["history"]["new"] == 3


# --- dedup --------------------------------------------------------------------------------

def test_same_payload_twice_in_one_zip_is_one_finding(tmp_path: Path, env: dict[str, str],
                                                      cwd: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("z/copy.pkl", evil())
        zf.writestr("a/data.pkl", evil())
        zf.writestr("m/other.pkl", evil("other"))  # another message: stays its own finding
    (root / "loose.pkl").write_bytes(evil())  # another file: never merged
    run = scan(root, env=env, cwd=cwd)
    results = run.json()["results"]
    found = by_path(run.json())
    assert sorted(found) == ["bundle.zip!/a/data.pkl", "bundle.zip!/m/other.pkl", "loose.pkl"]
    kept = found["bundle.zip!/a/data.pkl"]
    assert [(a["rel_path"], a["member"]) for a in kept["also_at"]] == \
        [("bundle.zip", "z/copy.pkl")]
    assert kept["also_at"][0]["file_path"] == kept["file_path"]
    assert found["bundle.zip!/m/other.pkl"]["also_at"] == []
    assert found["loose.pkl"]["also_at"] == []
    assert len(results) == 3
    text = run_hex("scan", str(root), "--no-history", env=env, cwd=cwd)
    assert "also at:" in text.stdout and "z/copy.pkl" in text.stdout


# --- baseline -----------------------------------------------------------------------------

def test_baseline_fails_only_on_new_findings(tmp_path: Path, env: dict[str, str],
                                             cwd: Path) -> None:
    root = tree(tmp_path / "models", {"old.pkl": evil("old")})
    base = tmp_path / "baseline.json"
    saved = run_hex("scan", str(root), "--json", "-o", str(base), env=env, cwd=cwd)
    assert saved.code == EXIT_FINDINGS

    known = scan(root, "--baseline", str(base), env=env, cwd=cwd)
    assert known.code == EXIT_CLEAN, known.stdout
    assert [(r["rule_id"], r["in_baseline"]) for r in known.json()["results"]] == \
        [(SYSTEM_RULE, True)]  # still shown

    (root / "new.pkl").write_bytes(evil("new"))
    mixed = scan(root, "--baseline", str(base), env=env, cwd=cwd)
    assert mixed.code == EXIT_FINDINGS
    flags = {name: r["in_baseline"] for name, r in by_path(mixed.json()).items()}
    assert flags == {"old.pkl": True, "new.pkl": False}
    # the new one alone decides: below --fail-on it no longer fails
    (root / "new.pkl").unlink()
    (root / "new.pkl").write_bytes(b"\x00" * 8)
    assert scan(root, "--baseline", str(base), env=env, cwd=cwd).code == EXIT_CLEAN


@pytest.mark.parametrize("content", ['{"results": [{"id": "x"}]}', '{"version": "1"}',
                                     "not json at all", '[1, 2]'])
def test_bad_baseline_is_a_usage_error(tmp_path: Path, env: dict[str, str], cwd: Path,
                                       content: str) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    run = scan(root, "--baseline", str(bad), env=env, cwd=cwd)
    assert run.code == EXIT_USAGE
    assert "baseline" in run.stderr and "bad.json" in run.stderr


# --- suppressions -------------------------------------------------------------------------

def test_hexignore_suppresses_with_reason(tmp_path: Path, env: dict[str, str],
                                          cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    (root / ".hexignore").write_text(
        '# accepted risks\n\n[[suppress]]\nrule = "HEX-PKL-001"\n'
        'reason = "test fixture, never loaded"\nexpires = 2999-12-31\n')
    run = scan(root, env=env, cwd=cwd)
    assert run.code == EXIT_CLEAN, run.stdout
    report = run.json()
    assert report["results"] == []
    [hidden] = report["suppressed"]
    assert hidden["rule_id"] == SYSTEM_RULE
    assert hidden["suppression"] == {"reason": "test fixture, never loaded",
                                     "source": f"{root / '.hexignore'}:3",
                                     "expires": "2999-12-31"}
    assert report["summary"]["suppressed"] == 1 and report["summary"]["security_score"] == 100
    # recorded with a status, but not counted as new
    assert hidden["status"] == "new" and report["history"]["new"] == 0
    text = run_hex("scan", str(root), env=env, cwd=cwd)
    assert "suppressed" in text.stdout and "test fixture, never loaded" in text.stdout


def test_suppressed_finding_is_not_fixed(tmp_path: Path, env: dict[str, str],
                                         cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    scan(root, env=env, cwd=cwd)
    (root / ".hexignore").write_text('[[suppress]]\npath = "a.pkl"\nreason = "accepted"\n')
    later = scan(root, env=env, cwd=cwd).json()
    assert later["history"]["fixed"] == 0 and later["suppressed"][0]["status"] == "existing"


@pytest.mark.parametrize("entry, message", [
    ('rule = "HEX-PKL-001"\n', "reason"),
    ('rule = "HEX-PKL-001"\nreason = "   "\n', "reason"),
    ('reason = "no matcher"\n', "at least one of"),
    ('fingerprint = "abc123"\nreason = "too short"\n', "fingerprint"),
    ('rule = "HEX-PKL-001"\nreason = "x"\nexpires = "next week"\n', "expires"),
    ('rule = "HEX-PKL-001"\nreason = "x"\nrules = "typo"\n', "unknown key"),
])
def test_bad_entry_is_a_usage_error(tmp_path: Path, env: dict[str, str], cwd: Path,
                                    entry: str, message: str) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    (root / ".hexignore").write_text('[[suppress]]\npath = "x"\nreason = "ok"\n\n'
                                     "[[suppress]]\n" + entry)
    run = scan(root, env=env, cwd=cwd)
    assert run.code == EXIT_USAGE
    assert f"{root / '.hexignore'}:5" in run.stderr and message in run.stderr
    assert "Traceback" not in run.stderr


def test_malformed_hexignore_is_a_usage_error(tmp_path: Path, env: dict[str, str],
                                              cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    (root / ".hexignore").write_text("[[suppress]\nrule = \n")
    run = scan(root, env=env, cwd=cwd)
    assert run.code == EXIT_USAGE and ".hexignore" in run.stderr


def test_expired_entry_no_longer_suppresses(tmp_path: Path, env: dict[str, str],
                                            cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    (root / ".hexignore").write_text('[[suppress]]\nrule = "HEX-PKL-*"\n'
                                     'reason = "until the fix ships"\nexpires = "2020-01-31"\n')
    run = scan(root, env=env, cwd=cwd)
    assert run.code == EXIT_FINDINGS
    report = run.json()
    assert report["suppressed"] == [] and len(report["results"]) == 1
    assert any("expired on 2020-01-31" in w for w in report["warnings"])


def test_fingerprint_prefix_and_path_glob_with_member(tmp_path: Path, env: dict[str, str],
                                                      cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil("a"), "b.pkl": evil("b")})
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("inner/c.pkl", evil("c"))
        zf.writestr("keep/d.pkl", evil("d"))
    before = by_path(scan(root, "--no-history", env=env, cwd=cwd).json())
    prefix = before["a.pkl"]["fingerprint"][:12]
    (root / ".hexignore").write_text(
        f'[[suppress]]\nfingerprint = "{prefix.upper()}"\nreason = "reviewed"\n\n'
        '[[suppress]]\npath = "bundle.zip!/inner/*"\nreason = "vendored"\n')
    report = scan(root, "--no-history", env=env, cwd=cwd).json()
    assert sorted(by_path(report)) == ["b.pkl", "bundle.zip!/keep/d.pkl"]
    hidden = by_path(report, "suppressed")
    assert sorted(hidden) == ["a.pkl", "bundle.zip!/inner/c.pkl"]
    assert hidden["a.pkl"]["suppression"]["reason"] == "reviewed"
    assert hidden["bundle.zip!/inner/c.pkl"]["suppression"]["source"].endswith(".hexignore:5")


def test_rule_glob_and_whole_file_path(tmp_path: Path, env: dict[str, str],
                                       cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil("a")})
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("x.pkl", evil("x"))
    (root / ".hexignore").write_text('[[suppress]]\nrule = "hex-pkl-*"\npath = "bundle.zip"\n'
                                     'reason = "the whole archive is a test asset"\n')
    report = scan(root, "--no-history", env=env, cwd=cwd).json()
    assert sorted(by_path(report)) == ["a.pkl"]
    assert sorted(by_path(report, "suppressed")) == ["bundle.zip!/x.pkl"]
    (root / ".hexignore").write_text('[[suppress]]\nrule = "HEX-ARC-*"\nreason = "other"\n')
    assert scan(root, "--no-history", env=env, cwd=cwd).json()["suppressed"] == []


def test_config_and_cwd_suppressions(tmp_path: Path, env: dict[str, str], cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil("a"), "b.pkl": evil("b")})
    (cwd / "hex.toml").write_text('[[suppress]]\npath = "a.pkl"\nreason = "from config"\n')
    (cwd / ".hexignore").write_text('[[suppress]]\npath = "b.pkl"\nreason = "from cwd"\n')
    run = scan(root, env=env, cwd=cwd)
    assert run.code == EXIT_CLEAN
    hidden = by_path(run.json(), "suppressed")
    assert hidden["a.pkl"]["suppression"]["source"] == "config"
    assert hidden["b.pkl"]["suppression"]["source"] == ".hexignore:1"
    (cwd / "hex.toml").write_text('[[suppress]]\npath = "a.pkl"\n')
    bad = scan(root, env=env, cwd=cwd)
    assert bad.code == EXIT_USAGE and "config" in bad.stderr and "reason" in bad.stderr


def test_root_hexignore_applies_only_to_its_root(tmp_path: Path, env: dict[str, str],
                                                 cwd: Path) -> None:
    one = tree(tmp_path / "one", {"a.pkl": evil()})
    two = tree(tmp_path / "two", {"a.pkl": evil()})
    (one / ".hexignore").write_text('[[suppress]]\npath = "a.pkl"\nreason = "one only"\n')
    run = run_hex("scan", str(one), str(two), "--json", "--no-history", env=env, cwd=cwd)
    assert run.code == EXIT_FINDINGS
    report = run.json()
    assert [Path(r["file_path"]).parent.name for r in report["suppressed"]] == ["one"]
    assert [Path(r["file_path"]).parent.name for r in report["results"]] == ["two"]


def test_unused_entries_are_listed_only_with_verbose(tmp_path: Path, env: dict[str, str],
                                                     cwd: Path) -> None:
    root = tree(tmp_path / "models", {"a.pkl": evil()})
    (root / ".hexignore").write_text('[[suppress]]\npath = "gone.pkl"\nreason = "old"\n')
    quiet = scan(root, "--no-history", env=env, cwd=cwd).json()
    assert quiet["warnings"] == []
    loud = scan(root, "--no-history", "-v", env=env, cwd=cwd).json()
    assert any("gone.pkl" in w and "matched no finding" in w for w in loud["warnings"])
