"""A bounded reader of TensorFlow checkpoint ``.index`` files (TF's LevelDB-format table).

A TF2 checkpoint is ``<prefix>.index`` plus ``<prefix>.data-0000N-of-0000M`` shards. The
index is an immutable LevelDB table (TF's ``tensorflow/core/lib/io/table``): data blocks of
prefix-compressed ``key -> value`` entries with a restart array, a metaindex block, an
index block whose entries point at the data blocks, and a 48-byte footer (two block
handles, padding, magic). Blocks may be snappy-compressed. The value under key ``""`` is a
``BundleHeaderProto``; every other value is a ``BundleEntryProto`` saying where a tensor's
bytes live in which shard.

Structural problems are collected as :class:`TableIssue` values (the scanner reports them)
instead of raised, so one broken block does not hide the rest. Sizes are bounded: the
index file, every decompressed block, the sum of decompressed bytes and the entry count.
Exceeding one raises :class:`~hexscan.errors.LimitExceeded`. Nothing here opens a file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hexscan.errors import LimitExceeded
from hexscan.parsers.protowire import LEN, VARINT, WireError, iter_fields, read_varint

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5  # compression type byte + masked crc32c
#: The largest index file read (index files are KB to a few MB even for large models).
MAX_INDEX_BYTES = 64 * 1024 * 1024
#: The largest single decompressed block, and the sum over all blocks.
MAX_BLOCK_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_ENTRIES = 2_000_000
MAX_DIMS = 64
#: Blocks whose crc32c is verified (pure Python: bounded so a big index stays fast).
MAX_CRC_BYTES = 16 * 1024 * 1024

#: TF DataType -> bytes per element (variable-size and opaque types are absent).
DTYPE_BYTES: dict[int, int] = {
    1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 11: 1, 12: 1, 13: 4, 14: 2,
    15: 2, 16: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8, 24: 1, 25: 1,
}
DTYPE_NAMES: dict[int, str] = {
    1: "float", 2: "double", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 18: "complex128", 19: "half",
    20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
}


class TableError(ValueError):
    """A structural problem that stops reading one block (or the whole table)."""


@dataclass(frozen=True, slots=True)
class TableIssue:
    """A structural problem: ``kind`` is a stable short name, ``offset`` where it is."""

    kind: str
    message: str
    offset: int | None = None


@dataclass(slots=True)
class BundleEntry:
    """One tensor's BundleEntryProto (fields TF reads to find its bytes)."""

    key: str
    dtype: int = 0
    shape: tuple[int, ...] = ()
    unknown_rank: bool = False
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int | None = None
    sliced: bool = False
    block_offset: int = 0

    @property
    def expected_size(self) -> int | None:
        """dtype x shape in bytes, when both are fixed-size and known."""
        width = DTYPE_BYTES.get(self.dtype)
        if width is None or self.unknown_rank or self.sliced or any(d < 0 for d in self.shape):
            return None
        count = 1
        for d in self.shape:
            count *= d
        return count * width


@dataclass
class BundleIndex:
    """What the index says: header fields, entries and the problems met on the way."""

    num_shards: int | None = None
    endianness: int = 0
    version: int | None = None
    entries: list[BundleEntry] = field(default_factory=list)
    issues: list[TableIssue] = field(default_factory=list)
    uninspected_blocks: list[tuple[int, int]] = field(default_factory=list)  # (offset, type)


# ------------------------------------------------------------------------ table

def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), table-driven."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def snappy_decompress(data: bytes, limit: int = MAX_BLOCK_BYTES) -> bytes:  # noqa: C901 - one branch per tag kind, as the format reads
    """Decode raw snappy; bounded by ``limit`` and by snappy's own expansion ratio."""
    try:
        length, pos = read_varint(data, 0)
    except WireError as exc:
        raise TableError(f"snappy: {exc}") from exc
    if length > limit:
        raise LimitExceeded("tf_block_size", f"snappy block declares {length} bytes "
                            f"(limit {limit})")
    if length > 22 * len(data) + 64:
        raise TableError(f"snappy: declared length {length} exceeds what {len(data)} "
                         "compressed bytes can encode")
    out = bytearray()
    n = len(data)
    while pos < n:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if pos + extra > n:
                    raise TableError("snappy: truncated literal length")
                size = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > n:
                raise TableError("snappy: literal runs past the end")
            out += data[pos:pos + size]
            pos += size
        else:
            if kind == 1:
                if pos >= n:
                    raise TableError("snappy: truncated copy")
                size = ((tag >> 2) & 7) + 4
                off = ((tag >> 5) << 8) | data[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                if pos + width > n:
                    raise TableError("snappy: truncated copy")
                size = (tag >> 2) + 1
                off = int.from_bytes(data[pos:pos + width], "little")
                pos += width
            if off == 0 or off > len(out):
                raise TableError(f"snappy: copy offset {off} outside the {len(out)} bytes "
                                 "decoded so far")
            start = len(out) - off
            if size <= off:
                out += out[start:start + size]
            else:  # overlapping copy repeats the last ``off`` bytes
                chunk = bytes(out[start:])
                out += (chunk * (size // off + 1))[:size]
        if len(out) > length:
            raise TableError("snappy: output longer than declared")
    if len(out) != length:
        raise TableError(f"snappy: decoded {len(out)} bytes, header declared {length}")
    return bytes(out)


def _handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    off, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return off, size, pos


class _Table:
    def __init__(self, data: bytes, index: BundleIndex) -> None:
        self.data = data
        self.index = index
        self.total = 0
        self.crc_budget = MAX_CRC_BYTES
        self.body_end = len(data) - FOOTER_SIZE

    def issue(self, kind: str, message: str, offset: int | None = None) -> None:
        if len(self.index.issues) < 1000:
            self.index.issues.append(TableIssue(kind, message, offset))

    def block(self, off: int, size: int, what: str) -> bytes | None:
        """The block's contents, decompressed; None (with an issue) when unusable."""
        if off + size + BLOCK_TRAILER > self.body_end:
            self.issue("block-handle", f"{what} block handle (offset {off}, size {size}) "
                       f"points outside the table's {self.body_end} bytes", off)
            return None
        raw = self.data[off:off + size]
        kind = self.data[off + size]
        masked = struct.unpack_from("<I", self.data, off + size + 1)[0]
        if size + 1 <= self.crc_budget:
            self.crc_budget -= size + 1
            if crc32c(self.data[off:off + size + 1]) != unmask_crc(masked):
                self.issue("checksum", f"{what} block at offset {off} fails its crc32c", off)
        if kind == 0:
            content = raw
        elif kind == 1:
            try:
                content = snappy_decompress(raw)
            except TableError as exc:
                self.issue("snappy", f"{what} block at offset {off}: {exc}", off)
                return None
        else:
            self.index.uninspected_blocks.append((off, kind))
            return None
        self.total += len(content)
        if self.total > MAX_TOTAL_BYTES:
            raise LimitExceeded("tf_index_size", "TF checkpoint index decompresses to more "
                                f"than {MAX_TOTAL_BYTES} bytes")
        return content

    def entries(self, block: bytes, off: int, what: str) -> list[tuple[bytes, bytes]]:
        """The (key, value) pairs of one block; an issue and a partial list when broken."""
        out: list[tuple[bytes, bytes]] = []
        if len(block) < 4:
            self.issue("restarts", f"{what} block at offset {off} is too short for a "
                       "restart array", off)
            return out
        count = struct.unpack_from("<I", block, len(block) - 4)[0]
        limit = len(block) - 4 - 4 * count
        if count == 0 or limit < 0:
            self.issue("restarts", f"{what} block at offset {off} declares {count} restart "
                       f"points, which do not fit its {len(block)} bytes", off)
            return out
        restarts = struct.unpack_from(f"<{count}I", block, limit)
        prev_r = -1
        for r in restarts:
            if r >= max(limit, 1) or r <= prev_r:
                self.issue("restarts", f"{what} block at offset {off} has restart point {r} "
                           f"outside or out of order (entries end at {limit})", off)
                return out
            prev_r = r
        if restarts[0] != 0:
            self.issue("restarts", f"{what} block at offset {off}: first restart point is "
                       f"{restarts[0]}, not 0", off)
        restart_set = set(restarts)
        pos, key = 0, b""
        try:
            while pos < limit:
                at = pos
                shared, pos = read_varint(block, pos)
                unshared, pos = read_varint(block, pos)
                vlen, pos = read_varint(block, pos)
                if shared > len(key) or (at in restart_set and shared):
                    raise TableError(f"entry at {at} shares {shared} key bytes "
                                     f"{'at a restart point' if shared else ''}".strip())
                if pos + unshared + vlen > limit:
                    raise TableError(f"entry at {at} runs past the entries")
                new_key = key[:shared] + block[pos:pos + unshared]
                if out and new_key <= key:
                    raise TableError(f"key {new_key[:64]!r} is not after {key[:64]!r}")
                key = new_key
                pos += unshared
                out.append((key, block[pos:pos + vlen]))
                pos += vlen
                if len(out) > MAX_ENTRIES:
                    raise LimitExceeded("tf_index_entries", "TF checkpoint index block has "
                                        f"more than {MAX_ENTRIES} entries")
        except (TableError, WireError) as exc:
            self.issue("entry", f"{what} block at offset {off}: {exc}", off)
        return out


def parse_index(data: bytes) -> BundleIndex:
    """Read a whole ``.index`` file held in memory (the caller bounds its size)."""
    index = BundleIndex()
    if len(data) < FOOTER_SIZE or int.from_bytes(data[-8:], "little") != MAGIC:
        index.issues.append(TableIssue("footer", "the file does not end with the LevelDB "
                                       "table magic"))
        return index
    table = _Table(data, index)
    footer = data[-FOOTER_SIZE:]
    try:
        meta_off, meta_size, pos = _handle(footer, 0)
        idx_off, idx_size, pos = _handle(footer, pos)
    except WireError as exc:
        table.issue("footer", f"footer block handles are malformed: {exc}", table.body_end)
        return index
    if pos > FOOTER_SIZE - 8:
        table.issue("footer", "footer block handles run into the magic", table.body_end)
        return index
    meta = table.block(meta_off, meta_size, "metaindex")
    if meta is not None:
        table.entries(meta, meta_off, "metaindex")
    idx = table.block(idx_off, idx_size, "index")
    if idx is not None:
        _data_blocks(table, idx, idx_off)
    if index.num_shards is None:
        table.issue("header", "the index has no BundleHeaderProto (key \"\")")
    return index


def _data_blocks(table: _Table, idx: bytes, idx_off: int) -> None:
    index = table.index
    seen_blocks: set[int] = set()
    last_key: bytes | None = None
    for sep, value in table.entries(idx, idx_off, "index"):
        try:
            b_off, b_size, _ = _handle(value, 0)
        except WireError as exc:
            table.issue("block-handle", f"index entry {sep[:64]!r}: bad block handle ({exc})",
                        idx_off)
            continue
        if b_off in seen_blocks:
            table.issue("block-handle", f"data block at offset {b_off} is listed twice", b_off)
            continue
        seen_blocks.add(b_off)
        block = table.block(b_off, b_size, "data")
        if block is None:
            continue
        for key, val in table.entries(block, b_off, "data"):
            if last_key is not None and key <= last_key:
                table.issue("entry", f"key {key[:64]!r} in data block at {b_off} is not after "
                            "the previous block's keys", b_off)
                continue
            if key > sep:
                table.issue("entry", f"key {key[:64]!r} sorts after its index separator "
                            f"{sep[:64]!r}", b_off)
            last_key = key
            _value(index, key, val, b_off, table)
            if len(index.entries) > MAX_ENTRIES:
                raise LimitExceeded("tf_index_entries", "TF checkpoint index has more than "
                                    f"{MAX_ENTRIES} entries")


# ------------------------------------------------------------------------ protos

def _value(index: BundleIndex, key: bytes, val: bytes, block_offset: int,
           table: _Table) -> None:
    try:
        if key == b"":
            _header(index, val)
        else:
            index.entries.append(_entry(key, val, block_offset))
    except WireError as exc:
        what = "BundleHeaderProto" if key == b"" else f"BundleEntryProto {key[:64]!r}"
        table.issue("proto", f"{what} is malformed: {exc}", block_offset)


def _int64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _header(index: BundleIndex, val: bytes) -> None:
    index.num_shards = 0
    for f in iter_fields(val):
        if f.number == 1 and f.wire_type == VARINT:
            index.num_shards = _int64(f.value)
        elif f.number == 2 and f.wire_type == VARINT:
            index.endianness = f.value
        elif f.number == 3 and f.wire_type == LEN:
            for g in iter_fields(val, f.start, f.start + f.length):
                if g.number == 1 and g.wire_type == VARINT:
                    index.version = _int64(g.value)


def _entry(key: bytes, val: bytes, block_offset: int) -> BundleEntry:
    e = BundleEntry(key.decode("utf-8", "backslashreplace"), block_offset=block_offset)
    for f in iter_fields(val):
        if f.wire_type == VARINT:
            if f.number == 1:
                e.dtype = f.value
            elif f.number == 3:
                e.shard_id = _int64(f.value)
            elif f.number == 4:
                e.offset = _int64(f.value)
            elif f.number == 5:
                e.size = _int64(f.value)
        elif f.number == 6 and f.wire_type == 5:
            e.crc32c = f.value
        elif f.number == 2 and f.wire_type == LEN:
            e.shape, e.unknown_rank = _shape(val, f.start, f.start + f.length)
        elif f.number == 7 and f.wire_type == LEN:
            e.sliced = True
    return e


def _shape(buf: bytes, start: int, end: int) -> tuple[tuple[int, ...], bool]:
    dims: list[int] = []
    unknown = False
    for f in iter_fields(buf, start, end):
        if f.number == 2 and f.wire_type == LEN:
            if len(dims) >= MAX_DIMS:
                return tuple(dims), True
            size = 0
            for g in iter_fields(buf, f.start, f.start + f.length):
                if g.number == 1 and g.wire_type == VARINT:
                    size = _int64(g.value)
            dims.append(size)
        elif f.number == 3 and f.wire_type == VARINT and f.value:
            unknown = True
    return tuple(dims), unknown
