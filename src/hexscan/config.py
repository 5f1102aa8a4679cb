"""ScanConfig and where its values come from.

Precedence, lowest to highest (the one place it is written down):

1. built-in defaults (the field defaults below);
2. the config file: ``--config FILE``, else ``hex.toml`` in the current directory, else the
   ``[tool.hex]`` table of ``pyproject.toml`` in the current directory;
3. environment variables: ``HEX_TIMEOUT``, ``HEX_FILE_TIMEOUT``, ``HEX_WORKERS``,
   ``HEX_VERBOSE``, ``HEX_HOME``, ``HEX_OSV_URL``, ``HEX_NVD_URL``, ``HEX_EPSS_URL``,
   ``HEX_KEV_URL``, ``HEX_MODELHASH_URL``, ``NO_COLOR`` (``NVD_API_KEY`` is read only by
   the NVD feed, never stored in the config or printed);
4. command-line flags.

Nothing else in hex reads the environment for scan settings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hexscan.engine.limits import ResourceLimits
from hexscan.errors import ConfigError
from hexscan.model.severity import Severity

FORMATS = ("text", "json", "table", "sarif", "junit", "xml", "cyclonedx", "html")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ScanConfig:
    """Every setting of a scan, validated."""

    workers: int = 4
    recursive: bool = True
    timeout: float = 300.0
    file_timeout: float = 120.0
    format: str = "text"
    output: str | None = None
    skip: frozenset[str] = frozenset()
    severity: frozenset[Severity] = frozenset(Severity)
    fail_on: Severity = Severity.HIGH
    clear: bool = False
    verbose: bool = False
    hash: bool = False
    color: bool = True
    home: str = field(default_factory=lambda: str(Path.home() / ".layerd" / "hex"))
    plugins: tuple[str, ...] = ()
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    options: Mapping[str, Any] = field(default_factory=dict)
    pickle_policy: Mapping[str, Any] = field(default_factory=dict)
    #: Also write a CycloneDX 1.6 SBOM to this file (any --format).
    sbom: str | None = None
    #: A previous JSON report: findings present in it do not count for fail_on.
    baseline: str | None = None
    #: Suppressions from the config file ([[suppress]] tables); .hexignore adds more.
    suppress: tuple[Mapping[str, Any], ...] = ()
    #: Record findings in the history store under home and mark them new / existing.
    history: bool = True
    #: Vulnerability feed base URLs (mirrors, air-gapped sites); None means the public one.
    osv_url: str | None = None
    nvd_url: str | None = None
    epss_url: str | None = None
    kev_url: str | None = None
    modelhash_url: str | None = None
    #: A vulnerability DB older than this many days is a warning in the report.
    vulndb_max_age_days: float = 7.0

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError("workers must be 0 or more")
        if self.timeout <= 0 or self.file_timeout <= 0:
            raise ConfigError("timeouts must be positive")
        if self.format not in FORMATS:
            raise ConfigError(f"unknown format {self.format!r} (choose from {', '.join(FORMATS)})")


def _parse(name: str, value: Any) -> Any:
    """Convert a raw value (TOML, env or flag) to the type of field ``name``."""
    try:
        if name in ("workers",):
            return int(value)
        if name in ("timeout", "file_timeout", "vulndb_max_age_days"):
            return float(value)
        if name in ("recursive", "verbose", "hash", "clear", "color", "history"):
            return _bool(value)
        if name == "skip":
            return frozenset(_words(value))
        if name == "severity":
            return frozenset(Severity.parse(w) for w in _words(value))
        if name == "fail_on":
            return Severity.parse(str(value))
        if name == "plugins":
            return tuple(_words(value))
        if name == "limits":
            return ResourceLimits.from_mapping(dict(value))
        if name in ("options", "pickle_policy"):
            return dict(value)
        if name == "suppress":
            return tuple(dict(v) for v in value)
        return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {name}: {value!r} ({exc})") from exc


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _words(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple | frozenset | set) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def read_config_file(path: str | None, cwd: Path) -> dict[str, Any]:
    """The settings table of the config file (empty when there is none)."""
    if path is not None:
        return _load_toml(Path(path), table=None)
    if (cwd / "hex.toml").is_file():
        return _load_toml(cwd / "hex.toml", table=None)
    if (cwd / "pyproject.toml").is_file():
        return _load_toml(cwd / "pyproject.toml", table=("tool", "hex"))
    return {}


def _load_toml(path: Path, table: tuple[str, ...] | None) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    for key in table or ():
        data = data.get(key, {})
    return {k.replace("-", "_"): v for k, v in data.items()}


_ENV = {"HEX_TIMEOUT": "timeout", "HEX_FILE_TIMEOUT": "file_timeout",
        "HEX_WORKERS": "workers", "HEX_VERBOSE": "verbose", "HEX_HOME": "home",
        "HEX_OSV_URL": "osv_url", "HEX_NVD_URL": "nvd_url", "HEX_EPSS_URL": "epss_url",
        "HEX_KEV_URL": "kev_url", "HEX_MODELHASH_URL": "modelhash_url"}


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Settings from the environment."""
    values: dict[str, Any] = {name: env[var] for var, name in _ENV.items() if var in env}
    if env.get("NO_COLOR"):
        values["color"] = False
    return values


def build(flags: Mapping[str, Any], env: Mapping[str, str] | None = None,
          cwd: Path | None = None, config_path: str | None = None) -> ScanConfig:
    """Merge defaults < config file < environment < flags into a ScanConfig."""
    env = os.environ if env is None else env
    layers = [read_config_file(config_path, cwd or Path.cwd()), from_env(env),
              {k: v for k, v in flags.items() if v is not None}]
    known = {f.name for f in fields(ScanConfig)}
    merged: dict[str, Any] = {}
    for layer in layers:
        unknown = set(layer) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        merged.update({k: _parse(k, v) for k, v in layer.items()})
    if merged.get("sbom") or merged.get("format") == "cyclonedx":
        merged["hash"] = True  # an SBOM without file digests identifies nothing
    try:
        return replace(ScanConfig(), **merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


def describe(config: ScanConfig) -> dict[str, Any]:
    """The effective settings, for ``hex config`` and verbose output."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, frozenset):
            value = sorted(v.name.lower() if isinstance(v, Severity) else v for v in value)
        elif isinstance(value, Severity):
            value = value.name.lower()
        elif isinstance(value, ResourceLimits):
            value = {lf.name: getattr(value, lf.name) for lf in fields(value)}
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out
