"""run(): discover -> identify and scan in workers -> collect -> one ScanReport."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from hexscan import __version__
from hexscan.config import ScanConfig
from hexscan.discover.walker import discover
from hexscan.engine.executor import run_tasks
from hexscan.engine.walk import WorkerSettings
from hexscan.errors import ConfigError
from hexscan.model.finding import Finding
from hexscan.model.report import ErrorEntry, Fact, FileEntry, ScanReport, TaskResult
from hexscan.policy.pickle_policy import PolicyError, load_policy
from hexscan.scanners.registry import scanner_classes

Progress = Callable[[int, int, str], None]


def worker_settings(config: ScanConfig) -> WorkerSettings:
    """The part of the config that crosses into worker processes."""
    return WorkerSettings(limits=config.limits, skip=config.skip, plugins=config.plugins,
                          hash=config.hash,
                          options={**config.options,
                                   "pickle_policy": dict(config.pickle_policy),
                                   "home": config.home})


def _check_scanners(config: ScanConfig) -> None:
    """Load plugins and check ``skip`` names, so a typo is a usage error, not a no-op."""
    names = {cls.name for cls in scanner_classes(config.plugins)}
    unknown = sorted(set(config.skip) - names)
    if unknown:
        raise ConfigError(f"unknown scanner(s) in skip: {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(names))})")
    try:
        load_policy(config.pickle_policy)
    except PolicyError as exc:
        raise ConfigError(f"invalid pickle_policy: {exc}") from exc


def run(targets: list[str], config: ScanConfig, progress: Progress | None = None) -> ScanReport:
    """Scan the targets; never raises for a bad file (that is an error entry)."""
    _check_scanners(config)  # fail fast (exit 2) on a bad plugin or --skip before any work
    started = time.monotonic()
    deadline = started + config.timeout
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = discover(targets, config.recursive)
    findings: list[Finding] = list(found.findings)
    files: list[FileEntry] = list(found.files)
    errors: list[ErrorEntry] = list(found.errors)
    facts: list[Fact] = []
    total = len(found.tasks)
    done = 0

    def on_result(result: TaskResult) -> None:
        nonlocal done
        done += 1
        findings.extend(result.findings)
        files.extend(result.files)
        errors.extend(result.errors)
        facts.extend(result.facts)
        if progress is not None:
            progress(done, total, result.path)

    run_tasks(found.tasks, worker_settings(config), config.workers, config.file_timeout,
              deadline, on_result)
    findings.sort(key=lambda f: f.report_order)
    files.sort(key=lambda f: (f.path, f.member or ""))
    errors.sort(key=lambda e: (e.path, e.member or "", e.kind, e.message))
    facts.sort(key=lambda x: (x.path, x.member or "", x.kind))
    return ScanReport(
        scan_id=str(uuid.uuid4()),
        timestamp=timestamp,
        target=", ".join(targets),
        version=__version__,
        findings=tuple(findings),
        files=tuple(files),
        errors=tuple(errors),
        duration_s=round(time.monotonic() - started, 3),
        fail_on=config.fail_on.name,
        shown=tuple(s.name for s in sorted(config.severity, reverse=True)),
        verbose=config.verbose,
        facts=tuple(facts),
        roots=tuple(os.path.abspath(t) for t in targets),
    )
