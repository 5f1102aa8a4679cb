#!/usr/bin/env python3
"""Measure hex on pickle-heavy inputs: time, memory, and how much of the file hex reads.

    python bench/bench_pickle.py                       # all three corpora, --workers default,2
    python bench/bench_pickle.py --only torch2g --workers 2 --repeat 3
    python bench/bench_pickle.py --torch-total 500M    # a smaller checkpoint
    python bench/bench_pickle.py --markdown            # the table for RESULTS.md
    python bench/bench_pickle.py --only torch2g --hex-arg=--skip=entropy   # pickle path only

Corpora (generated under WORKDIR, default ``bench/out/``, cached like ``bench.py``'s):

* ``float45``: one 45 MB pickle, ``pickle.dumps([float(i) for i in range(5_000_000)],
  protocol=4)``: 5 million BINFLOAT opcodes (the op-heavy file of anchors.md c.1 that takes
  another scanner more than 15 minutes), plus the same list at protocol 0 (``F...\\na`` text).
* ``torch2g``: ``torch.save`` of a state_dict of ``--torch-total`` bytes of float32 (default
  2 GB, 16 tensors): a zip whose ``data.pkl`` is a few kB and whose storages are the rest.
  hex should read the pickle and the storages' heads only, never the storages: compare
  ``read (rchar)`` with the file size.
* ``many``: ``bench.py``'s 5,000 tiny files (pickles, JSON, .npy, text, safetensors).

Measurement (wall time, peak RSS of the hex process tree, exact bytes read by hex and its
workers from the launcher's ``/proc/self/io``) is ``bench.py``'s, imported from it. Nothing
here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402 - the sibling module that owns the measuring machinery


def build_float45(root: Path, params: dict) -> None:
    """The 45 MB float list at protocol 4 and protocol 0."""
    values = [float(i) for i in range(params["count"])]
    for protocol in (4, 0):
        path = root / f"floats_p{protocol}.pkl"
        if not path.exists():
            bench._atomic_write(path, lambda p, v=protocol: p.write_bytes(
                pickle.dumps(values, protocol=v)))


def build_torch(root: Path, params: dict) -> None:
    """A torch.save checkpoint of ``total`` bytes of float32 in ``tensors`` tensors."""
    import torch

    path = root / "checkpoint.pt"
    if path.exists():
        return
    per_tensor = params["total"] // params["tensors"] // 4
    state = {f"layer{i}.weight": torch.full((per_tensor,), float(i), dtype=torch.float32)
             for i in range(params["tensors"])}
    bench._atomic_write(path, lambda p: torch.save(state, p))


def corpora(args: argparse.Namespace) -> dict[str, bench.Corpus]:
    return {
        "float45": bench.Corpus("float45", build_float45, {"v": 1, "count": 5_000_000}),
        "torch2g": bench.Corpus("torch2g", build_torch, {"v": 1, "total": args.torch_total,
                                                          "tensors": 16}),
        "many": bench.Corpus("many", bench.build_many, {"v": 1, "count": args.many_count}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", nargs="?", type=Path, default=HERE / "out")
    parser.add_argument("--only", default="float45,torch2g,many")
    parser.add_argument("--workers", default="default,2")
    parser.add_argument("--torch-total", type=bench.parse_size, default=bench.parse_size("2G"))
    parser.add_argument("--many-count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--hex", default=None, help="the command that runs hex")
    parser.add_argument("--hex-arg", action="append", default=[],
                        help="extra argument for hex scan (repeatable), "
                             "e.g. --hex-arg=--skip=entropy")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.hex:
        bench.HEX_CMD[:] = args.hex.split()
    workdir = args.workdir.resolve()
    (workdir / "reports").mkdir(parents=True, exist_ok=True)
    chosen = corpora(args)
    runs: list[bench.Run] = []
    for name in args.only.split(","):
        root, spent = bench.ensure(chosen[name], workdir)
        if spent:
            print(f"generated {name} in {spent:.1f} s", file=sys.stderr)
        for workers in args.workers.split(","):
            for i in range(args.repeat):
                out = workdir / "reports" / f"pickle-{name}-{workers}-{i}.json"
                run = bench.run_hex(name, root, workers, out, args.hex_arg)
                runs.append(run)
                print(f"{name} workers={workers}: {run.wall_s:.2f} s, rchar "
                      f"{bench._size(run.rchar)}, peak RSS tree "
                      f"{bench._mib(run.peak_rss_tree)} MiB, exit {run.exit_code}",
                      file=sys.stderr)
    print(bench.table(runs, args.markdown))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = workdir / f"pickle-results-{stamp}.json"
    results.write_text(json.dumps({"machine": bench.machine(),
                                   "runs": [r.__dict__ for r in runs]}, indent=1, default=str))
    print(f"results: {results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
