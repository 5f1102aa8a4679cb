"""TF checkpoints: the bounded .index table reader, and HEX-TCK against the data shards.

Index files are real LevelDB-format tables written with the fixture's block builder
(``_leveldb_block``: entries, restart array, masked crc32c trailer); their values are
BundleHeaderProto / BundleEntryProto messages serialised by the ``protobuf`` library from
descriptors with TensorFlow's field numbers. Nothing is restored or loaded.
"""

from __future__ import annotations

import os
import random
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fixtures.formats import _crc32c, _leveldb_block, _varint, proto_classes

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.identify import identify
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.tfcheckpoint import TableError, parse_index, snappy_decompress
from hexscan.scanners.base import ScanContext
from hexscan.scanners.tfcheckpoint import TFCheckpointScanner

MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")


def _pb() -> dict[str, type]:
    """tensor_bundle.proto / tensor_shape.proto / versions.proto with TF's field numbers."""
    return proto_classes("tensorflow", {
        "BundleHeaderProto": [("num_shards", 1, "int32", None, False),
                              ("endianness", 2, "enum_as_int", None, False),
                              ("version", 3, "message", "VersionDef", False)],
        "VersionDef": [("producer", 1, "int32", None, False)],
        "BundleEntryProto": [("dtype", 1, "enum_as_int", None, False),
                             ("shape", 2, "message", "TensorShapeProto", False),
                             ("shard_id", 3, "int32", None, False),
                             ("offset", 4, "int64", None, False),
                             ("size", 5, "int64", None, False),
                             ("slices", 7, "message", "TensorSliceProto", True)],
        "TensorShapeProto": [("dim", 2, "message", "Dim", True),
                             ("unknown_rank", 3, "bool", None, False)],
        "Dim": [("size", 1, "int64", None, False), ("name", 2, "string", None, False)],
        "TensorSliceProto": [("extent", 1, "message", "Extent", True)],
        "Extent": [("start", 1, "int64", None, False), ("length", 2, "int64", None, False)],
    }, syntax="proto3")


PB = _pb()


def header(num_shards: int = 1) -> bytes:
    h = PB["BundleHeaderProto"](num_shards=num_shards)
    h.version.producer = 1
    return h.SerializeToString()


def entry(dtype: int = 1, shape: tuple[int, ...] = (4,), shard: int = 0, offset: int = 0,
          size: int | None = None, crc: bool = True) -> bytes:
    e = PB["BundleEntryProto"](dtype=dtype, shard_id=shard, offset=offset,
                               size=4 * _count(shape) if size is None else size)
    for d in shape:
        e.shape.dim.add(size=d)
    data = e.SerializeToString()
    if crc:  # crc32c is a fixed32 (field 6); the spec builder has no fixed32 kind
        data += bytes([6 << 3 | 5]) + struct.pack("<I", 0x1234)
    return data


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _snappy_literal(data: bytes) -> bytes:
    """Valid raw snappy made of literals only (what a minimal compressor emits)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 60):
        piece = data[i:i + 60]
        out.append((len(piece) - 1) << 2)
        out += piece
    return bytes(out)


def _compressed_block(entries: list[tuple[bytes, bytes]], kind: int) -> bytes:
    plain = _leveldb_block(entries)[:-5]
    body = _snappy_literal(plain) if kind == 1 else plain
    crc = _crc32c(body + bytes([kind]))
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    return body + bytes([kind]) + struct.pack("<I", masked)


def table(entries: list[tuple[bytes, bytes]], per_block: int = 2, compress: int = 0,
          bad_handle: bool = False) -> bytes:
    """A LevelDB table: data blocks of ``per_block`` entries, metaindex, index, footer."""
    out = b""
    index_entries = []
    for i in range(0, len(entries), per_block):
        chunk = entries[i:i + per_block]
        block = _compressed_block(chunk, compress) if compress else _leveldb_block(chunk)
        handle = (10_000, 50) if bad_handle else (len(out), len(block) - 5)
        index_entries.append((chunk[-1][0], _varint(handle[0]) + _varint(handle[1])))
        out += block
    meta = _leveldb_block([])
    meta_off = len(out)
    out += meta
    index = _leveldb_block(index_entries)
    footer = (_varint(meta_off) + _varint(len(meta) - 5)
              + _varint(meta_off + len(meta)) + _varint(len(index) - 5))
    return out + index + footer.ljust(40, b"\x00") + MAGIC


def benign_entries() -> list[tuple[bytes, bytes]]:
    return [(b"", header(1)),
            (b"dense/bias/.ATTRIBUTES/VARIABLE_VALUE", entry(shape=(4,), offset=0)),
            (b"dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", entry(shape=(4, 4), offset=16)),
            (b"step/.ATTRIBUTES/VARIABLE_VALUE", entry(dtype=9, shape=(), offset=80, size=8))]


def write_ckpt(tmp: Path, entries: list[tuple[bytes, bytes]], shard_sizes: dict[int, int],
               num_shards: int = 1, **kw: Any) -> Path:
    index = tmp / "ckpt-1.index"
    index.write_bytes(table(entries, **kw))
    for shard, size in shard_sizes.items():
        (tmp / f"ckpt-1.data-{shard:05d}-of-{num_shards:05d}").write_bytes(b"\x01" * size)
    return index


def scan_path(path: Path) -> list[Finding]:
    data = path.read_bytes()
    ident = identify(path.name, data[:65536], len(data), data[-65536:])
    art = Artifact.from_file(str(path), path.name)
    return list(TFCheckpointScanner().scan(art, ScanContext(ident, ResourceLimits())))


def scan_bytes(data: bytes) -> list[Finding]:
    ident = identify("x.index", data[:65536], len(data), data[-65536:])
    art = Artifact("x.index", "x.index", "member.index", len(data), lambda: _bio(data))
    return list(TFCheckpointScanner().scan(art, ScanContext(ident, ResourceLimits())))


def _bio(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def ids(findings: list[Finding]) -> dict[str, Severity]:
    return {f.rule.id: f.severity or f.rule.severity for f in findings}


# ------------------------------------------------------------------------ benign

@pytest.mark.parametrize("compress", [0, 1])
@pytest.mark.parametrize("per_block", [1, 2, 16])
def test_benign_checkpoint_is_clean(tmp_path: Path, compress: int, per_block: int) -> None:
    path = write_ckpt(tmp_path, benign_entries(), {0: 88}, per_block=per_block,
                      compress=compress)
    data = path.read_bytes()
    ident = identify(path.name, data[:65536], len(data), data[-65536:])
    assert ident.format is Format.TF_CHECKPOINT_INDEX
    index = parse_index(data)
    assert not index.issues and index.num_shards == 1 and index.version == 1
    assert [(e.key, e.shape, e.offset, e.size) for e in index.entries] == [
        ("dense/bias/.ATTRIBUTES/VARIABLE_VALUE", (4,), 0, 16),
        ("dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", (4, 4), 16, 64),
        ("step/.ATTRIBUTES/VARIABLE_VALUE", (), 80, 8)]
    assert index.entries[0].crc32c == 0x1234
    assert not [f for f in scan_path(path) if (f.severity or f.rule.severity) >= Severity.MEDIUM]


def test_multi_shard_and_prefix_sharing(tmp_path: Path) -> None:
    """Prefix-compressed keys with several restart points, two shards."""
    keys = [f"layer_{i:03d}/kernel".encode() for i in range(40)]
    entries = [(b"", header(2))] + [(k, entry(shard=i % 2, offset=16 * (i // 2)))
                                    for i, k in enumerate(keys)]
    body, prev, restarts = b"", b"", []
    for i, (k, v) in enumerate(entries):
        shared = 0
        if i % 8:
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        else:
            restarts.append(len(body))
        body += _varint(shared) + _varint(len(k) - shared) + _varint(len(v)) + k[shared:] + v
        prev = k
    body += struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))
    crc = _crc32c(body + b"\x00")
    block = body + b"\x00" + struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8)
                                         & 0xFFFFFFFF)
    meta = _leveldb_block([])
    index = _leveldb_block([(b"z", _varint(0) + _varint(len(block) - 5))])
    footer = (_varint(len(block)) + _varint(len(meta) - 5) + _varint(len(block) + len(meta))
              + _varint(len(index) - 5))
    path = tmp_path / "ckpt-1.index"
    path.write_bytes(block + meta + index + footer.ljust(40, b"\x00") + MAGIC)
    for shard in (0, 1):
        (tmp_path / f"ckpt-1.data-{shard:05d}-of-00002").write_bytes(b"\x00" * 320)
    parsed = parse_index(path.read_bytes())
    assert not parsed.issues and [e.key.encode() for e in parsed.entries] == keys
    assert not scan_path(path)


def test_snappy_copies() -> None:
    # "abcd" literal, then copy-1 (len 8, off 4), copy-2 (len 3, off 2) overlapping copies
    data = _varint(15) + bytes([3 << 2]) + b"abcd" + bytes([1 | (4 << 2), 4]) + \
        bytes([2 | (2 << 2)]) + struct.pack("<H", 2)
    assert snappy_decompress(data) == b"abcdabcdabcdcdc"
    for bad in (_varint(5) + bytes([1, 9]),            # copy before any output
                _varint(3) + bytes([8]) + b"ab",       # literal past the end
                _varint(1000) + b"\x00a"):             # declares more than it can encode
        with pytest.raises(TableError):
            snappy_decompress(bad)
    with pytest.raises(LimitExceeded):
        snappy_decompress(_varint(1 << 40) + b"\x00")


# ------------------------------------------------------------------------ checks

def test_malformed_tables_are_hex_tck_001() -> None:
    good = table(benign_entries())
    # data block handles pointing past the file
    findings = scan_bytes(table(benign_entries(), bad_handle=True))
    assert ids(findings) == {"HEX-TCK-001": Severity.MEDIUM}
    assert {f.key for f in findings} == {"block-handle", "header"}
    # bad restart array in the first data block: huge restart count
    data = bytearray(good)
    first_block_len = len(_leveldb_block(benign_entries()[:2]))
    struct.pack_into("<I", data, first_block_len - 9, 10_000)
    assert "HEX-TCK-001" in ids(scan_bytes(bytes(data)))
    # flipped byte: checksum mismatch
    data = bytearray(good)
    data[3] ^= 0x40
    assert any(f.rule.id == "HEX-TCK-001" for f in scan_bytes(bytes(data)))
    # no header
    assert "header" in {f.key for f in scan_bytes(table(benign_entries()[1:]))}


def test_unknown_compression_is_low_hex_tck_007() -> None:
    findings = scan_bytes(table(benign_entries(), compress=2))
    assert ids(findings) == {"HEX-TCK-007": Severity.LOW, "HEX-TCK-001": Severity.MEDIUM}
    assert "compressed block not inspected" in findings[-1].message or any(
        "not inspected" in f.message for f in findings)


def test_shard_id_beyond_num_shards_hex_tck_002(tmp_path: Path) -> None:
    entries = benign_entries() + [(b"z/evil", entry(shard=3, offset=0))]
    found = ids(scan_path(write_ckpt(tmp_path, entries, {0: 88})))
    assert found == {"HEX-TCK-002": Severity.MEDIUM}


def test_entry_past_end_of_shard_hex_tck_002(tmp_path: Path) -> None:
    found = scan_path(write_ckpt(tmp_path, benign_entries(), {0: 60}))
    assert {f.rule.id for f in found} == {"HEX-TCK-002"}
    assert "step" in " ".join(f.message for f in found)


def test_overlap_hex_tck_003(tmp_path: Path) -> None:
    entries = benign_entries() + [(b"z/alias", entry(shape=(4,), offset=8))]
    assert ids(scan_path(write_ckpt(tmp_path, entries, {0: 88}))) == \
        {"HEX-TCK-003": Severity.MEDIUM}


def test_size_mismatch_hex_tck_004(tmp_path: Path) -> None:
    entries = benign_entries()
    entries[1] = (entries[1][0], entry(shape=(4,), offset=0, size=16))
    entries[2] = (entries[2][0], entry(shape=(4, 3), offset=16, size=64))
    found = scan_path(write_ckpt(tmp_path, entries, {0: 88}))
    assert ids(found) == {"HEX-TCK-004": Severity.MEDIUM}
    assert found[0].evidence["expected"] == 48


def test_missing_shard_hex_tck_005(tmp_path: Path) -> None:
    assert ids(scan_path(write_ckpt(tmp_path, benign_entries(), {}))) == \
        {"HEX-TCK-005": Severity.LOW}


@pytest.mark.parametrize("extra", [10, 4096])
def test_unaccounted_bytes_hex_tck_006(tmp_path: Path, extra: int) -> None:
    found = ids(scan_path(write_ckpt(tmp_path, benign_entries(), {0: 88 + extra})))
    assert found == ({} if extra <= 64 else {"HEX-TCK-006": Severity.MEDIUM})


def test_gap_between_tensors_hex_tck_006(tmp_path: Path) -> None:
    entries = benign_entries()
    entries[2] = (entries[2][0], entry(shape=(4, 4), offset=1016))
    entries[3] = (entries[3][0], entry(dtype=9, shape=(), offset=1080, size=8))
    found = scan_path(write_ckpt(tmp_path, entries, {0: 1088}))
    assert ids(found) == {"HEX-TCK-006": Severity.MEDIUM}
    assert found[0].evidence["ranges"] == [[16, 1016]]


def test_shard_symlink_out_of_directory_hex_tck_008(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"x" * 88)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    path = write_ckpt(ckpt, benign_entries(), {})
    os.symlink(outside, ckpt / "ckpt-1.data-00000-of-00001")
    assert ids(scan_path(path)) == {"HEX-TCK-008": Severity.MEDIUM}
    (ckpt / "ckpt-1.data-00000-of-00001").unlink()
    (ckpt / "real").write_bytes(b"x" * 88)
    os.symlink("real", ckpt / "ckpt-1.data-00000-of-00001")
    assert not scan_path(path)


def test_members_get_no_disk_checks() -> None:
    assert not scan_bytes(table(benign_entries()))


def test_oversized_index_is_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import hexscan.scanners.tfcheckpoint as mod

    monkeypatch.setattr(mod, "MAX_INDEX_BYTES", 100)
    with pytest.raises(LimitExceeded):
        scan_bytes(table(benign_entries()))


# ------------------------------------------------------------------------ fuzz

def test_fuzzed_indexes_never_crash() -> None:
    """~2,000 seeded mutations: findings, ParseError or LimitExceeded; bounded memory."""
    rng = random.Random(20261125)  # noqa: S311 - seeded fuzzing
    bases = [table(benign_entries()), table(benign_entries(), per_block=1, compress=1),
             table(benign_entries(), per_block=16)]
    tracemalloc.start()
    try:
        for _ in range(2000):
            data = bytearray(rng.choice(bases))
            op = rng.random()
            if op < 0.15:
                data = data[:rng.randint(0, len(data))]
            elif op < 0.5:
                for _ in range(rng.randint(1, 6)):
                    pos = rng.randrange(len(data))
                    data[pos] ^= 1 << rng.randrange(8)
            elif op < 0.8:
                pos = rng.randrange(max(1, len(data) - 4))
                value = rng.choice([0, 1, 0x7F, 0xFF, 1 << 31, 0xFFFFFFFF, rng.getrandbits(32)])
                data[pos:pos + 4] = struct.pack("<I", value)
            else:  # rewrite the footer handles with random varints
                foot = b"".join(_varint(rng.choice([0, 5, len(data), rng.getrandbits(40)]))
                                for _ in range(4))
                data[-48:] = foot.ljust(40, b"\x00")[:40] + MAGIC
            try:
                scan_bytes(bytes(data))
            except (ParseError, LimitExceeded):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
