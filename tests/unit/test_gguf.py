"""GGUF / GGML: hex's own bounded header reader, proved against the gguf library, and HEX-GGF.

Benign files are written by ``gguf.GGUFWriter`` (and read back by ``gguf.GGUFReader`` only to
compare answers); hostile ones are built byte by byte here. Nothing is ever loaded by a model
runtime, and chat templates are parsed, never rendered.
"""

from __future__ import annotations

import io
import random
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_hex
from gguf import GGMLQuantizationType, GGUFEndian, GGUFReader, GGUFValueType, GGUFWriter

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.formats.identify import identify
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.gguf import STRING, ArrayValue, GGUFLimits, parse_gguf
from hexscan.scanners.base import ScanContext
from hexscan.scanners.gguf import GGUFScanner
from hexscan.scanners.template import TemplateScanner

BENIGN_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                   "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
EVIL_TEMPLATE = "{{ lipsum.__globals__['os'].popen('id').read() }}"


def write_gguf(path: Path, *, template: str | None = BENIGN_TEMPLATE, big: bool = False,
               endian: GGUFEndian = GGUFEndian.LITTLE, extra: dict[str, str] | None = None
               ) -> Path:
    writer = GGUFWriter(str(path), "llama", endianess=endian)
    writer.add_name("tiny")
    writer.add_block_count(2)
    writer.add_context_length(256)
    writer.add_float32("tiny.rope.freq_base", 10000.0)
    writer.add_bool("tiny.flag", True)
    writer.add_array("tiny.ints", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    if template is not None:
        writer.add_chat_template(template)
    for key, value in (extra or {}).items():
        writer.add_string(key, value)
    vocab = 200_000 if big else 100
    writer.add_token_list([f"tok{i}" for i in range(vocab)])
    writer.add_token_scores([float(i) for i in range(vocab)])
    writer.add_token_types([1] * vocab)
    writer.add_tensor("tok_embd.weight", np.arange(64, dtype=np.float32).reshape(8, 8))
    writer.add_tensor("norm.weight", np.ones(7, dtype=np.float16))
    writer.add_tensor("q8.weight", np.zeros((2, 68), np.uint8),
                      raw_dtype=GGMLQuantizationType.Q8_0)
    writer.add_tensor("ids", np.arange(5, dtype=np.int32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _scan(data: bytes, name: str = "model.gguf", scanner: Any = None) -> list[Finding]:
    ident = identify(name, data[:65536], len(data))
    art = Artifact(name, name, None, len(data), lambda: io.BytesIO(data))
    return list((scanner or GGUFScanner()).scan(art, ScanContext(ident, ResourceLimits())))


def rules_of(findings: list[Finding]) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.effective_severity)
    return out


# ---------------------------------------------------------------------------- hand-built files


def _s(text: str | bytes, width: str = "Q") -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<" + width, len(raw)) + raw


def build(kvs: list[bytes], tensors: list[tuple[str, tuple[int, ...], int, int]],
          data: bytes = b"", version: int = 3, alignment: int = 32,
          counts: tuple[int, int] | None = None) -> bytes:
    """A GGUF file from raw KV records and (name, dims, type, offset) tensor infos."""
    width = "I" if version == 1 else "Q"
    n_tensors, n_kv = counts or (len(tensors), len(kvs))
    out = b"GGUF" + struct.pack("<I", version) + struct.pack("<" + width * 2, n_tensors, n_kv)
    out += b"".join(kvs)
    for name, dims, ttype, offset in tensors:
        out += _s(name, width) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<" + width, d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
    out += bytes(-len(out) % alignment)
    return out + data


def kv_u32(key: str, value: int) -> bytes:
    return _s(key) + struct.pack("<II", 4, value)


def kv_str(key: str, value: str | bytes) -> bytes:
    return _s(key) + struct.pack("<I", STRING) + _s(value)


F32 = 0
ONE_TENSOR = [("w", (8,), F32, 0)]
ONE_DATA = bytes(32)


# ---------------------------------------------------------------------------- proof vs gguf


@pytest.mark.parametrize("endian", [GGUFEndian.LITTLE, GGUFEndian.BIG])
def test_reader_agrees_with_the_gguf_library(tmp_path: Path, endian: GGUFEndian) -> None:
    path = write_gguf(tmp_path / "m.gguf", endian=endian)
    reference = GGUFReader(str(path))
    with open(path, "rb") as handle:
        view = parse_gguf(handle, path.stat().st_size)
    assert view.issues == () and view.header_complete
    assert view.big_endian is (endian is GGUFEndian.BIG)
    assert view.data_start == reference.data_offset
    assert [kv.key for kv in view.kvs] == [k for k in reference.fields if not k.startswith("GGUF.")]
    for kv in view.kvs:
        field = reference.fields[kv.key]
        assert kv.type == field.types[0].value
        if isinstance(kv.value, ArrayValue):
            assert kv.value.elem_type == field.types[1].value
            assert kv.value.count == len(field.data)
        elif kv.type == GGUFValueType.STRING:
            assert kv.value == bytes(field.parts[field.data[0]]).decode()
        else:
            assert kv.value == pytest.approx(field.parts[field.data[0]][0])
    mine = {t.name: (t.dims, t.type, view.data_start + t.offset, t.nbytes) for t in view.tensors}
    theirs = {t.name: (tuple(int(d) for d in t.shape), t.tensor_type.value, t.data_offset,
                       t.n_bytes) for t in reference.tensors}
    assert mine == theirs


def test_big_array_metadata_is_walked_quickly(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "big.gguf", big=True)
    with open(path, "rb") as handle:
        view = parse_gguf(handle, path.stat().st_size)
    tracemalloc.start()
    with open(path, "rb") as handle:
        parse_gguf(handle, path.stat().st_size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20  # the token list is walked, not built
    tokens = next(kv for kv in view.kvs if kv.key == "tokenizer.ggml.tokens")
    assert tokens.value.count == 200_000 and tokens.value.sample[:2] == ("tok0", "tok1")
    assert view.issues == ()


def test_library_files_are_clean_end_to_end(tmp_path: Path) -> None:
    write_gguf(tmp_path / "a.gguf")
    write_gguf(tmp_path / "b.gguf", endian=GGUFEndian.BIG, template=None)
    write_gguf(tmp_path / "evil.gguf", template=BENIGN_TEMPLATE,
               extra={"tokenizer.chat_template.tool_use": EVIL_TEMPLATE})
    report = run_hex("scan", str(tmp_path), "--json", "--workers", "0").json()
    bad = {(Path(r["file_path"]).name, r["rule_id"]) for r in report["results"]
           if r["severity"] in ("MEDIUM", "HIGH", "CRITICAL")}
    assert {name for name, _ in bad} == {"evil.gguf"}
    assert ("evil.gguf", "HEX-TPL-001") in bad
    assert {f["format"] for f in report["files"]} == {"gguf"}


def test_chat_template_in_gguf_is_judged(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", template=EVIL_TEMPLATE)
    found = _scan(path.read_bytes(), scanner=TemplateScanner())
    assert rules_of(found)["HEX-TPL-001"] is Severity.CRITICAL
    assert all(f.evidence["template"] == "gguf:tokenizer.chat_template" for f in found)
    path = write_gguf(tmp_path / "ok.gguf")
    assert _scan(path.read_bytes(), scanner=TemplateScanner()) == []


def test_duplicate_chat_templates_are_both_judged() -> None:
    data = build([kv_str("tokenizer.chat_template", EVIL_TEMPLATE),
                  kv_str("tokenizer.chat_template", BENIGN_TEMPLATE)], ONE_TENSOR, ONE_DATA)
    assert rules_of(_scan(data, scanner=TemplateScanner()))["HEX-TPL-001"] is Severity.CRITICAL
    assert rules_of(_scan(data))["HEX-GGF-005"] is Severity.MEDIUM


# ---------------------------------------------------------------------------- structure


@pytest.mark.parametrize("version", [1, 2, 3])
def test_hand_built_versions_are_clean(version: int) -> None:
    width = "I" if version == 1 else "Q"
    data = build([_s("general.name", width) + struct.pack("<I", STRING) + _s("x", width)],
                 [("w", (8,), F32, 0)], ONE_DATA, version=version)
    assert _scan(data) == []


@pytest.mark.parametrize(("data", "rule"), [
    (b"GGUF", "HEX-GGF-001"),
    (b"GGUF\x07\x00\x00\x00" + bytes(16), "HEX-GGF-001"),
    (build([kv_u32("general.alignment", 24)], ONE_TENSOR, ONE_DATA), "HEX-GGF-001"),
    (build([_s("general.alignment") + struct.pack("<IQ", 10, 64)], ONE_TENSOR, ONE_DATA),
     "HEX-GGF-001"),
    (build([kv_str("general.name", "x")], ONE_TENSOR, ONE_DATA)[:40], "HEX-GGF-001"),
])
def test_malformed_headers(data: bytes, rule: str) -> None:
    assert rules_of(_scan(data)).get(rule) is Severity.MEDIUM


@pytest.mark.parametrize("data", [
    build([], [], counts=(1 << 63, 0)),
    build([], [], counts=(0, (1 << 64) - 1)),
    build([_s("k") + struct.pack("<IQ", STRING, 1 << 62)], []),
    build([_s("k") + struct.pack("<IIQ", 9, 4, 1 << 61)], []),
    build([_s("k") + struct.pack("<IIQ", 9, STRING, 1 << 60)], []),
    build([_s("k") + struct.pack("<IIQ", 9, 9, 1 << 59)], []),
    build([_s("k") + struct.pack("<IIQQ", 9, STRING, 2, 3) + b"abc" + struct.pack("<Q", 1 << 50)],
          []),
    struct.pack("<4sIQQ", b"GGUF", 3, 0, 1) + struct.pack("<Q", 1 << 63) + b"key" + bytes(32),
    build([], [("w", (1 << 40, 1 << 40), F32, 0)], ONE_DATA),
    build([], [("w", (1 << 63,), F32, 0)], ONE_DATA),
])
def test_hostile_counts_and_lengths_never_allocate(data: bytes) -> None:
    tracemalloc.start()
    found = rules_of(_scan(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found.get("HEX-GGF-002") is Severity.HIGH, found
    assert peak < 4 << 20


@pytest.mark.parametrize(("tensors", "data", "kind"), [
    ([("w", (8,), F32, 4)], bytes(64), "misaligned"),
    ([("w", (8,), F32, 0), ("v", (8,), F32, 0)], bytes(64), "overlap"),
    ([("w", (8,), F32, 0), ("v", (8,), F32, 64)], bytes(96), "gap"),
    ([("w", (800,), F32, 0)], bytes(64), "out-of-range"),
    ([("w", (2, 2, 2, 2, 2), F32, 0)], bytes(128), "dims"),
    ([("w", (33,), 8, 0)], bytes(64), "block"),
])
def test_tensor_layout(tensors: list[Any], data: bytes, kind: str) -> None:
    found = [f for f in _scan(build([], tensors, data)) if f.rule.id == "HEX-GGF-003"]
    assert kind in {f.evidence["kind"] for f in found}, _scan(build([], tensors, data))


def test_unknown_types() -> None:
    found = rules_of(_scan(build([], [("w", (8,), 99, 0)], ONE_DATA)))
    assert found.get("HEX-GGF-004") is Severity.MEDIUM
    found = rules_of(_scan(build([_s("k") + struct.pack("<I", 77) + bytes(8)], [])))
    assert found.get("HEX-GGF-004") is Severity.MEDIUM


def test_duplicate_tensor_names() -> None:
    data = build([], [("w", (8,), F32, 0), ("w", (8,), F32, 32)], bytes(64))
    assert rules_of(_scan(data)) == {"HEX-GGF-005": Severity.MEDIUM}


def test_limits_are_findings() -> None:
    data = build([kv_u32(f"k{i}", i) for i in range(50)], ONE_TENSOR, ONE_DATA)
    with io.BytesIO(data) as stream:
        view = parse_gguf(stream, len(data), limits=GGUFLimits(max_kv=10))
    assert [i.kind for i in view.issues] == ["limit"]
    with io.BytesIO(data) as stream:
        view = parse_gguf(stream, len(data), limits=GGUFLimits(max_seconds=-1.0,
                                                                max_array_items=10))
    tokens = build([_s("t") + struct.pack("<IIQ", 9, STRING, 100) + _s("x") * 100], [])
    with io.BytesIO(tokens) as stream:
        view = parse_gguf(stream, len(tokens), limits=GGUFLimits(max_array_items=10))
    assert [i.kind for i in view.issues] == ["limit"]
    huge = build([], [], counts=(300_000, 0)) + bytes(300_000 * 24)
    assert rules_of(_scan(huge)).get("HEX-GGF-006") is Severity.MEDIUM


@pytest.mark.parametrize(("extra", "severity"), [
    (b"\x00" * 100, Severity.LOW),
    (b"\x7fELF\x02\x01\x01" + bytes(100), Severity.HIGH),
    (b"PK\x03\x04" + bytes(100), Severity.HIGH),
])
def test_trailing_data(tmp_path: Path, extra: bytes, severity: Severity) -> None:
    data = write_gguf(tmp_path / "m.gguf").read_bytes() + extra
    assert rules_of(_scan(data)) == {"HEX-GGF-008": severity}


# ---------------------------------------------------------------------------- legacy GGML


def _ggml(magic: bytes, version: int | None, hparams: tuple[int, ...]) -> bytes:
    head = magic + (struct.pack("<I", version) if version is not None else b"")
    return head + struct.pack(f"<{len(hparams)}i", *hparams) + bytes(256)


@pytest.mark.parametrize("data", [
    _ggml(b"lmgg", None, (32000, 4096, 256, 32, 32, 128)),
    _ggml(b"tjgg", 3, (32000, 4096, 256, 32, 32, 128, 2)),
    _ggml(b"fmgg", 1, (50257, 1024, 768, 12, 12, 0)),
    _ggml(b"algg", 1, (8, 16)),
])
def test_legacy_ggml_headers_are_clean(data: bytes) -> None:
    assert identify("m.bin", data, len(data)).format is Format.GGML
    assert _scan(data, "m.bin") == []


@pytest.mark.parametrize("data", [
    _ggml(b"tjgg", 9, (32000, 4096, 256, 32, 32, 128)),
    _ggml(b"lmgg", None, (-1, 4096, 256, 32, 32, 128)),
    _ggml(b"tjgg", 3, (32000, 1 << 30, 256, 32, 32, 128)),
    b"tjgg\x03\x00\x00\x00\x00",
])
def test_legacy_ggml_bad_headers(data: bytes) -> None:
    assert rules_of(_scan(data, "m.bin")) == {"HEX-GGF-007": Severity.MEDIUM}


# ---------------------------------------------------------------------------- fuzzing


def test_fuzzed_files_never_raise(tmp_path: Path) -> None:
    """Seeded truncations, bit flips, count/length overwrites: findings, never an exception."""
    rng = random.Random(34359)  # noqa: S311 - seeded fuzzing
    bases = [write_gguf(tmp_path / "a.gguf").read_bytes(),
             write_gguf(tmp_path / "b.gguf", endian=GGUFEndian.BIG,
                        template=EVIL_TEMPLATE).read_bytes(),
             build([kv_str("general.name", "x"), kv_u32("general.alignment", 64)],
                   [("w", (8,), F32, 0)], bytes(64), version=1, alignment=64)]
    scanners = [GGUFScanner(), TemplateScanner()]
    for i in range(3000):
        data = bytearray(rng.choice(bases))
        op = rng.random()
        limit = min(len(data), 1200)
        if op < 0.2:
            data = data[:rng.randint(0, len(data))]
        elif op < 0.5:
            for _ in range(rng.randint(1, 6)):
                pos = rng.randrange(limit)
                data[pos] ^= 1 << rng.randrange(8)
        elif op < 0.8:
            pos = rng.randrange(4, limit - 8)
            value = rng.choice([0, 1, 9, 13, 255, 1 << 31, 1 << 32, 1 << 62, (1 << 64) - 1,
                                rng.getrandbits(64)])
            data[pos:pos + 8] = struct.pack("<Q", value)
        else:
            pos = rng.randrange(limit)
            data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        _scan(bytes(data), scanner=scanners[i % 2])
