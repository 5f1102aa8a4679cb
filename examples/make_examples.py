#!/usr/bin/env python3
"""Write the example model files that hex's Quick start scans.

    python examples/make_examples.py          # (re)writes examples/benign, examples/malicious
    python examples/make_examples.py --check  # exit 1 if a file differs from a fresh build

The benign files are written with the real libraries (torch, scikit-learn/joblib,
safetensors, onnx, numpy, gguf). The "malicious" files carry a harmless payload: if
someone *loads* them (pickle.load, torch.load(weights_only=False), joblib.load) the only
effect is that the shell prints ``hex-example-payload``. Nothing destructive, no network.
hex itself never loads or executes anything it scans.

This script never loads what it writes either: the payload pickles are produced by
pickling an object whose ``__reduce__`` names ``os.system`` (the pickler only records the
reference) or are assembled opcode by opcode.

Every output is deterministic: seeds are fixed, zip/tar/gzip timestamps are fixed, and
nothing depends on the current time or directory. With the same library versions, two runs
produce byte-identical files (``--check`` verifies that).

Requirements: numpy, torch (CPU), scikit-learn, joblib, safetensors, onnx, gguf.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pickletools
import struct
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240607
#: The only thing a payload does if loaded: print this word.
COMMAND = "echo hex-example-payload"
#: Fixed timestamp for zip members (the zip format's epoch) and tar/gzip headers.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------------------------
# payloads (never loaded here)
# --------------------------------------------------------------------------------------

class EchoPayload:
    """Pickles as ``os.system(COMMAND)``: what torch.save writes for a poisoned object.

    The pickler stores ``os.system`` under its defining module, so on Linux/macOS the
    stream says ``posix.system`` (``nt.system`` on Windows), exactly as real attacks do.
    """

    def __reduce__(self) -> tuple[Callable[..., int], tuple[str]]:
        return (os.system, (COMMAND,))


def payload_pickle() -> bytes:
    """A protocol-2 pickle whose REDUCE calls ``os.system(COMMAND)``, written by hand.

    PROTO 2; GLOBAL 'os system'; BINUNICODE COMMAND; TUPLE1; REDUCE; STOP.
    """
    cmd = COMMAND.encode()
    data = (b"\x80\x02" + b"cos\nsystem\n" + b"X" + struct.pack("<I", len(cmd)) + cmd
            + b"\x85" + b"R" + b".")
    pickletools.dis(data, out=io.StringIO())  # well-formed (parsing only, nothing runs)
    return data


# --------------------------------------------------------------------------------------
# benign files
# --------------------------------------------------------------------------------------

def torch_state_dict(path: Path) -> None:
    """A tiny MLP's state_dict, saved with torch.save (zip format)."""
    import torch

    torch.manual_seed(SEED)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 4))
    torch.save(model.state_dict(), path)


def sklearn_pipeline(path: Path) -> None:
    """StandardScaler + LogisticRegression fitted on synthetic data, saved with joblib."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((200, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", LogisticRegression(random_state=0))]).fit(x, y)
    joblib.dump(pipe, path)


def safetensors_file(path: Path) -> None:
    """A few float32/float16 tensors written with safetensors.numpy."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(SEED)
    tensors = {
        "embed.weight": rng.standard_normal((64, 32)).astype(np.float16),
        "layer.0.weight": rng.standard_normal((32, 32)).astype(np.float32),
        "layer.0.bias": np.zeros(32, dtype=np.float32),
        "head.weight": rng.standard_normal((4, 32)).astype(np.float32),
    }
    save_file(tensors, str(path), metadata={"format": "np", "source": "hex examples"})


def onnx_model(path: Path) -> None:
    """y = relu(x @ W + b): a two-node ONNX graph with its weights as initializers."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    w = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "B"], ["pre"]),
         helper.make_node("Relu", ["pre"], ["y"])],
        "hex_example",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, producer_name="hex-examples", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def numpy_array(path: Path) -> None:
    """A plain float32 .npy array (no object dtype, so no pickle inside)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    np.save(path, rng.standard_normal((16, 16)).astype(np.float32), allow_pickle=False)


def gguf_file(path: Path) -> None:
    """A tiny GGUF with a few metadata keys and two float32 tensors."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(SEED)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("hex-example")
    writer.add_context_length(64)
    writer.add_embedding_length(16)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", rng.standard_normal((32, 16)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(16, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --------------------------------------------------------------------------------------
# malicious (harmless payload) files
# --------------------------------------------------------------------------------------

def malicious_pickle(path: Path) -> None:
    path.write_bytes(payload_pickle())


def malicious_torch(path: Path) -> None:
    """A real torch.save zip checkpoint: real tensors plus an object that runs os.system."""
    import torch

    torch.manual_seed(SEED)
    state = torch.nn.Linear(8, 4).state_dict()
    torch.save({"state_dict": state, "epoch": 3, "optimizer": EchoPayload()}, path)


def disguised_safetensors(path: Path) -> None:
    """The payload pickle under a data-only name."""
    path.write_bytes(payload_pickle())


def nested_zip(path: Path) -> None:
    """zip -> bundle.tar.gz -> model/weights.pkl (the payload) plus a harmless config.json."""
    members = [("model/config.json", b'{"model_type": "example", "hidden_size": 16}\n'),
               ("model/weights.pkl", payload_pickle())]
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    gz_buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz_buf, mtime=0, compresslevel=9) as gz:
        gz.write(tar_buf.getvalue())
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, method in [
                ("README.txt", b"A release bundle. The model is in bundle.tar.gz.\n",
                 zipfile.ZIP_DEFLATED),
                ("bundle.tar.gz", gz_buf.getvalue(), zipfile.ZIP_STORED)]:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the host
            zf.writestr(info, data)


#: (relative path, builder). The order is the order of the README table.
def vulnerable_requirements(path: Path) -> None:
    """What a model repository pins: torch 2.5.1 has CVE-2025-32434 (fixed in 2.6.0)."""
    path.write_text("# environment this model was trained with\n"
                    "numpy==2.1.3\n"
                    "torch==2.5.1\n"
                    "safetensors>=0.4\n", encoding="utf-8")


EXAMPLES: list[tuple[str, Callable[[Path], None]]] = [
    ("benign/tiny_mlp_state_dict.pt", torch_state_dict),
    ("benign/sklearn_pipeline.joblib", sklearn_pipeline),
    ("benign/weights.safetensors", safetensors_file),
    ("benign/tiny_mlp.onnx", onnx_model),
    ("benign/array.npy", numpy_array),
    ("benign/tiny.gguf", gguf_file),
    ("malicious/payload.pkl", malicious_pickle),
    ("malicious/poisoned_checkpoint.pt", malicious_torch),
    ("malicious/disguised_pickle.safetensors", disguised_safetensors),
    ("malicious/nested_bundle.zip", nested_zip),
    ("vulnerable/requirements.txt", vulnerable_requirements),
]


def build(out: Path) -> dict[str, bytes]:
    """Build every example in a scratch directory; return {relative path: bytes}.

    Building under the final file name matters: torch.save names the zip's root folder
    after the file's stem.
    """
    result: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rel, builder in EXAMPLES:
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            builder(target)
            result[rel] = target.read_bytes()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="directory to write into (default: this script's directory)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the files on disk differ from a fresh build")
    args = parser.parse_args(argv)
    built = build(args.out)
    stale = []
    for rel, data in built.items():
        path = args.out / rel
        same = path.is_file() and path.read_bytes() == data
        if not same:
            stale.append(rel)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()[:16]
        state = "ok" if same else ("DIFFERS" if args.check else "written")
        print(f"{rel:<42} {len(data):>7} B  sha256:{digest}  {state}")
    print(f"total {sum(len(d) for d in built.values())} bytes in {len(built)} files")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
