"""ONNX TensorProto and SparseTensorProto -> records with payload sizes, never payloads.

TensorProto{1 dims, 2 data_type, 4..7,10,11 typed data, 8 name, 9 raw_data,
13 external_data, 14 data_location}; SparseTensorProto{1 values, 2 indices}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hexscan.parsers.pbstream import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    ProtoStream,
    StreamField,
    WireError,
    packed_varints,
    signed64,
    text,
)

#: Longest name kept, and longest external-data value kept.
_NAME_CAP = 4096
_VALUE_CAP = 64 * 1024
#: Most dims read per tensor (ONNX has no rank limit; a million dims is an attack).
_MAX_DIMS = 1024
#: Most external-data entries kept per tensor.
_MAX_EXTERNAL = 64

#: TensorProto.DataType -> bits per element (None: variable size, e.g. STRING).
DTYPE_BITS: dict[int, int | None] = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 8: None, 9: 8, 10: 16, 11: 64, 12: 32,
    13: 64, 14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8,
    25: 2, 26: 2, 27: 6, 28: 6,
}

#: Typed-data fields of TensorProto -> bytes per element when packed (varints: None).
_TYPED_FIELDS: dict[int, int | None] = {4: 4, 5: None, 6: None, 7: None, 10: 8, 11: None}


@dataclass(frozen=True, slots=True)
class OnnxTensor:
    """One TensorProto, with payload sizes instead of payloads.

    ``dims`` as stored (int64, possibly negative); ``raw_length`` the raw_data length or
    None; ``typed`` (field number, payload bytes or element count) of the typed fields;
    ``external`` the external_data key/value pairs; ``data_location`` 1 = EXTERNAL;
    ``raw_start`` where raw_data's bytes start in the file (for sampling weight bits).
    """

    scope: str
    name: str
    data_type: int
    dims: tuple[int, ...]
    dims_truncated: bool
    raw_length: int | None
    typed: tuple[tuple[int, int, bool], ...]
    external: tuple[tuple[str, str], ...]
    data_location: int
    offset: int
    raw_start: int | None = None


def rescoped(t: OnnxTensor, scope: str) -> OnnxTensor:
    """The same tensor under another scope."""
    return OnnxTensor(scope, t.name, t.data_type, t.dims, t.dims_truncated, t.raw_length,
                      t.typed, t.external, t.data_location, t.offset, t.raw_start)


def _string(ps: ProtoStream, f: StreamField, cap: int = _NAME_CAP) -> str:
    data, cut = ps.read_capped(f, cap)
    return text(data) + ("..." if cut else "")


def sparse(ps: ProtoStream, end: int, scope: str) -> Iterator[OnnxTensor]:
    for f in ps.fields(end):
        if f.number in (1, 2) and f.wire_type == LEN:
            yield tensor(ps, f, f"{scope}.sparse.{'values' if f.number == 1 else 'indices'}")


def tensor(ps: ProtoStream, tf: StreamField, scope: str) -> OnnxTensor:
    name = ""
    data_type = 0
    dims: list[int] = []
    dims_cut = False
    raw_length: int | None = None
    raw_start: int | None = None
    typed: dict[int, list[int]] = {}
    external: list[tuple[str, str]] = []
    location = 0
    for f in ps.fields(tf.end):
        n, w = f.number, f.wire_type
        if n == 1:
            dims_cut = _dims(ps, f, dims) or dims_cut
        elif n == 2 and w == VARINT:
            data_type = signed64(f.value)
        elif n == 8 and w == LEN:
            name = _string(ps, f)
        elif n == 9 and w == LEN:
            raw_length, raw_start = f.length, f.start  # skipped here, never read
        elif n == 13 and w == LEN and len(external) < _MAX_EXTERNAL:
            external.append(_entry(ps, f.end))
        elif n == 14 and w == VARINT:
            location = signed64(f.value)
        elif n in _TYPED_FIELDS:
            _typed(f, typed)
    return OnnxTensor(scope, name, data_type, tuple(dims), dims_cut, raw_length,
                      tuple((k, v[0], bool(v[1])) for k, v in sorted(typed.items())),
                      tuple(external), location, tf.start, raw_start)


def _dims(ps: ProtoStream, f: StreamField, dims: list[int]) -> bool:
    """Add dims from an unpacked varint or a packed run; True when some were dropped."""
    if f.wire_type == VARINT:
        if len(dims) < _MAX_DIMS:
            dims.append(signed64(f.value))
            return False
        return True
    if f.wire_type == LEN:
        data, cut = ps.read_capped(f, _MAX_DIMS * 10)
        try:
            values = packed_varints(data)
        except WireError:
            if not cut:
                raise
            values = []
        room = _MAX_DIMS - len(dims)
        dims.extend(signed64(v) for v in values[:room])
        return cut or len(values) > room
    raise WireError("dims has an unexpected wire type")


def _typed(f: StreamField, typed: dict[int, list[int]]) -> None:
    """Record the size of a typed-data field: [bytes or count, 1 if element count]."""
    slot = typed.setdefault(f.number, [0, 0])
    if f.wire_type == LEN:
        slot[0] += f.length
    elif f.wire_type in (VARINT, FIXED32, FIXED64):
        slot[0] += 1
        slot[1] = 1


def _entry(ps: ProtoStream, end: int) -> tuple[str, str]:
    key = value = ""
    for f in ps.fields(end):
        if f.number == 1 and f.wire_type == LEN:
            key = _string(ps, f, _NAME_CAP)
        elif f.number == 2 and f.wire_type == LEN:
            value = _string(ps, f, _VALUE_CAP)
    return key, value
