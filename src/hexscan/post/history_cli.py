"""``hex history``: list previous scans and their counts from the history store.

``hex history --clear`` forgets scans (all of them, or those of ``--target``), so that the
next scan of a target marks every finding new again.
"""

from __future__ import annotations

import json
import sqlite3

import click

from hexscan.errors import ConfigError

_COLUMNS = ("critical", "high", "medium", "low", "info", "suppressed", "new", "existing",
            "fixed")
_HEADS = ("CRIT", "HIGH", "MED", "LOW", "INFO", "SUPP", "NEW", "EXIST", "FIXED")


def _home(config_path: str | None) -> str:
    from hexscan import config as config_mod

    try:
        return config_mod.build({}, config_path=config_path).home
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@click.option("--target", type=click.Path(), default=None,
              help="Only the scans whose targets include PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print the scans as a JSON array.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most N scans.")
@click.option("--clear", is_flag=True,
              help="Forget the recorded scans (of --target, else all of them).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Config file (for `home`; HEX_HOME also sets it).")
def history(target: str | None, as_json: bool, limit: int, clear: bool,
            config_path: str | None) -> None:
    """List previous scans, newest first: counts by severity and new/existing/fixed."""
    from hexscan.post import history as store

    home = _home(config_path)
    try:
        if clear:
            count = store.forget(home, target)
            click.echo(f"forgot {count} scan(s)" + (f" of {target}" if target else ""))
            return
        rows = store.list_scans(home, target, limit)
    except (sqlite3.Error, OSError, store.HistoryError) as exc:
        raise click.ClickException(
            f"history store {store.db_path(home)} could not be read: {exc}") from exc
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    if not rows:
        click.echo("no scans recorded" + (f" for {target}" if target else ""))
        return
    click.echo(f"{'FINISHED':<20}  " + " ".join(f"{h:>5}" for h in _HEADS) + "  TARGET")
    for row in rows:
        counts = " ".join(f"{row.counts.get(c, 0):>5}" for c in _COLUMNS)
        note = "" if row.complete else "  (incomplete)"
        click.echo(f"{row.finished:<20}  {counts}  {', '.join(row.paths)}{note}")
