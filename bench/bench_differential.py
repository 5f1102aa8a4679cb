#!/usr/bin/env python3
"""Differential run against the real loaders: variants tried, fired and caught, per family.

    python bench/bench_differential.py                   # every family, 40 mutants per fuzz seed
    python bench/bench_differential.py --fuzz 300        # a longer fuzz run
    python bench/bench_differential.py --only pickle_grammar,fuzz_pickle
    python bench/bench_differential.py --keep-misses bench/out/misses

It uses the test suite's harness (``tests/differential/harness.py``) and families: each variant
is written, loaded by its real loader in a throw-away subprocess whose payload only creates a
canary file, and scanned by hex once. A *miss* is a variant whose canary fired and that hex did
not report at HIGH or above; a *noisy twin* is a benign variant hex reported at MEDIUM or above.
The table is Markdown, for the README and issue notes. Exit code 1 when any miss or noisy twin
remains.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import run_hex  # noqa: E402 - the test suite's hex runner (clean HEX_* env)
from differential import families  # noqa: E402
from differential.harness import Outcome, run_families, summarise  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated family modules")
    parser.add_argument("--fuzz", type=int, default=40, help="mutants per fuzz seed")
    parser.add_argument("--keep-misses", type=Path, help="copy missed variants here")
    args = parser.parse_args()
    os.environ["HEX_DIFF_FUZZ"] = str(args.fuzz)
    names = sorted(m.name for m in pkgutil.iter_modules(families.__path__))
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n in wanted]
    modules = [importlib.import_module(f"differential.families.{n}") for n in names]
    work = Path(tempfile.mkdtemp(prefix="hex-diff-"))
    try:
        outcomes = run_families([m.variants for m in modules], work, run_hex)
        print(_table(outcomes))
        bad = _bad(outcomes)
        for o in bad:
            kind = "MISS" if o.variant.malicious else "NOISY"
            print(f"{kind} {o.variant.family}/{o.variant.name}: hex {o.severity}, "
                  f"loader {o.loader_result}")
            if args.keep_misses:
                dest = args.keep_misses / o.variant.family / o.variant.name
                dest.mkdir(parents=True, exist_ok=True)
                (dest / o.variant.filename).write_bytes(o.variant.data)
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bad(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes
            if (o.variant.malicious and o.fired and not o.caught)
            or (not o.variant.malicious and not o.quiet)]


def _table(outcomes: list[Outcome]) -> str:
    rows = ["| family | variants | malicious fired under the real loader | caught by hex (HIGH+) "
            "| benign twins | twins below MEDIUM |", "|---|---:|---:|---:|---:|---:|"]
    total = dict.fromkeys(("tried", "fired", "caught", "benign", "benign_quiet"), 0)
    for family, row in sorted(summarise(outcomes).items()):
        rows.append(f"| {family} | {row['tried']} | {row['fired']} | {row['caught']} | "
                    f"{row['benign']} | {row['benign_quiet']} |")
        for key in total:
            total[key] += row[key]
    rows.append(f"| **all** | {total['tried']} | {total['fired']} | {total['caught']} | "
                f"{total['benign']} | {total['benign_quiet']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
