"""A bounded reader of GGUF (v1-v3) headers and of legacy GGML (ggml/ggmf/ggjt/ggla) headers.

GGUF layout: magic ``GGUF``, ``u32 version``, tensor count and KV count (u32 in v1, u64
after), the KV pairs (``string key, u32 type, value``; arrays are ``u32 elem_type, count,
elements``), the tensor infos (``string name, u32 n_dims, dims, u32 ggml_type, u64 offset``),
then padding to ``general.alignment`` (default 32) and the data section. Strings are a length
(u32 in v1, u64 after) and bytes. Big-endian files carry the same layout byte-swapped.

The reader never trusts a count or a length: each is checked against the bytes left in the
file before anything is read, arrays are walked (strings) or skipped (numbers) without
building them, and only a bounded sample of each value is kept. Facts go in ``issues``
(kinds below); judging them is the scanner's job. It never raises on any input, only on
I/O errors of the underlying stream.

Issue kinds: ``magic``, ``version``, ``truncated``, ``hostile-length``, ``value-type``,
``key-encoding``, ``alignment``, ``duplicate-key``, ``duplicate-tensor``, ``tensor-type``,
``dims``, ``block``, ``misaligned``, ``out-of-range``, ``overlap``, ``gap``, ``trailing``,
``limit``; for legacy files ``ggml-version``, ``ggml-hparams``.
"""

from __future__ import annotations

import dataclasses
import struct
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hexscan.parsers.issues import Issue, record

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
#: ggml's GGML_MAX_DIMS.
MAX_DIMS = 4
_INT64_MAX = (1 << 63) - 1

#: GGUF value types: code -> (name, struct format char, size); strings (8) and arrays (9) apart.
VALUE_TYPES: dict[int, tuple[str, str, int]] = {
    0: ("UINT8", "B", 1), 1: ("INT8", "b", 1), 2: ("UINT16", "H", 2), 3: ("INT16", "h", 2),
    4: ("UINT32", "I", 4), 5: ("INT32", "i", 4), 6: ("FLOAT32", "f", 4), 7: ("BOOL", "?", 1),
    10: ("UINT64", "Q", 8), 11: ("INT64", "q", 8), 12: ("FLOAT64", "d", 8),
}
STRING, ARRAY = 8, 9

#: ggml tensor types: code -> (name, block size in elements, bytes per block). Codes 31-33 and
#: 36-38 are repacked types that llama.cpp dropped in 2024 but old files still carry.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 31: ("Q4_0_4_4", 32, 18), 32: ("Q4_0_4_8", 32, 18),
    33: ("Q4_0_8_8", 32, 18), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    36: ("IQ4_NL_4_4", 32, 18), 37: ("IQ4_NL_4_8", 32, 18), 38: ("IQ4_NL_8_8", 32, 18),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

_CHUNK = 1 << 20
_SAMPLE_ITEMS = 8


@dataclass(frozen=True)
class GGUFLimits:
    """Bounds of one header walk; reaching one is an issue of kind ``limit``."""

    max_kv: int = 1_000_000
    max_tensors: int = 262_144
    max_array_items: int = 50_000_000
    """Array elements walked in total (strings are walked one by one, numbers skipped)."""
    max_array_depth: int = 3
    kept_string_bytes: int = 256
    max_seconds: float = 30.0
    sample_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class ArrayValue:
    """An array value: element type, exact count and the first few elements."""

    elem_type: int
    count: int
    sample: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    type: int
    value: Any
    """int/float/bool, str (cut at the kept length), or :class:`ArrayValue`."""
    offset: int
    length: int = 0
    """Byte length of a string value (the kept text may be shorter)."""
    complete: bool = True
    """False when a string value was cut to the kept length."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]
    type: int
    offset: int
    """Relative to the start of the data section."""
    nbytes: int | None
    """Size from dims and type, None when the type is unknown or the dims are invalid."""


@dataclass(frozen=True)
class GGUFView:
    version: int | None = None
    big_endian: bool = False
    tensor_count: int | None = None
    kv_count: int | None = None
    kvs: tuple[KV, ...] = ()
    tensors: tuple[TensorInfo, ...] = ()
    alignment: int = DEFAULT_ALIGNMENT
    data_start: int | None = None
    file_size: int | None = None
    issues: tuple[Issue, ...] = ()
    header_complete: bool = False
    trailing_offset: int | None = None
    trailing_head: bytes = b""

    def strings(self, key: str) -> list[KV]:
        """Every string KV with this exact key (duplicates included)."""
        return [kv for kv in self.kvs if kv.key == key and kv.type == STRING]


class _Stop(Exception):
    """Ends the walk; the issue has been recorded."""


class _Reader:
    """Buffered reader over a stream, with the file size (when known) as the hard bound."""

    def __init__(self, stream: BinaryIO, size: int | None) -> None:
        self.stream = stream
        self.size = size
        self.buf = b""
        self.off = 0
        self.base = 0
        self.eof = False

    @property
    def pos(self) -> int:
        return self.base + self.off

    def remaining(self) -> int | None:
        return None if self.size is None else max(0, self.size - self.pos)

    def _fill(self, n: int) -> bool:
        if len(self.buf) - self.off >= n:
            return True
        if self.eof:
            return False
        parts = [self.buf[self.off:]]
        have = len(parts[0])
        while have < n:
            chunk = self.stream.read(max(n - have, _CHUNK))
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.base += self.off
        self.buf, self.off = b"".join(parts), 0
        return have >= n

    def take(self, n: int) -> bytes | None:
        if not self._fill(n):
            return None
        data = self.buf[self.off:self.off + n]
        self.off += n
        return data

    def skip(self, n: int) -> bool:
        """Advance ``n`` bytes; False at end of file."""
        avail = len(self.buf) - self.off
        if n <= avail:
            self.off += n
            return True
        target = self.pos + n
        if self.size is not None and target > self.size:
            return False
        try:
            self.stream.seek(target)
        except (OSError, ValueError, AttributeError):
            return self._skip_by_reading(n)
        self.base, self.buf, self.off = target, b"", 0
        self.eof = False
        return self.size is not None or self._fill(0)

    def _skip_by_reading(self, n: int) -> bool:
        n -= len(self.buf) - self.off
        self.base, self.buf, self.off = self.pos + (len(self.buf) - self.off), b"", 0
        while n > 0:
            chunk = self.stream.read(min(n, _CHUNK))
            if not chunk:
                self.eof = True
                return False
            n -= len(chunk)
            self.base += len(chunk)
        return True


class _Walk:
    """One GGUF header walk."""

    def __init__(self, reader: _Reader, limits: GGUFLimits, capture: tuple[str, ...],
                 capture_bytes: int) -> None:
        self.r = reader
        self.limits = limits
        self.capture = capture
        self.capture_bytes = capture_bytes
        self.issues: list[Issue] = []
        self.deadline = time.monotonic() + limits.max_seconds
        self.items = 0
        self.calls = 0
        self.e = "<"
        self.version = 0
        self.kvs: list[KV] = []
        self.tensors: list[TensorInfo] = []

    # ------------------------------------------------------------------ primitives

    def issue(self, kind: str, message: str, key: str = "", offset: int | None = None) -> None:
        record(self.issues, Issue(kind, message, key[:200], offset))

    def stop(self, kind: str, message: str, key: str = "") -> _Stop:
        self.issue(kind, message, key, self.r.pos)
        return _Stop()

    def unpack(self, fmt: str, size: int, what: str) -> Any:
        data = self.r.take(size)
        if data is None:
            raise self.stop("truncated", f"file ends inside {what} at offset {self.r.pos}")
        return struct.unpack(self.e + fmt, data)[0]

    def count(self, what: str, min_item: int, key: str = "") -> int:
        """A count/length field, checked against the bytes that can hold its items."""
        n: int = self.unpack("I" if self.version == 1 else "Q", 4 if self.version == 1 else 8,
                             what)
        left = self.r.remaining()
        if left is not None and n * min_item > left:
            need = n * min_item
            # A claim within a file's length of the end looks like truncation, not an attack.
            kind = "truncated" if need - left <= max(1 << 20, self.r.size or 0) else \
                "hostile-length"
            raise self.stop(kind, f"{what} claims {n} (at least {need} bytes) but only "
                            f"{left} bytes remain", key)
        if left is None and n > (1 << 40):
            raise self.stop("hostile-length", f"{what} claims {n}", key)
        return n

    def string(self, what: str, keep: int, key: str = "") -> tuple[str, int, bool]:
        n = self.count(f"length of {what}", 1, key)
        raw = self.r.take(min(n, keep))
        if raw is None or not self.r.skip(n - len(raw)):
            raise self.stop("truncated", f"file ends inside {what}", key)
        return raw.decode("utf-8", "replace"), n, n <= keep

    def tick(self, n: int = 1) -> None:
        self.items += n
        self.calls += 1
        if self.items > self.limits.max_array_items:
            raise self.stop("limit", f"more than {self.limits.max_array_items} array elements")
        if (self.calls & 0xFF) == 0 and time.monotonic() > self.deadline:
            raise self.stop("limit", f"header walk took more than {self.limits.max_seconds} s")

    # ------------------------------------------------------------------ header

    def header(self) -> tuple[int, int]:
        magic = self.r.take(4)
        if magic != GGUF_MAGIC:
            raise self.stop("magic", "file does not start with GGUF")
        raw = self.r.take(4)
        if raw is None:
            raise self.stop("truncated", "file ends inside the version")
        version = int.from_bytes(raw, "little")
        if version & 0xFFFF == 0 and 1 <= int.from_bytes(raw, "big") <= 3:
            self.e, version = ">", int.from_bytes(raw, "big")
        if version not in (1, 2, 3):
            raise self.stop("version", f"unsupported GGUF version {version}")
        self.version = version
        n_tensors = self.count("tensor count", 24 if version > 1 else 16)
        n_kv = self.count("key-value count", 13 if version > 1 else 9)
        return n_tensors, n_kv

    def kv(self) -> None:
        offset = self.r.pos
        raw_key, _, _ = self.string("a key", 4096)
        key = raw_key
        if "\ufffd" in raw_key:
            self.issue("key-encoding", f"key at offset {offset} is not valid UTF-8", key, offset)
        vtype: int = self.unpack("I", 4, f"the type of {key!r}")
        keep = self.capture_bytes if key.startswith(self.capture) else \
            self.limits.kept_string_bytes
        if vtype == STRING:
            text, length, complete = self.string(f"the value of {key!r}", keep, key)
            self.kvs.append(KV(key, vtype, text, offset, length, complete))
        elif vtype == ARRAY:
            self.kvs.append(KV(key, vtype, self.array(key, 1), offset))
        elif vtype in VALUE_TYPES:
            _, fmt, size = VALUE_TYPES[vtype]
            self.kvs.append(KV(key, vtype, self.unpack(fmt, size, f"the value of {key!r}"),
                               offset))
        else:
            raise self.stop("value-type", f"key {key!r} has unknown value type {vtype}", key)

    def array(self, key: str, depth: int) -> ArrayValue:
        if depth > self.limits.max_array_depth:
            raise self.stop("limit", f"arrays nested deeper than {self.limits.max_array_depth}",
                            key)
        etype: int = self.unpack("I", 4, f"the element type of {key!r}")
        width = 4 if self.version == 1 else 8
        if etype in VALUE_TYPES:
            _, fmt, size = VALUE_TYPES[etype]
            n = self.count(f"length of array {key!r}", size, key)
            self.tick(n)
            head = min(n, _SAMPLE_ITEMS)
            raw = self.r.take(head * size)
            if raw is None or not self.r.skip((n - head) * size):
                raise self.stop("truncated", f"file ends inside array {key!r}", key)
            values = struct.unpack(f"{self.e}{head}{fmt}", raw) if head else ()
            return ArrayValue(etype, n, tuple(values))
        if etype == STRING:
            n = self.count(f"length of array {key!r}", width, key)
            sample: list[Any] = []
            for i in range(min(n, _SAMPLE_ITEMS)):
                self.tick()
                sample.append(self.string(f"element {i} of {key!r}", 64, key)[0])
            self.skip_strings(n - len(sample), key)
            return ArrayValue(etype, n, tuple(sample))
        if etype == ARRAY:
            n = self.count(f"length of array {key!r}", 4 + width, key)
            inner: list[ArrayValue] = []
            for _ in range(n):
                self.tick()
                value = self.array(key, depth + 1)
                if len(inner) < _SAMPLE_ITEMS:
                    inner.append(value)
            return ArrayValue(etype, n, tuple(inner))
        raise self.stop("value-type", f"array {key!r} has unknown element type {etype}", key)

    def skip_strings(self, n: int, key: str) -> None:
        """Walk ``n`` strings without decoding them (token lists hold hundreds of thousands)."""
        r = self.r
        length_field = struct.Struct(self.e + ("I" if self.version == 1 else "Q"))
        width = length_field.size
        done = 0
        while done < n:
            batch = min(n - done, 4096)
            self.tick(batch)
            for _ in range(batch):
                if r.off + width > len(r.buf) and not r._fill(width):
                    raise self.stop("truncated", f"file ends inside array {key!r}", key)
                length = length_field.unpack_from(r.buf, r.off)[0]
                r.off += width
                if r.off + length <= len(r.buf):
                    r.off += length
                    continue
                left = r.remaining()
                if left is not None and length > left or length > 1 << 40:
                    raise self.stop("hostile-length", f"a string in array {key!r} claims "
                                    f"{length} bytes", key)
                if not r.skip(length):
                    raise self.stop("truncated", f"file ends inside array {key!r}", key)
            done += batch

    def tensor_info(self) -> None:
        name, _, _ = self.string("a tensor name", 1024)
        n_dims: int = self.unpack("I", 4, f"n_dims of tensor {name!r}")
        if n_dims > MAX_DIMS:
            self.issue("dims", f"tensor {name!r} has {n_dims} dimensions (ggml allows "
                       f"{MAX_DIMS})", name, self.r.pos)
            left = self.r.remaining()
            if n_dims > 64 or (left is not None and n_dims * 8 > left):
                raise self.stop("hostile-length", f"tensor {name!r} claims {n_dims} "
                                "dimensions", name)
        fmt, size = ("I", 4) if self.version == 1 else ("Q", 8)
        dims = tuple(self.unpack(fmt, size, f"the dims of tensor {name!r}")
                     for _ in range(n_dims))
        ttype: int = self.unpack("I", 4, f"the type of tensor {name!r}")
        offset: int = self.unpack("Q", 8, f"the offset of tensor {name!r}")
        self.tensors.append(TensorInfo(name, dims, ttype, offset, self._nbytes(name, dims,
                                                                             ttype)))

    def _nbytes(self, name: str, dims: tuple[int, ...], ttype: int) -> int | None:
        elements = 1
        for dim in dims:
            if dim > _INT64_MAX:
                self.issue("hostile-length", f"tensor {name!r} has dimension {dim} "
                           "(negative as int64)", name)
                return None
            elements *= dim
            if elements > _INT64_MAX:
                self.issue("hostile-length", f"tensor {name!r}: the product of its dims "
                           f"{list(dims)} overflows int64", name)
                return None
        if ttype not in GGML_TYPES:
            self.issue("tensor-type", f"tensor {name!r} has unknown ggml type {ttype}", name)
            return None
        _, block, type_size = GGML_TYPES[ttype]
        if dims and dims[0] % block:
            self.issue("block", f"tensor {name!r}: row length {dims[0]} is not a multiple of "
                       f"the {GGML_TYPES[ttype][0]} block size {block}", name)
            return None
        return elements // block * type_size


def parse_gguf(stream: BinaryIO, size: int | None, *, limits: GGUFLimits | None = None,
               capture: tuple[str, ...] = ("tokenizer.chat_template",),
               capture_bytes: int = 1 << 20) -> GGUFView:
    """Walk the GGUF header in ``stream`` (at offset 0) and check the data layout it declares.

    String values of keys starting with one of ``capture`` are kept up to ``capture_bytes``
    bytes (chat templates); others up to ``limits.kept_string_bytes``.
    """
    limits = limits or GGUFLimits()
    walk = _Walk(_Reader(stream, size), limits, capture, capture_bytes)
    n_tensors = n_kv = None
    complete = False
    try:
        n_tensors, n_kv = walk.header()
        if n_kv > limits.max_kv:
            raise walk.stop("limit", f"{n_kv} key-value pairs exceed the bound of "
                            f"{limits.max_kv}")
        for _ in range(n_kv):
            walk.kv()
        if n_tensors > limits.max_tensors:
            raise walk.stop("limit", f"{n_tensors} tensors exceed the bound of "
                            f"{limits.max_tensors}")
        for _ in range(n_tensors):
            walk.tensor_info()
            walk.tick()
        complete = True
    except _Stop:
        pass
    view = GGUFView(walk.version or None, walk.e == ">", n_tensors, n_kv, tuple(walk.kvs),
                    tuple(walk.tensors), file_size=size)
    if not complete:
        return _with(view, walk.issues)
    return _layout(view, walk, stream)


def _with(view: GGUFView, issues: list[Issue], **changes: Any) -> GGUFView:
    return dataclasses.replace(view, issues=tuple(issues), **changes)


def _alignment(walk: _Walk) -> int:
    found = [kv for kv in walk.kvs if kv.key == "general.alignment"]
    if not found:
        return DEFAULT_ALIGNMENT
    kv = found[-1]
    if kv.type != 4 or not isinstance(kv.value, int) or kv.value <= 0 or \
            kv.value & (kv.value - 1):
        walk.issue("alignment", f"general.alignment must be a power-of-two UINT32, not "
                   f"{VALUE_TYPES.get(kv.type, ('?',))[0]} {str(kv.value)[:40]}",
                   kv.key, kv.offset)
        return DEFAULT_ALIGNMENT
    return kv.value


def _duplicates(walk: _Walk) -> None:
    seen: set[str] = set()
    for kv in walk.kvs:
        if kv.key in seen:
            walk.issue("duplicate-key", f"key {kv.key!r} appears more than once", kv.key,
                       kv.offset)
        seen.add(kv.key)
    names: set[str] = set()
    for t in walk.tensors:
        if t.name in names:
            walk.issue("duplicate-tensor", f"tensor name {t.name!r} appears more than once",
                       t.name)
        names.add(t.name)


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def _layout(view: GGUFView, walk: _Walk, stream: BinaryIO) -> GGUFView:
    """Alignment, range, overlap, contiguity and trailing-data checks on the tensor infos."""
    _duplicates(walk)
    alignment = _alignment(walk)
    data_start = _pad(walk.r.pos, alignment)
    size = view.file_size
    data_len = None if size is None else size - data_start
    if data_len is not None and data_len < 0 and view.tensors:
        walk.issue("truncated", f"the data section would start at {data_start}, past the end "
                   f"of the {size}-byte file")
    expected, end = 0, 0
    for t in sorted(view.tensors, key=lambda t: t.offset):
        if t.offset % alignment:
            walk.issue("misaligned", f"tensor {t.name!r} offset {t.offset} is not a multiple "
                       f"of the alignment {alignment}", t.name, data_start + t.offset)
        if t.nbytes is None:
            continue
        if data_len is not None and t.offset + t.nbytes > max(data_len, 0):
            walk.issue("out-of-range", f"tensor {t.name!r} [{t.offset}, {t.offset + t.nbytes})"
                       f" ends past the {max(data_len, 0)}-byte data section", t.name,
                       data_start + t.offset)
        if t.offset < end:
            walk.issue("overlap", f"tensor {t.name!r} at data offset {t.offset} overlaps the "
                       f"previous tensor, which ends at {end}", t.name, data_start + t.offset)
        elif t.offset > expected:
            walk.issue("gap", f"{t.offset - expected} bytes before tensor {t.name!r} belong to "
                       "no tensor (ggml expects tensors back to back)", t.name,
                       data_start + expected)
        end = max(end, t.offset + t.nbytes)
        expected = max(expected, _pad(t.offset + t.nbytes, alignment))
    trailing_offset, trailing_head = None, b""
    if size is not None and view.tensors and size > data_start + expected:
        trailing_offset = data_start + expected
        walk.issue("trailing", f"{size - trailing_offset} bytes follow the last tensor",
                   offset=trailing_offset)
        trailing_head = _sample(stream, trailing_offset, walk.limits.sample_bytes)
    return _with(view, walk.issues, alignment=alignment, data_start=data_start,
                 header_complete=True, trailing_offset=trailing_offset,
                 trailing_head=trailing_head)


def _sample(stream: BinaryIO, offset: int, n: int) -> bytes:
    try:
        stream.seek(offset)
        return stream.read(n)
    except (OSError, ValueError):
        return b""


# ---------------------------------------------------------------------------- legacy GGML

#: Magic as stored on disk -> (format name, versions that exist, versioned?).
GGML_MAGICS: dict[bytes, tuple[str, frozenset[int], bool]] = {
    b"lmgg": ("ggml", frozenset(), False),
    b"fmgg": ("ggmf", frozenset({1}), True),
    b"tjgg": ("ggjt", frozenset({1, 2, 3}), True),
    b"algg": ("ggla", frozenset({1}), True),
}


@dataclass(frozen=True)
class GGMLView:
    kind: str = ""
    version: int | None = None
    hparams: tuple[int, ...] = ()
    issues: tuple[Issue, ...] = field(default=())


def parse_ggml(head: bytes, size: int | None) -> GGMLView:
    """Check the magic, version and the first hyperparameters of a legacy GGML file."""
    magic = head[:4]
    if magic not in GGML_MAGICS:
        return GGMLView(issues=(Issue("magic", "not a legacy GGML magic"),))
    kind, versions, versioned = GGML_MAGICS[magic]
    pos, version, issues = 4, None, []
    if versioned:
        if len(head) < 8:
            return GGMLView(kind, issues=(Issue("truncated", "file ends inside the version"),))
        version = int.from_bytes(head[4:8], "little")
        pos = 8
        if version not in versions:
            issues.append(Issue("ggml-version", f"{kind} version {version} does not exist "
                                f"(known: {sorted(versions)})", offset=4))
    count = 2 if kind == "ggla" else 6
    if len(head) < pos + 4 * count:
        issues.append(Issue("truncated", f"file of {size if size is not None else len(head)} "
                            "bytes ends inside the hyperparameters", offset=pos))
        return GGMLView(kind, version, (), tuple(issues))
    hparams = struct.unpack(f"<{count}i", head[pos:pos + 4 * count])
    for index, value in enumerate(hparams):
        low = 0 if index == 5 else 1  # the sixth is the file type in GPT-2 style files
        if not low <= value < 1 << 26:
            issues.append(Issue("ggml-hparams", f"hyperparameter {index} is {value}, outside "
                                f"{low} .. 2^26", offset=pos + 4 * index))
    return GGMLView(kind, version, hparams, tuple(issues))
