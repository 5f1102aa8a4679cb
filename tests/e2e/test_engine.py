"""End to end: the worker pool, its deadlines and crash isolation.

A test-only scanner plugin (tests/plugins/hextest_plugin.py) misbehaves on purpose by file
name: ``*.hang`` sleeps, ``*.crash`` calls os._exit(70), ``*.abort`` calls os.abort(),
``*.boom`` raises, ``*.pid`` reports the process that scanned it. It is loaded through
the config key ``plugins`` with PYTHONPATH pointing at tests/plugins.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, HexRun, run_hex

PLUGIN_DIR = REPO / "tests" / "plugins"
PLUGIN = "hextest_plugin:MisbehavingScanner"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working directory whose hex.toml loads the misbehaving plugin."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "hex.toml").write_text(f'plugins = ["{PLUGIN}"]\n', encoding="utf-8")
    return cwd


def plugin_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(PLUGIN_DIR), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, **(extra or {})}


def hex_in(project: Path, *args: str, env: dict[str, str] | None = None) -> HexRun:
    return run_hex(*args, "--json", cwd=project, env=plugin_env(env), timeout=120)


def make_files(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_bytes(b"plain text content\n")
    return root


def errors_by_file(report: dict[str, Any]) -> dict[str, str]:
    return {Path(e["path"]).name + (f"!/{e['member']}" if e["member"] else ""): e["kind"]
            for e in report["errors"]}


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {Path(f["path"]).name: f["status"] for f in report["files"] if f["member"] is None}


def planted(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["rule_id"] == "TEST-PLANTED-001"]


def test_hang_crash_abort_and_exception_are_isolated(project: Path, tmp_path: Path) -> None:
    good = [f"good{i}.txt" for i in range(4)]
    root = make_files(tmp_path / "scan", ["a.hang", "b.crash", "c.abort", "d.boom", *good])
    run = hex_in(project, str(root), "--file-timeout", "2", "--workers", "2")
    report = run.json()
    assert run.code == EXIT_INCOMPLETE, run.stdout[-3000:]
    assert run.stderr == ""
    assert errors_by_file(report) == {"a.hang": "timeout", "b.crash": "crash",
                                      "c.abort": "crash", "d.boom": "scanner-error"}
    messages = {Path(e["path"]).name: e["message"] for e in report["errors"]}
    assert "per-file limit of 2 s" in messages["a.hang"]
    assert "exit code 70" in messages["b.crash"]
    assert "signal 6" in messages["c.abort"]
    assert "planted scanner failure" in messages["d.boom"]
    state = statuses(report)
    assert all(state[name] == "scanned" for name in good)
    assert all(state[name] == "error" for name in ("a.hang", "b.crash", "c.abort"))
    assert report["complete"] is False


def test_crash_inside_a_container_member_fails_only_that_file(project: Path,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "scan"
    root.mkdir()
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("weights/evil.crash", b"x")
    make_files(root, ["after.txt"])
    report = hex_in(project, str(root), "--workers", "1").json()
    assert errors_by_file(report) == {"bundle.zip": "crash"}
    assert statuses(report)["after.txt"] == "scanned"


def test_member_hang_is_cut_by_the_file_timeout(project: Path, tmp_path: Path) -> None:
    root = tmp_path / "scan"
    root.mkdir()
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("slow.hang", b"x")
    run = hex_in(project, str(root / "bundle.zip"), "--file-timeout", "1")
    assert run.code == EXIT_INCOMPLETE
    assert errors_by_file(run.json()) == {"bundle.zip": "timeout"}


def test_whole_scan_timeout_marks_unfinished_files(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["a.hang", "b.txt", "c.txt"])
    run = hex_in(project, str(root), "--workers", "1", "--timeout", "2",
                 "--file-timeout", "600")
    report = run.json()
    assert run.code == EXIT_INCOMPLETE
    assert errors_by_file(report) == {"a.hang": "timeout", "b.txt": "timeout",
                                      "c.txt": "timeout"}
    assert all("whole-scan timeout" in e["message"] for e in report["errors"])


def test_env_timeout_is_the_whole_scan_limit(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["a.hang"])
    run = hex_in(project, str(root), "--file-timeout", "600", env={"HEX_TIMEOUT": "1.5"})
    assert run.code == EXIT_INCOMPLETE
    assert "whole-scan timeout" in run.json()["errors"][0]["message"]


@pytest.mark.parametrize(("workers", "expected"), [("1", 1), ("3", 3)])
def test_workers_sets_the_number_of_processes(project: Path, tmp_path: Path, workers: str,
                                              expected: int) -> None:
    root = make_files(tmp_path / "scan", [f"f{i}.pid" for i in range(6)])
    report = hex_in(project, str(root), "--workers", workers).json()
    found = planted(report)
    assert len(found) == 6
    pids = {r["evidence"]["pid"] for r in found}
    assert len(pids) == expected
    assert all(r["evidence"]["ppid"] != os.getpid() for r in found)  # not the hex process


def test_workers_0_scans_in_process(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["a.pid", "b.pid", "c.boom", "d.txt"])
    run = hex_in(project, str(root), "--workers", "0")
    report = run.json()
    found = planted(report)
    assert len(found) == 2
    # In-process: the scanning process is hex itself, whose parent is this test process.
    assert {r["evidence"]["ppid"] for r in found} == {os.getpid()}
    assert errors_by_file(report) == {"c.boom": "scanner-error"}
    assert run.code == EXIT_INCOMPLETE


def test_default_workers_is_4(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", [f"f{i}.pid" for i in range(8)])
    report = hex_in(project, str(root)).json()
    assert len({r["evidence"]["pid"] for r in planted(report)}) == 4


def test_workers_precedence_config_env_flag(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", [f"f{i}.pid" for i in range(6)])

    def pids(*args: str, env: dict[str, str] | None = None) -> int:
        report = hex_in(project, str(root), *args, env=env).json()
        return len({r["evidence"]["pid"] for r in planted(report)})

    (project / "hex.toml").write_text(f'plugins = ["{PLUGIN}"]\nworkers = 2\n')
    assert pids() == 2  # config beats the default of 4
    assert pids(env={"HEX_WORKERS": "3"}) == 3  # env beats config
    assert pids("-w", "1", env={"HEX_WORKERS": "3"}) == 1  # flag beats env


def test_file_timeout_precedence_config_env_flag(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["a.hang"])

    def limit(*args: str, env: dict[str, str] | None = None) -> str:
        report = hex_in(project, str(root), *args, env=env).json()
        (error,) = report["errors"]
        assert error["kind"] == "timeout"
        return error["message"]

    (project / "hex.toml").write_text(f'plugins = ["{PLUGIN}"]\nfile_timeout = 1.25\n')
    assert "limit of 1.25 s" in limit()
    assert "limit of 1.5 s" in limit(env={"HEX_FILE_TIMEOUT": "1.5"})
    assert "limit of 1.75 s" in limit("--file-timeout", "1.75",
                                      env={"HEX_FILE_TIMEOUT": "1.5"})


def test_planted_findings_drive_the_exit_code(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["x.medium", "y.low"])
    assert hex_in(project, str(root)).code == EXIT_CLEAN
    assert hex_in(project, str(root), "--fail-on", "medium").code == EXIT_FINDINGS
    make_files(root, ["z.critical"])
    run = hex_in(project, str(root))
    assert run.code == EXIT_FINDINGS
    report = run.json()
    assert [r["severity"] for r in report["results"]] == ["CRITICAL", "MEDIUM", "LOW"]
    assert report["summary"]["critical"] == 1 and report["summary"]["total_issues"] == 3
    assert report["summary"]["security_score"] == 100 - 40 - 8 - 2


def test_findings_beat_incomplete_in_the_exit_code(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["x.high", "y.boom"])
    assert hex_in(project, str(root)).code == EXIT_FINDINGS
    assert hex_in(project, str(root), "--fail-on", "critical").code == EXIT_INCOMPLETE


def test_unknown_plugin_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "hex.toml").write_text('plugins = ["no_such_module_xyz:Scanner"]\n')
    (tmp_path / "a.txt").write_text("hi\n")
    run = run_hex(str(tmp_path / "a.txt"), cwd=tmp_path)
    assert run.code == EXIT_USAGE
    assert "no_such_module_xyz" in run.stderr and run.stdout == ""


def test_skip_a_plugin_scanner(project: Path, tmp_path: Path) -> None:
    root = make_files(tmp_path / "scan", ["x.high", "y.crash"])
    run = hex_in(project, str(root), "--skip", "misbehave")
    assert run.code == EXIT_CLEAN
    assert planted(run.json()) == []
