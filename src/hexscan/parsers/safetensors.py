"""A header-only safetensors reader: 8-byte length, JSON header, and the layout it describes.

Layout: ``u64 N`` (little endian), ``N`` bytes of UTF-8 JSON ``{name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {str: str}}``, then the data section, whose
offsets are relative to ``8 + N``. The reader reads ``8 + N`` bytes (bounded) and, to say
what a gap or trailing region holds, at most ``sample`` bytes at its start; never the tensors.

It records facts (``Issue`` kinds below), never severities: judging is the scanner's job.
It never raises on any input, only on I/O errors of the underlying stream.

Issue kinds: ``truncated``, ``header-length``, ``header-too-large``, ``header-not-analysed``,
``encoding``, ``json``, ``not-object``, ``duplicate-key``, ``entry``, ``dtype``, ``shape``,
``offsets``, ``size-mismatch``, ``overlap``, ``out-of-range``, ``gap``, ``trailing``,
``metadata-type``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hexscan.discover.streams import read_up_to
from hexscan.parsers.issues import Issue, record

#: The bound the safetensors library puts on N (``MAX_HEADER_SIZE``).
FORMAT_MAX_HEADER = 100_000_000

#: Bits per element of every dtype the format defines (safetensors 0.8).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

_ENTRY_FIELDS = frozenset({"dtype", "shape", "data_offsets"})
_U64 = 1 << 64


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True, slots=True)
class Region:
    """Bytes no tensor accounts for: absolute file offsets and the first bytes."""

    start: int
    end: int
    head: bytes


@dataclass(frozen=True)
class SafetensorsView:
    """What the header says, and what is wrong with it."""

    header_length: int | None = None
    file_size: int | None = None
    tensors: tuple[Tensor, ...] = ()
    metadata: tuple[tuple[str, Any], ...] = ()
    """Every ``(key, value)`` pair of every ``__metadata__`` object, duplicates included."""
    has_metadata: bool = False
    issues: tuple[Issue, ...] = ()
    gaps: tuple[Region, ...] = ()
    trailing: Region | None = None

    @property
    def data_start(self) -> int:
        return 8 + (self.header_length or 0)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its list of pairs, so duplicate keys survive parsing."""


@dataclass
class _State:
    issues: list[Issue] = field(default_factory=list)

    def add(self, kind: str, message: str, key: str = "", offset: int | None = None) -> None:
        record(self.issues, Issue(kind, message, key, offset))


def parse_safetensors(stream: BinaryIO, size: int | None, *,
                      max_header: int = 32 * 1024 * 1024, sample: int = 4096) -> SafetensorsView:
    """Read and check the header of the safetensors file in ``stream`` (at offset 0).

    ``size`` is the file size when known. Headers longer than ``max_header`` (the analysis
    bound, at most :data:`FORMAT_MAX_HEADER`) are not read.
    """
    st = _State()
    prefix = read_up_to(stream, 8)
    if len(prefix) < 8:
        st.add("truncated", f"file of {len(prefix)} bytes is shorter than the 8-byte length")
        return SafetensorsView(file_size=size, issues=tuple(st.issues))
    n = int.from_bytes(prefix, "little")
    view = SafetensorsView(header_length=n, file_size=size)
    if n > FORMAT_MAX_HEADER:
        st.add("header-too-large", f"header length {n} exceeds the format's bound of "
               f"{FORMAT_MAX_HEADER} bytes", offset=0)
    if size is not None and n > size - 8:
        st.add("header-length", f"header length {n} points past the end of the "
               f"{size}-byte file", offset=0)
    if n < 2:
        st.add("header-length", f"header length {n} cannot hold a JSON object", offset=0)
    if st.issues:
        return _done(view, st)
    if n > max_header:
        st.add("header-not-analysed", f"header of {n} bytes is larger than the {max_header} "
               "bytes hex analyses", offset=0)
        return _done(view, st)
    raw = read_up_to(stream, n)
    if len(raw) < n:
        st.add("truncated", f"file ends {n - len(raw)} bytes before the end of the header",
               offset=8 + len(raw))
        return _done(view, st)
    root = _decode(raw, st)
    if root is None:
        return _done(view, st)
    tensors, metadata, has_meta = _entries(root, st)
    view = SafetensorsView(n, size, tuple(tensors), tuple(metadata), has_meta)
    gaps, trailing = _layout(view, st, stream, sample)
    return SafetensorsView(n, size, view.tensors, view.metadata, has_meta, tuple(st.issues),
                           tuple(gaps), trailing)


def _done(view: SafetensorsView, st: _State) -> SafetensorsView:
    return SafetensorsView(view.header_length, view.file_size, issues=tuple(st.issues))


def _decode(raw: bytes, st: _State) -> _Pairs | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        st.add("encoding", f"header is not UTF-8 (byte {exc.start})", offset=8 + exc.start)
        return None
    try:
        root = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        st.add("json", f"header is not valid JSON: {str(exc)[:200]}", offset=8)
        return None
    if not isinstance(root, _Pairs):
        st.add("not-object", f"header is a JSON {type(root).__name__}, not an object", offset=8)
        return None
    return root


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _entries(root: _Pairs, st: _State) -> tuple[list[Tensor], list[tuple[str, Any]], bool]:
    tensors: list[Tensor] = []
    metadata: list[tuple[str, Any]] = []
    seen: set[str] = set()
    has_meta = False
    for name, value in root:
        if name in seen:
            st.add("duplicate-key", f"key {name[:120]!r} appears more than once in the header",
                   key=name[:200])
        seen.add(name)
        if name == "__metadata__":
            has_meta = True
            metadata.extend(_metadata(value, st))
            continue
        tensor = _tensor(name, value, st)
        if tensor is not None:
            tensors.append(tensor)
    return tensors, metadata, has_meta


def _metadata(value: Any, st: _State) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, _Pairs):
        st.add("metadata-type", f"__metadata__ is a JSON {_json_type(value)}, not an object",
               key="__metadata__")
        return [("__metadata__", _plain(value))]
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for key, item in value:
        if key in seen:
            st.add("duplicate-key", f"metadata key {key[:120]!r} appears more than once",
                   key=f"__metadata__.{key[:200]}")
        seen.add(key)
        if not isinstance(item, str):
            st.add("metadata-type", f"metadata value {key[:120]!r} is a JSON "
                   f"{_json_type(item)}, not a string", key=f"__metadata__.{key[:200]}")
        out.append((key, _plain(item)))
    return out


def _plain(value: Any, depth: int = 0) -> Any:
    """Turn parsed pairs back into ordinary JSON values (dicts keep the last duplicate)."""
    if depth > 64:
        return None
    if isinstance(value, _Pairs):
        return {k: _plain(v, depth + 1) for k, v in value}
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, _Pairs):
        return "object"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {str: "string", int: "number", float: "number", list: "array"}.get(
        type(value), type(value).__name__)


def _tensor(name: str, value: Any, st: _State) -> Tensor | None:
    label = name[:120]
    if not isinstance(value, _Pairs):
        st.add("entry", f"tensor {label!r} is a JSON {_json_type(value)}, not an object",
               key=name[:200])
        return None
    fields: dict[str, Any] = {}
    for key, item in value:
        if key in fields:
            st.add("duplicate-key", f"tensor {label!r} has field {key[:40]!r} twice",
                   key=f"{name[:200]}.{key[:40]}")
        fields[key] = item
    missing = _ENTRY_FIELDS - fields.keys()
    if missing:
        st.add("entry", f"tensor {label!r} lacks {', '.join(sorted(missing))}", key=name[:200])
        return None
    dtype, shape, offsets = fields["dtype"], fields["shape"], fields["data_offsets"]
    ok = True
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        st.add("dtype", f"tensor {label!r} has unknown dtype {str(dtype)[:40]!r}",
               key=name[:200])
        ok = False
    if not _int_list(shape, None):
        st.add("shape", f"tensor {label!r} has shape {str(shape)[:80]}, not a list of "
               "non-negative integers", key=name[:200])
        ok = False
    if not _int_list(offsets, 2) or offsets[0] > offsets[1]:
        st.add("offsets", f"tensor {label!r} has data_offsets {str(offsets)[:80]}, not "
               "[begin, end] with 0 <= begin <= end", key=name[:200])
        ok = False
    if not ok:
        return None
    return Tensor(name, dtype, tuple(shape), offsets[0], offsets[1])


def _int_list(value: Any, length: int | None) -> bool:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        return False
    return all(type(v) is int and 0 <= v < _U64 for v in value)


def _layout(view: SafetensorsView, st: _State, stream: BinaryIO,
            sample: int) -> tuple[list[Region], Region | None]:
    """Size, overlap, range, gap and trailing checks over the tensors' data offsets."""
    data_len = None if view.file_size is None else view.file_size - view.data_start
    for t in view.tensors:
        elements = _product(t.shape)
        bits = elements * DTYPE_BITS[t.dtype]
        if bits % 8 or bits // 8 != t.end - t.begin:
            st.add("size-mismatch", f"tensor {t.name[:120]!r}: {t.dtype} x {list(t.shape)[:8]} "
                   f"needs {bits / 8:g} bytes but data_offsets span {t.end - t.begin}",
                   key=t.name[:200], offset=view.data_start + t.begin)
        if data_len is not None and t.end > data_len:
            st.add("out-of-range", f"tensor {t.name[:120]!r} ends at data offset {t.end}, past "
                   f"the {data_len}-byte data section", key=t.name[:200],
                   offset=view.data_start + t.begin)
    cursor, gaps = 0, []
    ordered = sorted(view.tensors, key=lambda t: (t.begin, t.end))
    previous: Tensor | None = None
    for t in ordered:
        if t.begin < cursor and t.end > t.begin and previous is not None:
            st.add("overlap", f"tensor {t.name[:120]!r} [{t.begin}, {t.end}) overlaps "
                   f"{previous.name[:120]!r}", key=f"{previous.name[:100]}|{t.name[:100]}",
                   offset=view.data_start + t.begin)
        elif t.begin > cursor:
            st.add("gap", f"{t.begin - cursor} bytes at data offsets [{cursor}, {t.begin}) "
                   "belong to no tensor", key=f"{cursor}", offset=view.data_start + cursor)
            gaps.append(_region(stream, view.data_start + cursor, view.data_start + t.begin,
                                sample))
        if t.end >= cursor:
            cursor, previous = t.end, t
    trailing = None
    if data_len is not None and data_len > cursor:
        st.add("trailing", f"{data_len - cursor} bytes follow the last tensor",
               offset=view.data_start + cursor)
        trailing = _region(stream, view.data_start + cursor, view.data_start + data_len, sample)
    return gaps[:16], trailing


def _product(shape: tuple[int, ...]) -> int:
    """Number of elements, saturated just above 2**64 (a hostile shape stays cheap)."""
    if 0 in shape:
        return 0
    elements = 1
    for dim in shape:
        elements = min(elements * dim, _U64)
    return elements


def _region(stream: BinaryIO, start: int, end: int, sample: int) -> Region:
    head = b""
    try:
        stream.seek(start)
        head = read_up_to(stream, min(sample, end - start))
    except (OSError, ValueError):
        head = b""
    return Region(start, end, head)
