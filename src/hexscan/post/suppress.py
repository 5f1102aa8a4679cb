"""Suppressions: accepted findings that stay in the report but stop counting.

Entries come from ``[[suppress]]`` tables in three places, read in this order (the first
entry that matches a finding is the one named in its suppression):

1. the config file (``hex.toml`` or ``[tool.hex]``), source ``config``;
2. ``.hexignore`` in the current directory, which applies to every finding;
3. ``.hexignore`` at the top of each scanned directory, which applies only to the findings
   under that directory.

Each entry has ``reason`` (mandatory: an accepted risk must say why) and at least one of
``rule`` (an id or a glob such as ``HEX-PKL-*``), ``path`` (a glob on the root-relative
path; a member is matched as ``path!/member``, and a pattern that matches the file also
covers its members) and ``fingerprint`` (the full sha256 or a prefix of 12 or more hex
digits). All given keys must match. ``expires`` (``YYYY-MM-DD``) ends the entry: from that
day on it no longer suppresses and the report carries a warning, so that an accepted risk
is looked at again rather than forgotten.

A bad file or entry is a usage error (exit 2) that names the file and the entry, because a
suppression that silently does nothing is worse than none. Suppressed findings are never
dropped: reporters list them apart, with reason and source.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from hexscan.config import ScanConfig
from hexscan.errors import ConfigError
from hexscan.model.finding import Finding, Suppression
from hexscan.model.report import ScanReport

FILE_NAME = ".hexignore"
_KEYS = frozenset({"rule", "path", "fingerprint", "reason", "expires"})
_MATCHERS = ("rule", "path", "fingerprint")
_HEX = re.compile(r"^[0-9a-f]{12,64}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_HEADER = re.compile(r"^\s*\[\[\s*suppress\s*\]\]")
#: A .hexignore is a short hand-written file; anything bigger is not one.
_MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One validated suppression entry."""

    reason: str
    source: str
    rule: str | None = None
    path: str | None = None
    fingerprint: str | None = None
    expires: date | None = None
    #: Absolute directory whose findings this entry may match; None: every finding.
    scope: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("rule", self.rule), ("path", self.path),
                                        ("fingerprint", self.fingerprint)) if v]
        return f"{self.source} ({', '.join(parts)})"

    def expired(self, today: date) -> bool:
        return self.expires is not None and today >= self.expires

    def matches(self, finding: Finding) -> bool:
        if self.scope is not None and not _within(finding.file_path, self.scope):
            return False
        if self.rule is not None and not fnmatchcase(finding.rule.id.upper(), self.rule):
            return False
        if self.fingerprint is not None and not finding.fingerprint.startswith(self.fingerprint):
            return False
        if self.path is not None:
            names = [finding.rel_path]
            if finding.member:
                names.append(f"{finding.rel_path}!/{finding.member}")
            if not any(fnmatchcase(name, self.path) for name in names):
                return False
        return True


def _within(file_path: str, root: str) -> bool:
    path = os.path.abspath(file_path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def parse_entry(raw: Any, source: str, scope: str | None = None) -> Entry:
    """Validate one ``[[suppress]]`` table; ``source`` names it in every error."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"suppression {source}: expected a table, got {raw!r}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"suppression {source}: unknown key(s) {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(_KEYS))})")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"suppression {source}: 'reason' is mandatory and must be a "
                          "non-empty string")
    if not any(raw.get(k) is not None for k in _MATCHERS):
        raise ConfigError(f"suppression {source}: needs at least one of rule, path, "
                          "fingerprint")
    for key in _MATCHERS:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"suppression {source}: {key!r} must be a non-empty string")
    fingerprint = raw.get("fingerprint")
    if fingerprint is not None:
        fingerprint = fingerprint.strip().lower()
        if not _HEX.match(fingerprint):
            raise ConfigError(f"suppression {source}: 'fingerprint' must be 12 to 64 hex "
                              f"digits, not {raw['fingerprint']!r}")
    path = raw.get("path")
    if path is not None:
        path = path.strip().removeprefix("./")
    rule = raw.get("rule")
    return Entry(reason=reason.strip(), source=source,
                 rule=rule.strip().upper() if rule is not None else None, path=path,
                 fingerprint=fingerprint, expires=_expires(raw.get("expires"), source),
                 scope=scope)


def _expires(value: Any, source: str) -> date | None:
    """TOML writes a bare date as a date; a quoted one is a string: accept both."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"suppression {source}: 'expires' must be a date YYYY-MM-DD, "
                      f"not {value!r}")


def read_file(path: Path, label: str, scope: str | None) -> list[Entry]:
    """The entries of one .hexignore; ``label`` is how messages name the file."""
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise ConfigError(f"{label}: larger than {_MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read suppression file {label}: {exc}") from exc
    unknown = sorted(set(data) - {"suppress"})
    if unknown:
        raise ConfigError(f"{label}: unknown table(s) {', '.join(unknown)} "
                          "(only [[suppress]] tables are allowed)")
    raw = data.get("suppress", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{label}: 'suppress' must be an array of tables ([[suppress]])")
    lines = [n for n, line in enumerate(text.splitlines(), 1) if _HEADER.match(line)]
    if len(lines) != len(raw):  # written as an inline array: no header line per entry
        lines = []
    sources = [f"{label}:{lines[i]}" if lines else f"{label}#{i + 1}" for i in range(len(raw))]
    return [parse_entry(item, src, scope) for item, src in zip(raw, sources, strict=True)]


def collect(config: ScanConfig, roots: Iterable[str], cwd: Path) -> list[Entry]:
    """Every entry that applies to this scan, in matching order."""
    entries = [parse_entry(item, "config" if len(config.suppress) == 1 else
                           f"config #{i + 1}")
               for i, item in enumerate(config.suppress)]
    seen: set[str] = set()
    cwd_file = cwd / FILE_NAME
    if cwd_file.is_file():
        seen.add(os.path.realpath(cwd_file))
        entries += read_file(cwd_file, FILE_NAME, scope=None)
    for root in roots:
        candidate = Path(root) / FILE_NAME
        if not os.path.isdir(root) or not candidate.is_file():
            continue
        real = os.path.realpath(candidate)
        if real in seen:
            continue
        seen.add(real)
        entries += read_file(candidate, str(candidate), scope=os.path.abspath(root))
    return entries


def apply_entries(report: ScanReport, entries: list[Entry], verbose: bool,
                  today: date) -> ScanReport:
    """Mark matching findings suppressed and add the expiry / unused warnings."""
    active = [e for e in entries if not e.expired(today)]
    warnings = [f"suppression {e.describe()} expired on {e.expires}; it no longer applies"
                for e in entries if e.expired(today)]
    used: set[int] = set()
    findings: list[Finding] = []
    for finding in report.findings:
        hits = [i for i, e in enumerate(active) if e.matches(finding)]
        used.update(hits)
        if hits and finding.suppression is None:
            e = active[hits[0]]
            finding = replace(finding, suppression=Suppression(
                e.reason, e.source, e.expires.isoformat() if e.expires else None))
        findings.append(finding)
    if verbose:
        warnings += [f"suppression {e.describe()} matched no finding"
                     for i, e in enumerate(active) if i not in used]
    if not entries:
        return report
    return replace(report, findings=tuple(findings),
                   warnings=(*report.warnings, *warnings))


def apply(report: ScanReport, config: ScanConfig, cwd: Path | None = None,
          today: date | None = None) -> ScanReport:
    """Suppress what the config and the .hexignore files say; raises ConfigError."""
    entries = collect(config, report.roots, cwd or Path.cwd())
    return apply_entries(report, entries, config.verbose, today or date.today())
