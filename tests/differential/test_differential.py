"""Every variant whose canary fired under the real loader is caught by hex at HIGH or above,
and every benign twin stays below MEDIUM. See ``harness.py`` for how variants are run."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_hex

from differential import families
from differential.harness import Outcome, run_families, summarise

FAMILY_MODULES = sorted(m.name for m in pkgutil.iter_modules(families.__path__))


@pytest.fixture(scope="session")
def outcomes() -> Iterator[list[Outcome]]:
    mods = [importlib.import_module(f"differential.families.{m}") for m in FAMILY_MODULES]
    # A fixed-length directory name: canary paths then have the same length in every run,
    # so the seeded mutations of the fuzz family are the same mutations every time.
    work = Path(tempfile.mkdtemp(prefix="hex-diff-"))
    try:
        yield run_families([m.variants for m in mods], work, run_hex)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("module", FAMILY_MODULES)
def test_family(outcomes: list[Outcome], module: str) -> None:
    family = importlib.import_module(f"differential.families.{module}").FAMILY
    mine = [o for o in outcomes if o.variant.family == family]
    assert mine, f"family {family} yielded no variant"
    fired = [o for o in mine if o.variant.malicious and o.fired]
    assert fired, f"no variant of {family} fired under its real loader: the harness proves nothing"
    missed = [(o.variant.name, o.severity, o.loader_result, o.errors) for o in fired
              if not o.caught]
    assert not missed, f"{family}: payload ran under the real loader but hex missed it: {missed}"
    noisy = [(o.variant.name, o.severity) for o in mine if not o.variant.malicious and not o.quiet]
    assert not noisy, f"{family}: benign twins flagged at MEDIUM or above: {noisy}"


def test_benign_twins_load_cleanly(outcomes: list[Outcome]) -> None:
    """A benign twin that its own loader rejects is no twin: it would hide a precision bug."""
    bad = [(o.variant.family, o.variant.name, o.loader_result) for o in outcomes
           if not o.variant.malicious and o.loader_result != "ok"]
    assert not bad, bad


def test_summary_table_counts_every_variant(outcomes: list[Outcome]) -> None:
    table = summarise(outcomes)
    assert sum(row["tried"] for row in table.values()) == len(outcomes)
    for family, row in table.items():
        assert row["caught"] <= row["fired"] <= row["tried"], family
