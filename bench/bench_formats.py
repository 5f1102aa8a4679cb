#!/usr/bin/env python3
"""Time hex on multi-GB single-file models: does it read headers, not gigabytes?

    python bench/bench_formats.py                       # generate (cached) and run all
    python bench/bench_formats.py --only st4g --workers default,0 --markdown
    python bench/bench_formats.py --hex-arg=--skip --hex-arg=entropy

Corpora (each one directory under WORKDIR, default ``bench/out/formats/``, git-ignored):

* ``st4g``: one safetensors file of ``--st-size`` bytes of tensor data (default 4 GB =
  4*10^9). ``safetensors.numpy.save_file`` would need the whole payload in memory, so the
  8-byte header length and the JSON header (padded with spaces to 8 bytes, as the library
  writes it) are written here with json + struct and the tensor bytes are streamed in
  1 MiB chunks. The file is then checked with ``safetensors.safe_open`` (metadata, keys,
  shapes: a header read, the payload is not touched).
* ``onnx_ext``: an ONNX model (onnx.helper) whose initializers live in ``model.onnx.data``
  (about ``--onnx-size`` bytes, default 2 GB), referenced with external_data
  (location/offset/length) exactly as ``save_as_external_data=True`` writes them; the data
  file is streamed, so memory stays small. Checked with ``onnx.checker.check_model(path)``.
* ``onnx_inline``: an ONNX model with its weights inline in raw_data, just under
  protobuf's 2 GiB message limit (default 2.0*10^9 bytes of weights), saved with
  ``onnx.save_model``. This one needs roughly twice its size in memory while generating.

Measurement is bench.py's: a small launcher process runs hex, the ru_maxrss of the tree, a
/proc sampler for the tree's peak RSS/PSS, and the exact rchar of the whole tree.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench as B  # noqa: E402

CHUNK = 1 << 20
GB = 10**9


def _pattern() -> bytes:
    """1 MiB of deterministic float32 noise (not zeros: entropy checks see real-looking data)."""
    import numpy as np

    rng = np.random.default_rng(B.SEED)
    return rng.standard_normal(CHUNK // 4).astype("<f4").tobytes()


def _stream(f, nbytes: int, chunk: bytes) -> None:
    while nbytes > 0:
        piece = chunk if nbytes >= len(chunk) else chunk[:nbytes]
        f.write(piece)
        nbytes -= len(piece)


def _split(total: int, parts: int, unit: int = 4) -> list[int]:
    """``parts`` float32 tensor sizes (multiples of ``unit`` bytes) summing to about ``total``."""
    each = (total // parts) // unit * unit
    return [each] * parts


# ----------------------------------------------------------------------------- builders

def build_safetensors(root: Path, params: dict) -> None:
    path = root / "model.safetensors"
    sizes = _split(params["bytes"], params["tensors"])
    header: dict[str, object] = {"__metadata__": {"format": "pt", "generator": "hex-bench"}}
    offset = 0
    for i, size in enumerate(sizes):
        rows = 1024
        while size % (rows * 4):
            rows //= 2
        header[f"layers.{i}.weight"] = {"dtype": "F32", "shape": [rows, size // (rows * 4)],
                                        "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the library pads the header to 8 bytes with spaces
    chunk = _pattern()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            _stream(f, offset, chunk)

    B._atomic_write(path, write)
    from safetensors import safe_open  # header read only

    with safe_open(str(path), framework="numpy") as st:
        assert st.metadata() == header["__metadata__"], st.metadata()
        keys = list(st.keys())
        assert len(keys) == len(sizes)
        for key in keys:
            want = header[key]["shape"]  # type: ignore[index]
            assert list(st.get_slice(key).get_shape()) == want, key
    assert path.stat().st_size == 8 + len(raw) + offset


def _onnx_model(initializers: list, name: str):
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t.dims[0]])
              for t in initializers[:1]]
    nodes, prev = [], "x"
    for i, t in enumerate(initializers):
        out = f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, t.name], [out], name=f"mm{i}"))
        prev = out
    outputs = [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, "n"])]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="hex-bench"), onnx


def build_onnx_external(root: Path, params: dict) -> None:
    from onnx import TensorProto

    d = 4096  # every weight is [d, size / (4 d)]: the shape matches the bytes exactly
    sizes = _split(params["bytes"], params["tensors"], 4 * d)
    chunk = _pattern()
    tensors = []
    offset = 0
    data_name = "model.onnx.data"

    def write_data(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            _stream(f, sum(sizes), chunk)

    for i, size in enumerate(sizes):
        t = TensorProto()
        t.name = f"w{i}"
        t.data_type = TensorProto.FLOAT
        t.dims.extend([d, size // (4 * d)])
        for key, value in (("location", data_name), ("offset", str(offset)),
                           ("length", str(size))):  # what set_external_data writes
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        t.data_location = TensorProto.EXTERNAL
        tensors.append(t)
        offset += size
    # chain MatMuls need [d, d]-compatible shapes; keep every weight [d, k] and only the
    # first input shape matters for the benchmark (the graph is never run).
    B._atomic_write(root / data_name, write_data)
    model, onnx = _onnx_model(tensors, "ext")
    onnx.save_model(model, str(root / "model.onnx"))
    onnx.checker.check_model(str(root / "model.onnx"))
    assert (root / data_name).stat().st_size == offset


def build_onnx_inline(root: Path, params: dict) -> None:
    from onnx import TensorProto

    d = 4096
    sizes = _split(params["bytes"], params["tensors"], 4 * d)
    assert sum(sizes) < 2**31 - 16 * 2**20, "inline ONNX must stay under protobuf's 2 GiB"
    chunk = _pattern()
    tensors = []
    for i, size in enumerate(sizes):
        t = TensorProto()
        t.name = f"w{i}"
        t.data_type = TensorProto.FLOAT
        t.dims.extend([d, size // (4 * d)])
        reps, rest = divmod(size, len(chunk))
        t.raw_data = chunk * reps + chunk[:rest]
        tensors.append(t)
    model, onnx = _onnx_model(tensors, "inline")

    def write(tmp: Path) -> None:
        onnx.save_model(model, str(tmp))

    B._atomic_write(root / "model.onnx", write)
    onnx.checker.check_model(str(root / "model.onnx"))


CORPORA: dict[str, tuple[Callable[[Path, dict], None], str]] = {
    "st4g": (build_safetensors, "st_size"),
    "onnx_ext": (build_onnx_external, "onnx_size"),
    "onnx_inline": (build_onnx_inline, "inline_size"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Time hex on multi-GB safetensors and ONNX files.")
    p.add_argument("workdir", nargs="?", type=Path, default=HERE / "out" / "formats")
    p.add_argument("--only", default="st4g,onnx_ext,onnx_inline")
    p.add_argument("--workers", default="default,0")
    p.add_argument("--st-size", type=B.parse_size, default=4 * GB)
    p.add_argument("--onnx-size", type=B.parse_size, default=2 * GB)
    p.add_argument("--inline-size", type=B.parse_size, default=2 * GB)
    p.add_argument("--hex-arg", action="append", default=[])
    p.add_argument("--label", default="", help="suffix for the corpus column, e.g. 'skip entropy'")
    p.add_argument("--hex", default=None, metavar="COMMAND")
    p.add_argument("--generate-only", action="store_true")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    if args.hex:
        import shlex

        B.HEX_CMD[:] = shlex.split(args.hex)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    roots: dict[str, Path] = {}
    for name in chosen:
        builder, size_arg = CORPORA[name]
        params = {"bytes": getattr(args, size_arg), "tensors": 8 if name != "st4g" else 16,
                  "v": 2}
        corpus = B.Corpus(name, builder, params)
        roots[name], spent = B.ensure(corpus, args.workdir)
        if spent:
            print(f"  {name}: generated in {spent:.1f} s", file=sys.stderr)
    if args.generate_only:
        return 0
    runs = []
    reports = args.workdir / "reports"
    reports.mkdir(exist_ok=True)
    label = f" ({args.label})" if args.label else ""
    for name in chosen:
        for workers in [w.strip() for w in args.workers.split(",") if w.strip()]:
            out = reports / f"{name}-w{workers}.json"
            print(f"running hex on {name} (workers={workers}) ...", file=sys.stderr)
            r = B.run_hex(name + label, roots[name], workers, out, args.hex_arg)
            print(f"  {r.wall_s:.2f} s, exit {r.exit_code}, rchar {B._size(r.rchar)}",
                  file=sys.stderr)
            runs.append(r)
    info = B.machine()
    print(f"# hex bench_formats {info['date']}  nproc={info['nproc']}  {info['hex']}")
    print(B.table(runs, args.markdown))
    results = args.workdir / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results.write_text(json.dumps({"machine": info, "runs": [asdict(r) for r in runs]},
                                  indent=2, default=str))
    print(f"\nfull results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
