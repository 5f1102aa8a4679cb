"""End to end: the ``hex`` command line, its settings layers, outputs and exit codes."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import HexRun, run_hex, validate_report
from fixtures.archives import PAYLOAD

from hexscan import __version__

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty working directory (so no stray hex.toml or pyproject.toml applies)."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def mixed(tmp_path: Path, archive_samples: dict[str, Path]) -> Path:
    """A tree with two LOW (HEX-FMT-001, HEX-ARC-004: a really encrypted member, which is
    also the incomplete part), one MEDIUM (HEX-DSC-001) finding and one clean file."""
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "model.pkl").write_bytes(PAYLOAD)
    (root / "weights.bin").write_bytes(b"\x00\x01\x02 no known format " * 4)
    shutil.copy(archive_samples["encrypted.zip"], root / "bundle.zip")
    (root / "escape.pkl").symlink_to("/etc/hostname")
    return root


def settings(cwd: Path, target: Path, *args: str, env: dict[str, str] | None = None
             ) -> dict[str, Any]:
    """The effective settings hex reports on stderr with --verbose."""
    run = run_hex(str(target), "--json", *args, cwd=cwd, env=env)
    assert run.code in (EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE), run.stderr
    run.json()  # the report itself is still valid
    first = run.stderr.splitlines()[0]
    return json.loads(first)  # type: ignore[no-any-return]


def rule_severities(run: HexRun) -> list[tuple[str, str]]:
    return sorted((r["rule_id"], r["severity"]) for r in run.json()["results"])


# --- the command forms --------------------------------------------------------------------

def test_scan_and_shorthand_give_the_same_report(cwd: Path, mixed: Path) -> None:
    full = run_hex("scan", str(mixed), "--json", cwd=cwd)
    short = run_hex(str(mixed), "--json", cwd=cwd)
    module = full  # run_hex runs `python -m hexscan`; check the console script too
    script = shutil.which("hex")
    assert script, "the hex console script is installed with the package"
    proc = subprocess.run([script, str(mixed), "--json"],  # noqa: S603
                          capture_output=True, text=True,
                          cwd=cwd, check=False, env={k: v for k, v in os.environ.items()
                                                     if not k.startswith("HEX_")})
    assert full.code == short.code == proc.returncode == EXIT_INCOMPLETE
    for report in (full.json(), short.json(), json.loads(proc.stdout)):
        assert [r["fingerprint"] for r in report["results"]] == \
            [r["fingerprint"] for r in module.json()["results"]]


def test_a_directory_named_scan_is_a_path(cwd: Path) -> None:
    (cwd / "scan").mkdir()
    (cwd / "scan" / "model.pkl").write_bytes(PAYLOAD)
    for args in (["./scan"], ["scan", "scan"], ["scan", "./scan"]):
        run = run_hex(*args, "--json", cwd=cwd)
        assert run.code == EXIT_CLEAN, (args, run.stderr)
        assert [f["format"] for f in run.json()["files"]] == ["pickle"]
    bare = run_hex("scan", cwd=cwd)  # the sub-command with no path: a usage error
    assert bare.code == EXIT_USAGE and bare.stdout == ""


def test_version(cwd: Path) -> None:
    for args in (["--version"], ["scan", "--version"]):
        run = run_hex(*args, cwd=cwd)
        assert run.code == 0 and __version__ in run.stdout


def test_help_lists_exit_codes(cwd: Path) -> None:
    run = run_hex("scan", "--help", cwd=cwd)
    assert run.code == 0
    for flag in ("--verbose", "--recursive", "--workers", "--timeout", "--file-timeout",
                 "--format", "--json", "--output", "--skip", "--severity", "--fail-on",
                 "--clear", "--hash", "--config"):
        assert flag in run.stdout, flag
    assert "Exit codes" in run.stdout and "3  scan incomplete" in run.stdout


# --- JSON shape ---------------------------------------------------------------------------

def test_json_report_shape(cwd: Path, mixed: Path) -> None:
    run = run_hex(str(mixed), "--json", "--hash", cwd=cwd)
    data = run.json()  # validates against the shipped schema
    uuid.UUID(data["scan_id"])
    stamp = datetime.strptime(data["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 600
    assert data["target"] == str(mixed) and data["version"] == __version__
    assert set(data) >= {"scan_id", "timestamp", "target", "version", "results", "summary",
                         "files_scanned", "errors", "skipped", "duration_s", "files"}
    result_keys = {"id", "type", "severity", "title", "description", "file_path",
                   "line_number", "confidence", "cvss", "cwe", "remediation", "references",
                   "rule_id", "member", "fingerprint", "scanner", "evidence"}
    assert data["results"] and all(set(r) >= result_keys for r in data["results"])
    assert set(data["summary"]) >= {"total_issues", "critical", "high", "medium", "low",
                                    "security_score"}
    assert data["summary"]["total_issues"] == len(data["results"]) == 3
    assert data["summary"]["medium"] == 1 and data["summary"]["low"] == 2
    assert all(set(f) == {"path", "member", "format", "size", "status", "reason", "sha256",
                                 "rel_path"}
               for f in data["files"])
    assert data["skipped"] == [f for f in data["files"] if f["status"] == "skipped"]
    assert data["files_scanned"] == sum(f["status"] == "scanned" for f in data["files"])
    (error,) = data["errors"]
    assert error["member"] == "secret.pkl" and error["kind"] == "unreadable"
    encrypted = next(r for r in data["results"] if r["rule_id"] == "HEX-ARC-004")
    assert encrypted["file_path"] == str(mixed / "bundle.zip")
    assert encrypted["member"] == "secret.pkl" and encrypted["cwe"] == ["CWE-311"]


def test_hash_flag_fills_sha256(cwd: Path, mixed: Path) -> None:
    def model_entry(*args: str) -> dict[str, Any]:
        files = run_hex(str(mixed), "--json", *args, cwd=cwd).json()["files"]
        return next(f for f in files if f["path"].endswith("model.pkl"))

    import hashlib

    assert model_entry()["sha256"] is None
    assert model_entry("--hash")["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()


def test_output_file(cwd: Path, mixed: Path) -> None:
    out = cwd / "report.json"
    run = run_hex(str(mixed), "--format", "json", "-o", str(out), cwd=cwd)
    assert run.code == EXIT_INCOMPLETE and run.stdout == "" and run.stderr == ""
    validate_report(json.loads(out.read_text(encoding="utf-8")))
    table = cwd / "report.txt"
    run_hex(str(mixed), "-f", "table", "--output", str(table), cwd=cwd)
    assert "HEX-ARC-004" in table.read_text(encoding="utf-8")
    bad = run_hex(str(mixed), "-o", str(cwd / "no-such-dir" / "r.json"), cwd=cwd)
    assert bad.code == EXIT_USAGE and "cannot write" in bad.stderr


# --- human formats and colour -------------------------------------------------------------

def test_text_output_is_grouped_by_file(cwd: Path, mixed: Path) -> None:
    run = run_hex(str(mixed), cwd=cwd)
    assert run.code == EXIT_INCOMPLETE
    lines = run.stdout.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith(str(mixed))]
    assert [lines[i] for i in headers] == [str(mixed / n) for n in
                                          ("bundle.zip", "escape.pkl", "weights.bin")]
    for header, rule in zip(headers, ("HEX-ARC-004", "HEX-DSC-001", "HEX-FMT-001"),
                            strict=True):
        assert rule in lines[header + 1]
    assert "[secret.pkl]" in lines[headers[0] + 1]  # the member is shown, not eaten as markup
    assert "error" in run.stdout and "secret.pkl" in run.stdout
    assert not ANSI.search(run.stdout)  # not a terminal: no colour


def test_verbose_text_lists_every_file(cwd: Path, mixed: Path) -> None:
    run = run_hex(str(mixed), "-v", cwd=cwd)
    for name in ("model.pkl", "weights.bin", "bundle.zip!/open.txt", "bundle.zip!/secret.pkl"):
        assert name in run.stdout, name
    quiet = run_hex(str(mixed), cwd=cwd)
    assert "model.pkl" not in quiet.stdout  # clean files are only listed with -v


def test_table_output(cwd: Path, mixed: Path) -> None:
    run = run_hex(str(mixed), "--format", "table", cwd=cwd)
    for text in ("Severity", "Rule", "File", "Member", "HEX-ARC-004", "HEX-DSC-001",
                 "HEX-FMT-001", "security score"):
        assert text in run.stdout, text
    assert not ANSI.search(run.stdout)


def _run_on_pty(args: list[str], env: dict[str, str], cwd: Path, stream: str
                ) -> tuple[int, str, str]:
    """Run hex with ``stream`` (stdout or stderr) on a pseudo-terminal; return
    (code, what the terminal showed, the other stream)."""
    master, slave = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEX_")
            and k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    kwargs: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    kwargs[stream] = slave
    proc = subprocess.Popen([sys.executable, "-m", "hexscan", *args], cwd=cwd,  # noqa: S603
                            env={**base, "TERM": "xterm-256color", "COLUMNS": "120", **env},
                            **kwargs)
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    other = (proc.stderr if stream == "stdout" else proc.stdout).read()  # type: ignore[union-attr]
    code = proc.wait(60)
    os.close(master)
    return code, shown.decode("utf-8", "replace"), other.decode("utf-8", "replace")


def test_colour_on_a_terminal_and_no_color_turns_it_off(cwd: Path, mixed: Path) -> None:
    code, shown, _ = _run_on_pty([str(mixed)], {}, cwd, "stdout")
    assert code == EXIT_INCOMPLETE and "HEX-ARC-004" in shown
    assert ANSI.search(shown), "severities are coloured on a terminal"
    code, shown, _ = _run_on_pty([str(mixed)], {"NO_COLOR": "1"}, cwd, "stdout")
    assert code == EXIT_INCOMPLETE and "HEX-ARC-004" in shown
    assert not ANSI.search(shown)
    _, shown, _ = _run_on_pty([str(mixed), "--json"], {}, cwd, "stdout")
    assert not ANSI.search(shown)  # JSON is never coloured
    validate_report(json.loads(shown.replace("\r\n", "\n")))


def test_progress_only_on_a_terminal(cwd: Path, mixed: Path) -> None:
    code, shown, stdout = _run_on_pty([str(mixed), "--json"], {}, cwd, "stderr")
    assert code == EXIT_INCOMPLETE
    assert "scanning" in shown or "\x1b[?25l" in shown  # rich drew (and cleared) the bar
    validate_report(json.loads(stdout))
    plain = run_hex(str(mixed), "--json", cwd=cwd)
    assert plain.stderr == ""  # not a terminal: nothing on stderr


# --- rules, explain, scanners ------------------------------------------------------------

def test_rules_lists_the_catalogue(cwd: Path) -> None:
    run = run_hex("rules", cwd=cwd)
    assert run.code == 0
    ids = [line.split()[0] for line in run.stdout.splitlines()]
    assert ids == sorted(ids)
    assert {"HEX-ARC-001", "HEX-ARC-002", "HEX-ARC-003", "HEX-ARC-004", "HEX-DSC-001",
            "HEX-FMT-001", "HEX-FMT-002", "HEX-FMT-003"} <= set(ids)


def test_explain(cwd: Path) -> None:
    run = run_hex("explain", "hex-arc-004", cwd=cwd)
    assert run.code == 0
    assert run.stdout.startswith("HEX-ARC-004: Encrypted member")
    assert "How to fix:" in run.stdout and "CWE-311" in run.stdout
    unknown = run_hex("explain", "HEX-NOPE-999", cwd=cwd)
    assert unknown.code == EXIT_USAGE and "unknown rule" in unknown.stderr
    assert unknown.stdout == ""


def test_scanners_lists_skip_names(cwd: Path, mixed: Path) -> None:
    run = run_hex("scanners", cwd=cwd)
    assert run.code == 0
    names = [line.split()[0] for line in run.stdout.splitlines()]
    assert "format" in names
    skipped = run_hex(str(mixed), "--json", "--skip", "format", cwd=cwd)
    assert "HEX-FMT-001" not in {r["rule_id"] for r in skipped.json()["results"]}
    unknown = run_hex(str(mixed), "--skip", "format,nonesuch", cwd=cwd)
    assert unknown.code == EXIT_USAGE and "nonesuch" in unknown.stderr


# --- severity filter and fail-on ---------------------------------------------------------

def test_severity_filters_what_is_shown(cwd: Path, mixed: Path) -> None:
    everything = run_hex(str(mixed), "--json", cwd=cwd)
    assert rule_severities(everything) == [("HEX-ARC-004", "LOW"),
                                           ("HEX-DSC-001", "MEDIUM"), ("HEX-FMT-001", "LOW")]
    low = run_hex(str(mixed), "--json", "--severity", "low", cwd=cwd)
    assert rule_severities(low) == [("HEX-ARC-004", "LOW"), ("HEX-FMT-001", "LOW")]
    assert low.json()["summary"]["total_issues"] == 2
    some = run_hex(str(mixed), "--json", "--severity", "critical,HIGH, medium", cwd=cwd)
    assert rule_severities(some) == [("HEX-DSC-001", "MEDIUM")]
    text = run_hex(str(mixed), "--severity", "low", cwd=cwd)
    assert "HEX-FMT-001" in text.stdout and "HEX-DSC-001  " not in text.stdout


def test_fail_on_sets_the_threshold(cwd: Path, mixed: Path) -> None:
    assert run_hex(str(mixed), cwd=cwd).code == EXIT_INCOMPLETE  # default HIGH: nothing
    assert run_hex(str(mixed), "--fail-on", "medium", cwd=cwd).code == EXIT_FINDINGS
    assert run_hex(str(mixed), "--fail-on", "LOW", cwd=cwd).code == EXIT_FINDINGS
    clean = mixed / "model.pkl"
    assert run_hex(str(clean), "--fail-on", "info", cwd=cwd).code == EXIT_CLEAN


def test_clear_is_accepted(cwd: Path, mixed: Path) -> None:
    run = run_hex(str(mixed / "model.pkl"), "--clear", "--json", cwd=cwd)
    assert run.code == EXIT_CLEAN
    assert not (cwd / ".hex-home-unused").exists()  # nothing is written to HEX_HOME yet


# --- usage and configuration errors: exit 2 -----------------------------------------------

@pytest.mark.parametrize("args", [
    ["--workers", "-1"], ["-w", "many"], ["--timeout", "0"], ["--file-timeout", "-5"],
    ["--format", "yaml"], ["--severity", "bogus"], ["--fail-on", "severe"],
    ["--no-such-flag"], ["--config", "missing.toml"],
])
def test_bad_flags_are_usage_errors(cwd: Path, mixed: Path, args: list[str]) -> None:
    run = run_hex(str(mixed), *args, cwd=cwd)
    assert run.code == EXIT_USAGE, (args, run.stdout, run.stderr)
    assert run.stdout == "" and run.stderr


@pytest.mark.parametrize("env", [
    {"HEX_WORKERS": "lots"}, {"HEX_TIMEOUT": "soon"}, {"HEX_FILE_TIMEOUT": "-1"},
    {"HEX_VERBOSE": "perhaps"}, {"HEX_WORKERS": "-2"},
])
def test_bad_environment_is_a_usage_error(cwd: Path, mixed: Path, env: dict[str, str]) -> None:
    run = run_hex(str(mixed), env=env, cwd=cwd)
    assert run.code == EXIT_USAGE, (env, run.stderr)
    assert run.stdout == ""


@pytest.mark.parametrize("body", [
    "workers = [",                       # not TOML
    "wrokers = 2",                       # unknown key
    "workers = 'two'",                   # bad value
    "format = 'yaml'",
    "fail_on = 'severe'",
    "[limits]\nmax_depth = 0",            # a limit must be positive
    "[limits]\nmax_dpeth = 3",            # unknown limit
    "limits = 5",                         # not a table
])
def test_bad_config_file_is_a_usage_error(cwd: Path, mixed: Path, body: str) -> None:
    (cwd / "hex.toml").write_text(body + "\n", encoding="utf-8")
    run = run_hex(str(mixed), cwd=cwd)
    assert run.code == EXIT_USAGE, (body, run.stdout[-500:], run.stderr)
    assert run.stdout == "" and run.stderr.startswith("Error:")


def test_bad_pyproject_table_is_a_usage_error(cwd: Path, mixed: Path) -> None:
    (cwd / "pyproject.toml").write_text("[tool.hex]\nworkers = -3\n", encoding="utf-8")
    assert run_hex(str(mixed), cwd=cwd).code == EXIT_USAGE


# --- settings layers: defaults < config file < environment < flags -----------------------

def test_defaults(cwd: Path, mixed: Path) -> None:
    got = settings(cwd, mixed, "-v")
    assert got["workers"] == 4 and got["timeout"] == 300 and got["recursive"] is True
    assert got["fail_on"] == "high" and got["format"] == "json"  # --json given
    assert got["verbose"] is True and got["color"] is True


def test_config_file_beats_defaults(cwd: Path, mixed: Path) -> None:
    (cwd / "hex.toml").write_text(
        "timeout = 42\nfile-timeout = 7\nworkers = 2\nverbose = true\nfail_on = 'medium'\n"
        "[limits]\nmax_depth = 3\n", encoding="utf-8")
    got = settings(cwd, mixed)
    assert (got["timeout"], got["file_timeout"], got["workers"]) == (42, 7, 2)
    assert got["fail_on"] == "medium" and got["limits"]["max_depth"] == 3
    assert run_hex(str(mixed), cwd=cwd).code == EXIT_FINDINGS  # fail_on medium applies


def test_pyproject_tool_hex_and_hex_toml_wins(cwd: Path, mixed: Path) -> None:
    (cwd / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.hex]\nworkers = 3\nverbose = true\n"
        "[tool.hex.limits]\nmax_members = 9\n", encoding="utf-8")
    got = settings(cwd, mixed)
    assert got["workers"] == 3 and got["limits"]["max_members"] == 9
    (cwd / "hex.toml").write_text("workers = 1\nverbose = true\n", encoding="utf-8")
    assert settings(cwd, mixed)["workers"] == 1


def test_config_flag_names_the_file(cwd: Path, tmp_path: Path, mixed: Path) -> None:
    (cwd / "hex.toml").write_text("workers = 1\nverbose = true\n", encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text("workers = 2\nverbose = true\n", encoding="utf-8")
    assert settings(cwd, mixed, "--config", str(other))["workers"] == 2


def test_environment_beats_config_file(cwd: Path, mixed: Path, tmp_path: Path) -> None:
    (cwd / "hex.toml").write_text("timeout = 42\nfile_timeout = 7\nworkers = 2\n"
                                  "verbose = true\nhome = '/config/home'\n", encoding="utf-8")
    env = {"HEX_TIMEOUT": "43", "HEX_FILE_TIMEOUT": "8", "HEX_WORKERS": "3",
           "HEX_HOME": str(tmp_path / "envhome")}
    got = settings(cwd, mixed, env=env)
    assert (got["timeout"], got["file_timeout"], got["workers"]) == (43, 8, 3)
    assert got["home"] == str(tmp_path / "envhome")
    quiet = run_hex(str(mixed), "--json", cwd=cwd, env={"HEX_VERBOSE": "0"})
    assert quiet.stderr == ""  # HEX_VERBOSE=0 beats verbose = true


def test_flags_beat_environment(cwd: Path, mixed: Path) -> None:
    env = {"HEX_TIMEOUT": "43", "HEX_FILE_TIMEOUT": "8", "HEX_WORKERS": "3",
           "HEX_VERBOSE": "0"}
    got = settings(cwd, mixed, "-v", "--timeout", "44", "--file-timeout", "9", "-w", "1",
                   env=env)
    assert (got["timeout"], got["file_timeout"], got["workers"]) == (44, 9, 1)
    assert got["verbose"] is True  # -v beats HEX_VERBOSE=0


def test_flags_beat_config_file(cwd: Path, mixed: Path) -> None:
    (cwd / "hex.toml").write_text("format = 'table'\nrecursive = false\nfail_on = 'low'\n"
                                  "severity = ['low']\n", encoding="utf-8")
    (mixed / "sub").mkdir()
    (mixed / "sub" / "inner.pkl").write_bytes(PAYLOAD)
    by_config = run_hex(str(mixed), cwd=cwd)
    assert "┃ Severity" in by_config.stdout  # table from the config file
    assert by_config.code == EXIT_FINDINGS
    run = run_hex(str(mixed), "-f", "json", "-r", "--fail-on", "critical",
                  "--severity", "medium", cwd=cwd)
    data = run.json()
    assert any(f["path"].endswith("inner.pkl") for f in data["files"])
    assert {r["severity"] for r in data["results"]} == {"MEDIUM"}
    assert run.code == EXIT_INCOMPLETE
    assert "inner.pkl" not in {Path(f["path"]).name for f in
                               run_hex(str(mixed), "--json", cwd=cwd).json()["files"]}


def test_no_color_environment(cwd: Path, mixed: Path) -> None:
    assert settings(cwd, mixed, "-v", env={"NO_COLOR": "1"})["color"] is False
    assert settings(cwd, mixed, "-v", env={"NO_COLOR": ""})["color"] is True
