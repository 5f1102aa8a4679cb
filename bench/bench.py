#!/usr/bin/env python3
"""Measure hex's speed, memory and I/O on generated corpora.

    python bench/bench.py                         # every corpus, default workers and --workers 2
    python bench/bench.py --only small,many       # a subset
    python bench/bench.py /tmp/hexbench --large-total 2G --workers default,1,2,4

For each corpus, the corpus is generated under WORKDIR (default ``bench/out/``, git-ignored;
generation is cached: a corpus is rebuilt only when missing or built with other parameters)
and then ``hex scan <corpus> --json -o <file>`` runs as a subprocess, once per workers setting.

Measured per run:

* wall seconds, files/s, MB/s (MB = 10^6 bytes of files on disk, not bytes read);
* max RSS of any single hex process: hex runs under a small launcher process that, after
  hex exits, reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, which covers hex and every
  descendant it (transitively) waited for. (The launcher exists because a child's
  ru_maxrss starts from the memory of the process that spawned it, and this script holds
  numpy and torch; its own ~10 MiB is the floor of the figure.);
* peak of the summed RSS (and PSS, which counts the pages that forked workers share with
  the forkserver once) of the whole hex process tree, sampled from ``/proc`` every 50 ms;
* bytes read: the kernel adds a reaped child's I/O counters (and those of the children it
  reaped) to its parent, so the change of the launcher's ``/proc/self/io`` across the run
  is the exact total of the hex tree (``rchar``: bytes returned by read(2), page cache
  included; ``read_bytes``: bytes fetched from the block device, 0 when cached). For the
  same reason, summing per-pid samples of /proc/<pid>/io would double count: a parent's
  counters already include the children it reaped. The launcher is a child subreaper, so
  hex's forkserver and workers, orphaned when the hex main process exits, are reaped (and
  counted) by it rather than by init.

Reading includes the Python interpreter loading hex's own modules: the ``empty`` corpus
(an empty directory) measures that fixed overhead.

Only the standard library, /proc (Linux) and the packages that write the corpora (numpy,
safetensors, torch, joblib, scikit-learn, onnx, h5py, gguf) are used; psutil is not needed.
Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import os
import pickle
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 1234
PAGE = os.sysconf("SC_PAGE_SIZE")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def parse_size(text: str) -> int:
    """'3G', '500M', '2.5GB', '1000000' -> bytes (decimal units: G = 10^9)."""
    t = text.strip().upper().removesuffix("B")
    units = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(float(t))


# ======================================================================================
# corpora
# ======================================================================================

def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp name so an interrupted run leaves no half file behind."""
    partial = path.parent / ".partial"  # same file name: torch.save names its zip root
    partial.mkdir(parents=True, exist_ok=True)  # after the file's stem
    tmp = partial / path.name
    write(tmp)
    tmp.replace(path)
    partial.rmdir()


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _targz_bytes(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_small(root: Path, params: dict) -> None:  # noqa: C901 - a maker per format
    """~30 small files of the common model formats, plus a zip and a tar.gz."""
    import gguf
    import h5py
    import joblib
    import numpy as np
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import save_file
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    x = rng.standard_normal((300, 6))
    y = (x[:, 0] > 0).astype(np.int64)

    def pt(i: int) -> Callable[[Path], None]:
        model = torch.nn.Sequential(torch.nn.Linear(32 * (i + 1), 64), torch.nn.ReLU(),
                                    torch.nn.Linear(64, 10))
        return lambda p: torch.save(model.state_dict(), p)

    def st(i: int) -> Callable[[Path], None]:
        tensors = {f"layers.{k}.weight": rng.standard_normal((64, 64)).astype(np.float16)
                   for k in range(i + 2)}
        return lambda p: save_file(tensors, str(p), metadata={"format": "np"})

    def jl(i: int) -> Callable[[Path], None]:
        est = (make_pipeline(StandardScaler(), LogisticRegression()) if i % 2 == 0 else
               RandomForestClassifier(n_estimators=3, max_depth=3, random_state=i))
        est.fit(x, y)
        return lambda p: joblib.dump(est, p, compress=3 if i == 3 else 0)

    def ox(i: int) -> Callable[[Path], None]:
        w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W")
        g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], f"g{i}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
                              initializer=[w])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return lambda p: onnx.save(m, str(p))

    def npy(i: int) -> Callable[[Path], None]:
        arr = rng.standard_normal((32, 8 * (i + 1))).astype(np.float32)
        return lambda p: np.save(p, arr)

    def gg(i: int) -> Callable[[Path], None]:
        def write(p: Path) -> None:
            w = gguf.GGUFWriter(str(p), "llama")
            w.add_name(f"bench-{i}")
            w.add_tensor("token_embd.weight", rng.standard_normal((64, 16)).astype(np.float32))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
        return write

    def h5(i: int) -> Callable[[Path], None]:
        def write(p: Path) -> None:
            with h5py.File(p, "w", track_order=True) as f:
                f.attrs["model_config"] = json.dumps({"class_name": "Sequential"})
                f.attrs["keras_version"] = "2.15.0"
                f.create_dataset("model_weights/dense/kernel",
                                 data=rng.standard_normal((16, 8)).astype(np.float32))
        return write

    def pk(i: int) -> Callable[[Path], None]:
        obj = {"vocab": [f"tok{k}" for k in range(50 * (i + 1))], "scale": 0.5 + i}
        return lambda p: p.write_bytes(pickle.dumps(obj, protocol=4))

    def js(i: int) -> Callable[[Path], None]:
        return lambda p: p.write_text(json.dumps({"hidden_size": 64 * (i + 1),
                                                  "model_type": "bench"}))

    def zp(i: int) -> Callable[[Path], None]:
        members = [(f"model/part{k}.npy", _npy_bytes(rng.standard_normal(64).astype(np.float32)))
                   for k in range(3)] + [("model/vocab.pkl", pickle.dumps(list(range(100))))]
        return lambda p: p.write_bytes(_zip_bytes(members))

    def tg(i: int) -> Callable[[Path], None]:
        members = [("release/config.json", b'{"model_type": "bench"}'),
                   ("release/weights.pkl", pickle.dumps({"w": list(range(200))}, protocol=2))]
        return lambda p: p.write_bytes(_targz_bytes(members))

    plan: list[tuple[str, Callable[[int], Callable[[Path], None]], int]] = [
        ("torch/model_{i}.pt", pt, 5), ("st/model_{i}.safetensors", st, 5),
        ("sk/est_{i}.joblib", jl, 4), ("onnx/net_{i}.onnx", ox, 3),
        ("np/arr_{i}.npy", npy, 3), ("gguf/tiny_{i}.gguf", gg, 2),
        ("keras/model_{i}.h5", h5, 2), ("pkl/obj_{i}.pkl", pk, 3),
        ("cfg/config_{i}.json", js, 1), ("archives/bundle_{i}.zip", zp, 1),
        ("archives/release_{i}.tar.gz", tg, 1),
    ]
    for pattern, maker, count in plan:
        for i in range(count):
            _atomic_write(root / pattern.format(i=i), maker(i))


def _npy_bytes(arr: object) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def build_large(root: Path, params: dict) -> None:
    """~N files of realistic safetensors shards and torch zip checkpoints, `total` bytes."""
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    total, count = params["total"], params["files"]
    per_file = total // count
    rng = np.random.default_rng(SEED)
    # One random pool, sliced at varying offsets: realistic values without paying for
    # gigabytes of RNG output. 16 Mi float32 = 64 MiB.
    pool32 = rng.standard_normal(16 * 1024 * 1024, dtype=np.float32) * 0.02
    pool16 = pool32.astype(np.float16)
    for i in range(count):
        kind = "torch" if i % 3 == 2 else "safetensors"
        dtype = np.float16 if i % 2 else np.float32
        # torch checkpoints: many smaller tensors (a big data.pkl, many zip members);
        # safetensors shards: fewer, larger tensors.
        width = [256, 384][i % 2] if kind == "torch" else [512, 768, 1024, 1536][i % 4]
        shapes = _layer_shapes(per_file, np.dtype(dtype).itemsize, width, i)
        ext = "pt" if kind == "torch" else "safetensors"
        path = root / f"shard_{i // 25:02d}" / f"model-{i:05d}-of-{count:05d}.{ext}"
        if path.exists():
            continue
        pool = pool16 if dtype is np.float16 else pool32
        arrays = {}
        offset = (i * 7919) % (pool.size // 2)
        for name, shape in shapes:
            n = int(np.prod(shape))
            start = (offset + n) % max(1, pool.size - n)
            offset = start
            arrays[name] = pool[start:start + n].reshape(shape)
        if kind == "safetensors":
            _atomic_write(path, lambda p, a=arrays, i=i: save_file(
                a, str(p), metadata={"format": "pt", "shard": str(i)}))
        else:
            state = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
            _atomic_write(path, lambda p, st=state: torch.save(st, p))
        print(f"  large: {i + 1}/{count} {path.name}", file=sys.stderr, end="\r", flush=True)
    print(file=sys.stderr)


def _layer_shapes(budget: int, itemsize: int, d: int, seed: int
                  ) -> list[tuple[str, tuple[int, ...]]]:
    """Transformer-like tensors of width ``d`` (attention, MLP, norms), ``budget`` bytes."""
    per_layer = [("self_attn.q_proj.weight", (d, d)), ("self_attn.k_proj.weight", (d, d)),
                 ("self_attn.v_proj.weight", (d, d)), ("self_attn.o_proj.weight", (d, d)),
                 ("mlp.gate_proj.weight", (4 * d, d)), ("mlp.up_proj.weight", (4 * d, d)),
                 ("mlp.down_proj.weight", (d, 4 * d)), ("input_layernorm.weight", (d,)),
                 ("post_attention_layernorm.weight", (d,))]
    shapes: list[tuple[str, tuple[int, ...]]] = []
    used, layer = 0, seed * 100
    while True:
        for name, shape in per_layer:
            size = itemsize
            for s in shape:
                size *= s
            if used + size > budget:  # fill the rest with one trimmed tensor
                rows = (budget - used) // (itemsize * d)
                if rows > 0 or not shapes:
                    shapes.append((f"model.layers.{layer}.{name}", (max(1, rows), d)))
                return shapes
            shapes.append((f"model.layers.{layer}.{name}", shape))
            used += size
        layer += 1


def build_many(root: Path, params: dict) -> None:
    """`count` tiny files (pickles, json, npy, txt, safetensors) in nested directories."""
    import numpy as np
    from safetensors.numpy import save as st_save

    rng = np.random.default_rng(SEED)
    small = rng.standard_normal(64).astype(np.float32)
    for i in range(params["count"]):
        d = root / f"d{i % 10}" / f"e{(i // 10) % 10}" / f"f{(i // 100) % 50}"
        kind = i % 5
        if kind == 0:
            path, data = d / f"obj_{i}.pkl", pickle.dumps({"i": i, "xs": list(range(i % 40))})
        elif kind == 1:
            path, data = d / f"cfg_{i}.json", json.dumps({"i": i, "n": i * 3}).encode()
        elif kind == 2:
            path, data = d / f"arr_{i}.npy", _npy_bytes(small[: 8 + i % 50])
        elif kind == 3:
            path, data = d / f"notes_{i}.txt", f"note {i}\n".encode() * 4
        else:
            path, data = d / f"t_{i}.safetensors", st_save({"w": small[: 4 + i % 32]})
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def build_empty(root: Path, params: dict) -> None:
    """An empty directory: hex's fixed start-up cost."""
    root.mkdir(parents=True, exist_ok=True)


@dataclass
class Corpus:
    name: str
    builder: Callable[[Path, dict], None]
    params: dict


def corpora(args: argparse.Namespace) -> dict[str, Corpus]:
    return {
        "empty": Corpus("empty", build_empty, {"v": 1}),
        "small": Corpus("small", build_small, {"v": 2}),
        "large": Corpus("large", build_large, {"v": 4, "total": args.large_total,
                                               "files": args.large_files}),
        "many": Corpus("many", build_many, {"v": 1, "count": args.many_count}),
    }


def ensure(corpus: Corpus, workdir: Path) -> tuple[Path, float]:
    """Build the corpus unless an identical one is cached; return (path, seconds spent)."""
    root = workdir / corpus.name
    manifest = workdir / f"{corpus.name}.manifest.json"
    wanted = json.dumps(corpus.params, sort_keys=True)
    if root.exists() and manifest.exists() and manifest.read_text() == wanted:
        return root, 0.0
    if root.exists() and manifest.exists():  # built with other parameters
        shutil.rmtree(root)
    manifest.unlink(missing_ok=True)
    started = time.perf_counter()
    print(f"generating {corpus.name} corpus in {root} ...", file=sys.stderr)
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.rglob(".partial"):  # an interrupted earlier run
        shutil.rmtree(leftover)
    corpus.builder(root, corpus.params)  # resumable: existing files are kept
    manifest.write_text(wanted)
    return root, time.perf_counter() - started


def corpus_stats(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


# ======================================================================================
# measuring
# ======================================================================================

class TreeSampler(threading.Thread):
    """Samples RSS and PSS of a process and its descendants from /proc."""

    def __init__(self, root_pid: int, interval: float = 0.05, skip_root: bool = False) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.skip_root = skip_root
        self.interval = interval
        self.stop = threading.Event()
        self.peak_rss_sum = 0
        self.peak_pss_sum = 0
        self.peak_procs = 0
        self.max_rss: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.samples = 0

    def _read(self, path: str) -> str | None:
        try:
            with open(path, "rb", buffering=0) as handle:
                data = handle.read()
        except OSError:
            return None
        return data.decode("ascii", "replace")

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = self._read(f"/proc/{entry}/stat")
            if stat is None:
                continue
            # pid (comm) state ppid ...: comm may hold spaces or parentheses
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        return tree

    def sample(self) -> None:
        rss_sum = pss_sum = procs = 0
        for pid in self._tree():
            if self.skip_root and pid == self.root_pid:
                continue
            statm = self._read(f"/proc/{pid}/statm")
            if statm is None:
                continue
            procs += 1
            rss = int(statm.split()[1]) * PAGE
            rss_sum += rss
            self.max_rss[pid] = max(self.max_rss.get(pid, 0), rss)
            rollup = self._read(f"/proc/{pid}/smaps_rollup")
            if rollup:
                for line in rollup.splitlines():
                    if line.startswith("Pss:"):
                        pss_sum += int(line.split()[1]) * 1024
                        break
            if pid not in self.names:
                cmd = self._read(f"/proc/{pid}/cmdline")
                self.names[pid] = (cmd or "").replace("\0", " ").strip()[:120]
        self.samples += 1
        self.peak_rss_sum = max(self.peak_rss_sum, rss_sum)
        self.peak_pss_sum = max(self.peak_pss_sum, pss_sum)
        self.peak_procs = max(self.peak_procs, procs)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)


@dataclass
class Run:
    corpus: str
    workers: str
    files: int
    bytes: int
    wall_s: float
    exit_code: int
    max_rss_single: int          # ru_maxrss of the hex tree (largest single process)
    peak_rss_tree: int           # peak of summed RSS over the tree (sampled)
    peak_pss_tree: int           # peak of summed PSS over the tree (sampled)
    peak_procs: int
    rchar: int                   # exact, from /proc/self/io delta
    read_bytes: int
    samples: int
    report: dict = field(default_factory=dict)

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s if self.wall_s else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.wall_s if self.wall_s else 0.0


HEX_CMD: list[str] = []


def hex_command() -> list[str]:
    """The command that runs hex: --hex if given, else `hex` on PATH, else python -m."""
    if HEX_CMD:
        return HEX_CMD
    exe = shutil.which("hex")
    return [exe] if exe else [sys.executable, "-m", "hexscan"]


#: Runs hex as its child and reports, once hex has exited, the ru_maxrss of hex's tree and
#: the change of its own /proc/self/io (which then includes hex's whole tree). A separate,
#: small launcher matters: a child's ru_maxrss starts from the memory of the process that
#: spawned it (exec records the old address space), and this process holds numpy and torch.
LAUNCHER = r"""
import ctypes, json, os, resource, sys, time
# Become a child subreaper: hex's forkserver and workers outlive (or are orphaned by) the
# hex main process; they are re-parented here instead of to init, so that reaping them
# adds their rusage and I/O counters to ours.
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
def io():
    with open("/proc/self/io", "rb", buffering=0) as f:
        d = dict(l.split(": ") for l in f.read().decode().splitlines() if ": " in l)
    return int(d["rchar"]), int(d["read_bytes"])
out, cmd = sys.argv[1], sys.argv[2:]
before = io()
devnull = os.open(os.devnull, os.O_RDWR)
started = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[
    (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)])
_, status = os.waitpid(pid, 0)
wall = time.perf_counter() - started
orphans, deadline = 0, time.monotonic() + 30
while True:  # reap what hex left behind
    try:
        reaped, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if reaped:
        orphans += 1
    elif time.monotonic() > deadline:
        break
    else:
        time.sleep(0.005)
linger = time.perf_counter() - started - wall
after = io()
with open(out, "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "wall": wall,
               "orphans": orphans, "linger_s": round(linger, 3),
               "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
               "rchar": after[0] - before[0], "read_bytes": after[1] - before[1]}, f)
"""


def run_hex(corpus: str, root: Path, workers: str, out_json: Path,
            extra: list[str]) -> Run:
    files, size = corpus_stats(root)
    cmd = hex_command() + ["scan", str(root), "--json", "-o", str(out_json)]
    if workers != "default":
        cmd += ["--workers", workers]
    cmd += extra
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEX_")}
    measured = out_json.with_suffix(".launcher.json")
    measured.unlink(missing_ok=True)
    started = time.perf_counter()
    launcher = [sys.executable, "-S", "-c", LAUNCHER, str(measured), *cmd]
    proc = subprocess.Popen(launcher, stdin=subprocess.DEVNULL,  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=str(HERE))
    sampler = TreeSampler(proc.pid, skip_root=True)
    sampler.start()
    stderr = proc.stderr.read() if proc.stderr else b""
    proc.wait()
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if proc.stderr:
        proc.stderr.close()
    try:
        m = json.loads(measured.read_text())
    except (OSError, ValueError):
        m = {"exit": proc.returncode, "maxrss_kib": 0, "rchar": 0, "read_bytes": 0,
             "wall": wall}
    report = summarise_report(out_json, stderr)
    report["orphans_reaped_after_exit"] = m.get("orphans")
    report["orphans_linger_s"] = m.get("linger_s")
    wall = m.get("wall", wall)
    return Run(corpus, workers, files, size, wall, m["exit"], m["maxrss_kib"] * 1024,
               sampler.peak_rss_sum, sampler.peak_pss_sum, sampler.peak_procs, m["rchar"],
               m["read_bytes"], sampler.samples,
               report)


def summarise_report(path: Path, stderr: bytes) -> dict:
    """What the JSON report says about completeness, errors and formats."""
    info: dict = {"stderr": stderr.decode("utf-8", "replace")[-2000:]}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        info["report_error"] = f"{type(exc).__name__}: {exc}"
        return info
    files = report.get("files", [])
    formats: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for entry in files:
        if entry.get("member") is None:
            formats[entry.get("format")] = formats.get(entry.get("format"), 0) + 1
        statuses[entry.get("status")] = statuses.get(entry.get("status"), 0) + 1
    kinds: dict[str, int] = {}
    for err in report.get("errors", []):
        kinds[err.get("kind")] = kinds.get(err.get("kind"), 0) + 1
    info.update({
        "complete": report.get("complete"),
        "duration_s": report.get("duration_s"),
        "files_scanned": report.get("files_scanned"),
        "file_entries": len(files),
        "top_level_formats": formats,
        "statuses": statuses,
        "errors": len(report.get("errors", [])),
        "error_kinds": kinds,
        "error_sample": report.get("errors", [])[:5],
        "summary": report.get("summary"),
        "rules": sorted({r.get("rule_id") for r in report.get("results", [])}),
        "report_bytes": path.stat().st_size,
    })
    return info


# ======================================================================================
# output
# ======================================================================================

def _mib(n: int) -> str:
    return f"{n / 2**20:.0f}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


COLUMNS = ["corpus", "workers", "files", "size", "wall s", "files/s", "MB/s",
           "max RSS 1 proc MiB", "peak RSS tree MiB", "peak PSS tree MiB", "procs",
           "read (rchar)", "from disk", "exit", "complete", "errors"]


def row(r: Run) -> list[str]:
    return [r.corpus, r.workers, str(r.files), _size(r.bytes), f"{r.wall_s:.2f}",
            f"{r.files_per_s:.1f}", f"{r.mb_per_s:.1f}", _mib(r.max_rss_single),
            _mib(r.peak_rss_tree), _mib(r.peak_pss_tree), str(r.peak_procs), _size(r.rchar),
            _size(r.read_bytes), str(r.exit_code),
            "FAILED" if "report_error" in r.report else str(r.report.get("complete")),
            str(r.report.get("errors"))]


def median_runs(runs: list[Run]) -> list[tuple[Run, str]]:
    """One run per (corpus, workers): the run with the median wall time, and the range."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.corpus, r.workers), []).append(r)
    out = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r.wall_s)
        spread = (f"{ordered[0].wall_s:.2f}-{ordered[-1].wall_s:.2f}" if len(ordered) > 1
                  else "")
        out.append((ordered[(len(ordered) - 1) // 2], spread))
    return out


def table(runs: list[Run], markdown: bool) -> str:
    chosen = median_runs(runs)
    columns = list(COLUMNS)
    with_spread = any(spread for _r, spread in chosen)
    if with_spread:
        columns.insert(5, "wall range")
    body = []
    for r, spread in chosen:
        cells = row(r)
        if with_spread:
            cells.insert(5, spread)
        body.append(cells)
    rows = [columns] + body
    COLS = columns
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |",
                 "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLS))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLS))]
    return "\n".join("  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def machine() -> dict:
    def run(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
            return done.stdout.strip()
        except OSError:
            return "?"
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": run(["nproc"]), "cpu": cpu, "free_h": run(["free", "-h"]),
            "python": platform.python_version(), "platform": platform.platform(),
            "hex": run(hex_command() + ["--version"]),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


# ======================================================================================
# main
# ======================================================================================

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure hex's speed, memory and I/O.")
    parser.add_argument("workdir", nargs="?", type=Path, default=HERE / "out",
                        help="where corpora and reports go (default bench/out/)")
    parser.add_argument("--only", default="empty,small,large,many",
                        help="comma-separated corpora: empty, small, large, many")
    parser.add_argument("--workers", default="default,2",
                        help="comma-separated --workers values; 'default' passes none "
                             "(default: default,2)")
    parser.add_argument("--large-total", type=parse_size, default=parse_size("3G"),
                        help="total size of the large corpus, e.g. 2G (default 3G = 3*10^9)")
    parser.add_argument("--large-files", type=int, default=100,
                        help="files in the large corpus (default 100)")
    parser.add_argument("--many-count", type=int, default=5000,
                        help="files in the many corpus (default 5000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per corpus and setting")
    parser.add_argument("--hex-arg", action="append", default=[],
                        help="extra argument passed to hex scan (repeatable)")
    parser.add_argument("--hex", default=None, metavar="COMMAND",
                        help="command that runs hex, e.g. 'python -m hexscan' with PYTHONPATH "
                             "set to a frozen copy of src/ (default: hex on PATH)")
    parser.add_argument("--generate-only", action="store_true",
                        help="build the corpora and stop")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    if not Path("/proc/self/io").exists():
        parser.error("this benchmark reads /proc and needs Linux")
    if args.hex:
        HEX_CMD[:] = shlex.split(args.hex)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    available = corpora(args)
    unknown = set(chosen) - set(available)
    if unknown:
        parser.error(f"unknown corpus: {', '.join(sorted(unknown))}")
    args.workdir = args.workdir.resolve()  # hex runs with bench/ as its working directory
    args.workdir.mkdir(parents=True, exist_ok=True)

    roots: dict[str, Path] = {}
    generation: dict[str, float] = {}
    for name in chosen:
        roots[name], generation[name] = ensure(available[name], args.workdir)
        if generation[name]:
            print(f"  {name}: generated in {generation[name]:.1f} s", file=sys.stderr)
    if args.generate_only:
        return 0

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    runs: list[Run] = []
    settings = [w.strip() for w in args.workers.split(",") if w.strip()]
    reports = args.workdir / "reports"
    reports.mkdir(exist_ok=True)
    for name in chosen:
        for workers in settings:
            for rep in range(args.repeat):
                out = reports / f"{name}-w{workers}-{rep}.json"
                print(f"running hex on {name} (workers={workers}) ...", file=sys.stderr)
                result = run_hex(name, roots[name], workers, out, args.hex_arg)
                runs.append(result)
                print(f"  {result.wall_s:.2f} s, exit {result.exit_code}, "
                      f"complete={result.report.get('complete')}, "
                      f"errors={result.report.get('errors')}", file=sys.stderr)
                if "report_error" in result.report:
                    print(f"  no report ({result.report['report_error']}); hex said:\n"
                          + result.report["stderr"][-800:], file=sys.stderr)

    info = machine()
    print(f"# hex bench {info['date']}  nproc={info['nproc']}  python {info['python']}  "
          f"{info['hex']}  load before: {' '.join(load_before)}  after: "
          f"{' '.join(info['loadavg'])}")
    if args.repeat > 1:
        print(f"# each row: the median of {args.repeat} runs by wall time")
    print(table(runs, args.markdown))
    results = args.workdir / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results.write_text(json.dumps({"machine": info, "generation_s": generation,
                                   "runs": [asdict(r) | {"files_per_s": r.files_per_s,
                                                         "mb_per_s": r.mb_per_s}
                                            for r in runs]}, indent=2, default=str))
    print(f"\nfull results (per-run report summary, error samples): {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
