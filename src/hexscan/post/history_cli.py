"""``hex history``: list previous scans and their counts from the history store."""

from __future__ import annotations

import click


@click.command()
def history() -> None:
    """List previous scans of each target with their finding counts."""
