"""ScanConfig and its layers: defaults < config file < environment < flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hexscan import config
from hexscan.engine.limits import ResourceLimits
from hexscan.errors import ConfigError
from hexscan.model.severity import Severity

NO_FLAGS: dict[str, Any] = {}


def build(tmp_path: Path, flags: dict[str, Any] | None = None,
          env: dict[str, str] | None = None, config_path: str | None = None
          ) -> config.ScanConfig:
    return config.build(flags or NO_FLAGS, env=env or {}, cwd=tmp_path,
                        config_path=config_path)


def test_defaults(tmp_path: Path) -> None:
    got = build(tmp_path)
    assert got.workers == 4 and got.recursive is True
    assert got.timeout == 300 and got.file_timeout == 120
    assert got.format == "text" and got.fail_on is Severity.HIGH
    assert got.severity == frozenset(Severity) and got.limits == ResourceLimits()
    assert got.color is True and got.hash is False and got.clear is False


def test_each_layer_beats_the_one_below(tmp_path: Path) -> None:
    (tmp_path / "hex.toml").write_text("workers = 2\ntimeout = 10\nfile-timeout = 5\n"
                                       "home = '/from/file'\n", encoding="utf-8")
    from_file = build(tmp_path)
    assert (from_file.workers, from_file.timeout, from_file.file_timeout) == (2, 10, 5)
    env = {"HEX_WORKERS": "3", "HEX_TIMEOUT": "11", "HEX_HOME": "/from/env"}
    from_env = build(tmp_path, env=env)
    assert (from_env.workers, from_env.timeout, from_env.file_timeout) == (3, 11, 5)
    assert from_env.home == "/from/env"
    from_flags = build(tmp_path, {"workers": 1, "timeout": None}, env=env)
    assert (from_flags.workers, from_flags.timeout) == (1, 11)  # None = flag not given


def test_hex_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.hex]\nworkers = 6\n"
                                             "[tool.hex.limits]\nmax_depth = 2\n")
    got = build(tmp_path)
    assert got.workers == 6 and got.limits.max_depth == 2
    (tmp_path / "hex.toml").write_text("workers = 7\n")
    assert build(tmp_path).workers == 7
    assert build(tmp_path).limits.max_depth == 5  # only one file is read


def test_pyproject_without_tool_hex_is_empty(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert build(tmp_path) == build(tmp_path / "nowhere")


def test_explicit_config_path(tmp_path: Path) -> None:
    (tmp_path / "hex.toml").write_text("workers = 7\n")
    other = tmp_path / "other.toml"
    other.write_text("workers = 8\n")
    assert build(tmp_path, config_path=str(other)).workers == 8


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("verbose", "yes", True), ("verbose", "0", False), ("verbose", "", False),
    ("recursive", "off", False), ("hash", True, True),
    ("severity", "critical, HIGH", frozenset({Severity.CRITICAL, Severity.HIGH})),
    ("severity", ["low"], frozenset({Severity.LOW})),
    ("fail_on", "Medium", Severity.MEDIUM),
    ("skip", "format,other", frozenset({"format", "other"})),
    ("plugins", ["a:B", "c:D"], ("a:B", "c:D")),
])
def test_values_are_parsed(tmp_path: Path, key: str, value: Any, expected: Any) -> None:
    assert getattr(build(tmp_path, {key: value}), key) == expected


def test_no_color(tmp_path: Path) -> None:
    assert build(tmp_path, env={"NO_COLOR": "1"}).color is False
    assert build(tmp_path, env={"NO_COLOR": ""}).color is True  # set but empty: ignored


@pytest.mark.parametrize("flags", [
    {"workers": -1}, {"workers": "x"}, {"timeout": 0}, {"file_timeout": -1},
    {"format": "yaml"}, {"severity": "bogus"}, {"fail_on": "severe"}, {"verbose": "maybe"},
    {"limits": {"max_depth": 0}}, {"limits": {"max_dpeth": 3}}, {"limits": 5},
    {"no_such_setting": 1},
])
def test_bad_values_are_config_errors(tmp_path: Path, flags: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        build(tmp_path, flags)


@pytest.mark.parametrize("body", ["workers = [", "workers = 'two'", "unknown = 1",
                                  "[limits]\nmax_ratio = -1"])
def test_bad_config_files_are_config_errors(tmp_path: Path, body: str) -> None:
    (tmp_path / "hex.toml").write_text(body + "\n")
    with pytest.raises(ConfigError):
        build(tmp_path)


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "hex.toml").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError):
        build(tmp_path)


def test_bad_env_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workers"):
        build(tmp_path, env={"HEX_WORKERS": "many"})


def test_limits_table(tmp_path: Path) -> None:
    (tmp_path / "hex.toml").write_text("[limits]\nmax_depth = 2\nmax_members = 10\n"
                                       "max_member_size = 1000\nmax_total_size = 5000\n"
                                       "max_ratio = 12.5\nratio_min_size = 100\n")
    limits = build(tmp_path).limits
    assert (limits.max_depth, limits.max_members, limits.max_member_size,
            limits.max_total_size, limits.max_ratio, limits.ratio_min_size) == \
        (2, 10, 1000, 5000, 12.5, 100)
    assert limits.buffer_size == ResourceLimits().buffer_size


def test_describe_is_json_ready(tmp_path: Path) -> None:
    import json

    got = config.describe(build(tmp_path, {"severity": "high,low", "skip": "format"}))
    assert got["severity"] == ["high", "low"] and got["skip"] == ["format"]
    assert got["fail_on"] == "high" and got["limits"]["max_depth"] == 5
    json.dumps(got)
