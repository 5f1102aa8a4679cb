"""TFLite model view: operator codes, operators used, buffers (schema.fbs field ids).

Model: 0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers, 6 metadata.
OperatorCode: 0 deprecated_builtin_code (int8), 1 custom_code, 2 version, 3 builtin_code.
SubGraph: 0 tensors, 3 operators, 4 name. Operator: 0 opcode_index.
Tensor: 2 buffer. Buffer: 0 data (ubyte vector), 1 offset (u64), 2 size (u64).
Metadata: 0 name, 1 buffer. The buffer of the entry named ``TFLITE_METADATA`` holds a
ModelMetadata flatbuffer (identifier ``M001``, tflite_support's metadata_schema.fbs), whose
associated files (labels, vocabularies) the metadata populator appends to the model as a zip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hexscan.errors import ParseError
from hexscan.parsers.flatbuf import ByteSource, FlatBuffer, Table
from hexscan.parsers.tflite_metadata import associated_files

#: BuiltinOperator.CUSTOM; deprecated codes >= 127 defer to the int32 builtin_code field.
CUSTOM = 32
_PLACEHOLDER = 127
IDENTIFIER = b"TFL3"


@dataclass(frozen=True, slots=True)
class OpCode:
    index: int
    builtin: int
    custom: str | None
    uses: int = 0


@dataclass(frozen=True, slots=True)
class BufferRef:
    """A buffer: inline data span, or (offset, size) relative to the file start."""

    index: int
    data_pos: int
    data_len: int
    offset: int
    size: int


@dataclass
class TFLiteView:
    version: int
    opcodes: list[OpCode] = field(default_factory=list)
    buffers: list[BufferRef] = field(default_factory=list)
    bad_buffer_refs: list[tuple[str, int]] = field(default_factory=list)
    bad_opcode_refs: list[int] = field(default_factory=list)
    out_of_bounds: list[BufferRef] = field(default_factory=list)
    description: str = ""
    associated_files: tuple[str, ...] = ()

    @property
    def buffers_end(self) -> int:
        """Where the last inline buffer data ends: the model's bytes reach at least this far."""
        return max((b.data_pos + b.data_len for b in self.buffers if b.data_len), default=0)


def parse_tflite(source: ByteSource) -> TFLiteView:
    """Read the model's structure; raise ParseError when it is not a valid flatbuffer."""
    if source.size < 8:
        raise ParseError("too short for a TFLite flatbuffer")
    fb = FlatBuffer(source)
    if fb.identifier() != IDENTIFIER:
        raise ParseError("no TFL3 file identifier")
    model = fb.root()
    desc = model.string(3) or b""
    view = TFLiteView(version=model.scalar(0, "u32"),
                      description=desc.decode("utf-8", "replace"))
    codes = [_opcode(i, t) for i, t in enumerate(model.tables(1))]
    uses = [0] * len(codes)
    buffers = [_buffer(i, t) for i, t in enumerate(model.tables(4))]
    view.buffers = buffers
    for sub_index, sub in enumerate(model.tables(2)):
        for op in sub.tables(3):
            index = op.scalar(0, "u32")
            if index >= len(codes):
                view.bad_opcode_refs.append(index)
            else:
                uses[index] += 1
        for t_index, tensor in enumerate(sub.tables(0)):
            buf = tensor.scalar(2, "u32")
            if buf >= max(len(buffers), 1) and buf != 0:
                view.bad_buffer_refs.append((f"subgraph {sub_index} tensor {t_index}", buf))
    view.opcodes = [OpCode(c.index, c.builtin, c.custom, uses[c.index]) for c in codes]
    view.out_of_bounds = [b for b in buffers if _outside(b, source.size)]
    view.associated_files = associated_files(
        source, model, [(b.data_pos, b.data_len) for b in buffers])
    return view


def _opcode(index: int, table: Table) -> OpCode:
    deprecated = table.i8(0)
    builtin = table.scalar(3, "i32")
    code = builtin if deprecated == _PLACEHOLDER or builtin > deprecated else deprecated
    custom = table.string(1, 256)
    return OpCode(index, code, custom.decode("utf-8", "replace") if custom is not None else None)


def _buffer(index: int, table: Table) -> BufferRef:
    span = table.vector_span(0, 1)
    pos, length = span if span else (0, 0)
    return BufferRef(index, pos, length, table.scalar(1, "u64"), table.scalar(2, "u64"))


def _outside(buf: BufferRef, size: int) -> bool:
    """offset 0/1 means 'no external data' in the schema; anything else must fit."""
    return buf.offset > 1 and buf.offset + buf.size > size
