"""The ``hex`` command: argument parsing, config merge, output sink and exit code.

No scanning or formatting logic lives here. Exit codes:
0 complete, nothing at or above --fail-on; 1 findings at or above --fail-on;
2 usage or config error; 3 scan incomplete (a file timed out, could not be read or hit a
limit) and nothing at or above --fail-on.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hexscan import __version__
from hexscan.errors import ConfigError
from hexscan.post.history_cli import history
from hexscan.post.score import EXIT_USAGE, exit_code
from hexscan.supply.cli import vulnfetch

EXIT_HELP = """\b
Exit codes:
  0  scan complete, no finding at or above --fail-on
  1  findings at or above --fail-on (default: high)
  2  usage or configuration error
  3  scan incomplete (a file timed out, could not be read or hit a limit)
     and no finding at or above --fail-on
"""


class DefaultToScan(click.Group):
    """``hex PATH`` means ``hex scan PATH``; a real sub-command name wins."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h",
                                                                      "--version"):
            args = ["scan", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToScan, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_HELP)
@click.version_option(__version__, "--version", prog_name="hex")
def main() -> None:
    """hex: scan AI/ML model files for code execution and other risks, without loading them.

    `hex PATH...` is short for `hex scan PATH...`.
    """




@main.command(epilog=EXIT_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-v", "--verbose", is_flag=True, default=None, help="List every file and show "
              "the effective settings. [env HEX_VERBOSE]")
@click.option("-r/-R", "--recursive/--no-recursive", default=None,
              help="Walk directories recursively (default on).")
@click.option("-w", "--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes (default 4; 0 scans in-process, without isolation). "
                   "[env HEX_WORKERS]")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Whole-scan limit in seconds (default 300). [env HEX_TIMEOUT]")
@click.option("--file-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Per-file limit in seconds (default 120). [env HEX_FILE_TIMEOUT]")
@click.option("-f", "--format", "fmt",
              type=click.Choice(["text", "json", "table", "sarif", "junit", "xml", "cyclonedx",
                                 "html"]),
              default=None, help="Output format (default text). xml is junit.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE instead of stdout.")
@click.option("--skip", default=None, metavar="SCANNER,...",
              help="Scanners not to run (see `hex scanners`).")
@click.option("--severity", default=None, metavar="LEVEL,...",
              help="Show only findings of these severities, e.g. critical,high.")
@click.option("--fail-on", default=None, metavar="LEVEL",
              help="Exit 1 when a finding is at or above LEVEL (default high).")
@click.option("--sbom", type=click.Path(dir_okay=False), default=None,
              help="Also write a CycloneDX 1.6 JSON SBOM (ML-BOM) to FILE.")
@click.option("--baseline", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A previous JSON report: findings already in it do not fail the scan.")
@click.option("--clear", is_flag=True, default=None,
              help="Forget the previous findings of this target before scanning.")
@click.option("--history/--no-history", default=None,
              help="Record findings under HEX_HOME and mark them new/existing (default on).")
@click.option("--hash", "hash_", is_flag=True, default=None,
              help="Compute the SHA-256 of every file and member.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Config file (default ./hex.toml or [tool.hex] in "
                                 "./pyproject.toml).")
@click.version_option(__version__, "--version", prog_name="hex")
def scan(paths: tuple[str, ...], fmt: str | None, as_json: bool, config_path: str | None,
         hash_: bool | None, **flags: Any) -> None:
    """Scan model files and directories."""
    from hexscan import config as config_mod

    flags["format"] = "json" if as_json else fmt
    flags["hash"] = hash_
    try:
        config = config_mod.build(flags, config_path=config_path)
    except ConfigError as exc:
        _usage_error(str(exc))
    if config.verbose:
        click.echo(json.dumps(config_mod.describe(config), default=str), err=True)
    _check_inputs(list(paths), config)
    report = _run_with_progress(list(paths), config)
    report = _finish(report, config)
    _write(report, config)
    if config.sbom:
        _write_file(config.sbom, "cyclonedx", report)
    sys.exit(exit_code(report))


def _check_inputs(paths: list[str], config: Any) -> None:
    """Read .hexignore files and the baseline before scanning: a typo is exit 2 at once,
    not after an hour-long scan."""
    import os
    from pathlib import Path

    from hexscan.post import baseline, suppress

    try:
        suppress.collect(config, [os.path.abspath(p) for p in paths], Path.cwd())
        if config.baseline:
            baseline.load_fingerprints(config.baseline)
    except ConfigError as exc:
        _usage_error(str(exc))


def _finish(report: Any, config: Any) -> Any:
    from hexscan.post.process import finish

    try:
        return finish(report, config)
    except ConfigError as exc:
        _usage_error(str(exc))


def _usage_error(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _run_with_progress(paths: list[str], config: Any) -> Any:
    from hexscan.engine.pipeline import run

    try:
        if not sys.stderr.isatty():
            return run(paths, config)
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True, no_color=not config.color),
                      transient=True) as bar:
            task = bar.add_task("scanning", total=None)

            def progress(done: int, total: int, path: str) -> None:
                bar.update(task, completed=done, total=total, description=path[-40:])

            return run(paths, config, progress)
    except ConfigError as exc:
        _usage_error(str(exc))


def _write(report: Any, config: Any) -> None:
    from hexscan.report.registry import render

    if config.output:
        _write_file(config.output, config.format, report)
        return
    color = config.color and sys.stdout.isatty() and config.format != "json"
    click.echo(render(config.format, report, color), nl=False)


def _write_file(path: str, fmt: str, report: Any) -> None:
    from hexscan.report.registry import render

    text = render(fmt, report, False)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _usage_error(f"cannot write {path}: {exc}")


@main.command()
def rules() -> None:
    """List every rule: id, severity, CWE and summary."""
    from hexscan.rules.registry import all_rules

    for rule in all_rules():
        click.echo(f"{rule.id:<12} {rule.severity.name:<9} {','.join(rule.cwe):<9} "
                   f"{rule.summary}")


@main.command()
@click.argument("rule_id")
def explain(rule_id: str) -> None:
    """Explain one rule: what it finds, why it matters, how to fix it."""
    from hexscan.rules.registry import get

    try:
        click.echo(get(rule_id).explain(), nl=False)
    except KeyError:
        _usage_error(f"unknown rule {rule_id!r}; `hex rules` lists them")


@main.command()
def scanners() -> None:
    """List the scanner names that --skip accepts."""
    from hexscan.scanners.registry import scanner_classes

    for cls in scanner_classes():
        click.echo(f"{cls.name:<12} rules: {', '.join(r.id for r in cls.rules)}")


main.add_command(vulnfetch)
main.add_command(history)
