"""``hex vulnfetch``: fetch, inspect, export and import the local vulnerability DB.

Only click is imported here; the feed and DB modules load when a sub-command runs, so
``hex --help`` stays fast. Exit codes: 0 done, 1 the operation failed (the DB on disk is
unchanged), 2 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

EXIT_FAILED = 1
EXIT_USAGE = 2
_CONFIG = click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
                       default=None, help="Config file (default ./hex.toml or [tool.hex] in "
                                          "./pyproject.toml).")


@click.group()
def vulnfetch() -> None:
    """Manage the local vulnerability database under HEX_HOME.

    Scans only read this DB (plus the advisories embedded in hex); they never fetch.
    """


def _config(config_path: str | None) -> Any:
    """The merged settings (config file < environment): home and feed URLs."""
    from hexscan import config as config_mod
    from hexscan.errors import ConfigError

    try:
        return config_mod.build({}, config_path=config_path)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@vulnfetch.command()
@click.option("--source", "source_list", default=None, metavar="NAME,...",
              help="Sources to fetch: osv, nvd, epss, kev, models (default osv,epss,kev, "
                   "plus models when HEX_MODELHASH_URL is set; nvd is opt-in).")
@click.option("--ecosystem", "ecosystem_list", default=None, metavar="NAME,...",
              help="OSV ecosystems (default PyPI plus any already in the DB).")
@click.option("--full", is_flag=True, help="Ignore cursors and ETags: download everything.")
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True,
              help="Retries per request on 429/5xx and connection errors.")
@_CONFIG
def fetch(source_list: str | None, ecosystem_list: str | None, full: bool, retries: int,
          config_path: str | None) -> None:
    """Download vulnerability feeds into the DB, as one atomic update.

    \b
    Environment: HEX_HOME, HEX_OSV_URL, HEX_NVD_URL, HEX_EPSS_URL, HEX_KEV_URL,
    HEX_MODELHASH_URL, NVD_API_KEY (sent as a header, never printed or stored).
    """
    from hexscan.supply import fetch as fetch_mod
    from hexscan.supply.feeds.http import HttpClient

    config = _config(config_path)
    try:
        sources = (fetch_mod.parse_sources(source_list) if source_list is not None
                   else fetch_mod.default_sources(config))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--source") from exc
    ecosystems = [e.strip() for e in (ecosystem_list or "").split(",") if e.strip()]
    if ecosystems and "osv" not in sources:
        raise click.BadParameter("only the osv source has ecosystems", param_hint="--ecosystem")
    if any("/" in e or e in (".", "..") for e in ecosystems):
        raise click.BadParameter("an ecosystem name cannot contain '/'",
                                 param_hint="--ecosystem")
    try:
        with fetch_mod.progress_bar(sys.stderr.isatty(), config.color) as reporter:
            fetcher = fetch_mod.Fetcher(config, HttpClient(retries=retries), full=full,
                                        reporter=reporter)
            result = fetcher.run(sources, ecosystems)
    except KeyboardInterrupt:
        _fail("interrupted; the previous vulnerability DB is unchanged")
    for item in result.results:
        total = "" if item.total is None else f"{item.total:>8} records"
        click.echo(f"{item.name:<14} {item.status:<10} {total:<16} {'; '.join(item.notes)}"
                   .rstrip())
    if not result.ok:
        _fail(f"fetch failed: {result.error}\nThe previous vulnerability DB is unchanged "
              f"({result.db}).")
    click.echo(f"Vulnerability DB updated: {result.db}")


def _age(stamp: str | None, now: datetime) -> tuple[float | None, str]:
    """Age in days and as short text ("3h", "2.5d") of an RFC 3339 timestamp."""
    if not stamp:
        return None, "-"
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None, "?"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    days = max((now - when).total_seconds(), 0.0) / 86400
    return round(days, 3), (f"{days * 24:.0f}h" if days < 1 else f"{days:.1f}d")


def _status_data(config: Any) -> dict[str, Any]:
    from hexscan.supply.db import VulnDB

    now = datetime.now(UTC)
    with VulnDB.open(config.home) as db:
        meta = db.meta()
        sources = {}
        for name, info in db.sources().items():
            entry = info.to_json()
            entry.pop("name")
            entry["age_days"] = _age(info.fetched_at, now)[0]
            sources[name] = entry
        built = db.built_at()
        return {
            "path": str(db.path) if db.path else None,
            "exists": db.has_db,
            "schema_version": int(meta["schema_version"]) if "schema_version" in meta else None,
            "built_at": built,
            "age_days": _age(built, now)[0],
            "hex_version": meta.get("hex_version"),
            "sources": sources,
            "counts": db.counts(),
            "embedded": {"generated": db.embedded_generated(), **db.embedded_counts()},
            "max_age_days": config.vulndb_max_age_days,
            "warnings": list(db.warnings),
        }


@vulnfetch.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_CONFIG
def status(as_json: bool, config_path: str | None) -> None:
    """Show what the DB holds: sources, when fetched, record counts, cursors."""
    from hexscan.errors import VulnDBError

    config = _config(config_path)
    try:
        data = _status_data(config)
    except VulnDBError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    now = datetime.now(UTC)
    for warning in data["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if not data["exists"]:
        click.echo(f"No fetched vulnerability DB at {data['path']}; scans use the embedded "
                   "advisories only. Run `hex vulnfetch fetch`.")
    else:
        age = _age(data["built_at"], now)[1]
        limit = config.vulndb_max_age_days
        stale = f" (older than the {limit:g}-day limit)" \
            if (data["age_days"] or 0) > limit else ""
        click.echo(f"Vulnerability DB: {data['path']}")
        click.echo(f"  schema {data['schema_version']}, updated {data['built_at']} "
                   f"({age} ago){stale}")
        counts = data["counts"]
        click.echo(f"  {counts['advisory']} advisories, {counts['nvd_cve']} NVD CVEs, "
                   f"{counts['epss']} EPSS scores, {counts['kev']} KEV entries, "
                   f"{counts['model_hash']} model hashes")
        click.echo(f"  {'source':<14} {'fetched at':<21} {'age':>6} {'records':>9}  cursor")
        for name, info in data["sources"].items():
            count = "-" if info["record_count"] is None else str(info["record_count"])
            click.echo(f"  {name:<14} {info['fetched_at']:<21} "
                       f"{_age(info['fetched_at'], now)[1]:>6} {count:>9}  "
                       f"{info['cursor'] or '-'}")
    emb = data["embedded"]
    click.echo(f"Embedded advisories: generated {emb['generated'] or 'unknown'} "
               f"({emb['advisory']} advisories, {emb['kev']} KEV entries, "
               f"{emb['model_hash']} model hashes)")


@vulnfetch.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@_CONFIG
def export_cmd(file: str, config_path: str | None) -> None:
    """Copy the DB to FILE to carry it to an air-gapped machine.

    The copy is consistent even while a fetch runs; `hex vulnfetch import FILE` installs
    it on the other machine.
    """
    from hexscan.errors import VulnDBError
    from hexscan.supply.db_write import export_db

    config = _config(config_path)
    try:
        path = export_db(config.home, file)
    except VulnDBError as exc:
        _fail(str(exc))
    click.echo(f"Exported the vulnerability DB to {path}")


@vulnfetch.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, readable=True))
@_CONFIG
def import_cmd(file: str, config_path: str | None) -> None:
    """Replace the DB with FILE made by `hex vulnfetch export`.

    FILE's schema version and integrity are checked first; the swap is atomic.
    """
    from hexscan.errors import VulnDBError
    from hexscan.supply.db_write import import_db

    config = _config(config_path)
    try:
        path = import_db(config.home, file)
    except VulnDBError as exc:
        _fail(f"{exc}\nNot imported; the previous vulnerability DB is unchanged.")
    click.echo(f"Imported {file} into {path}")
