"""``hex vulnfetch``: fetch, inspect, export and import the local vulnerability DB.

Only click is imported here; the feed and DB modules load when a sub-command runs.
"""

from __future__ import annotations

import click


@click.group()
def vulnfetch() -> None:
    """Manage the local vulnerability database under HEX_HOME."""
