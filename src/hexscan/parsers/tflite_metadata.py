"""TFLite model metadata: the associated files a model declares (labels, vocabularies).

tflite_support's MetadataPopulator stores a ModelMetadata flatbuffer (file identifier
``M001``, ``metadata_schema.fbs``) in the model buffer named by the ``TFLITE_METADATA``
entry of ``Model.metadata``, and appends the associated files it lists to the model file
as a zip archive. Knowing the declared names lets the pipeline tell that documented layout
from an arbitrary archive appended to a model.

Field ids (unions take two slots, type then value):
ModelMetadata: 3 subgraph_metadata, 6 associated_files.
SubGraphMetadata: 2 input_tensor_metadata, 3 output_tensor_metadata, 4 associated_files,
5 input_process_units, 6 output_process_units.
TensorMetadata: 4 process_units, 6 associated_files. AssociatedFile: 0 name.
ProcessUnit: 0 options_type, 1 options. BertTokenizerOptions (4): 0 vocab_file;
SentencePieceTokenizerOptions (5): 0 sentencePiece_model, 1 vocab_file;
RegexTokenizerOptions (6): 1 vocab_file.
"""

from __future__ import annotations

from collections.abc import Sequence

from hexscan.errors import ParseError
from hexscan.parsers.flatbuf import ByteSource, FlatBuffer, Table

METADATA_NAME = b"TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
#: ProcessUnitOptions union type -> the AssociatedFile vector slots of that options table.
_TOKENIZER_FILE_SLOTS = {4: (0,), 5: (0, 1), 6: (1,)}
#: The most associated file names collected (a real model lists a handful).
MAX_NAMES = 1000


class _Slice:
    """A window of a ByteSource: the nested metadata flatbuffer inside a model buffer."""

    def __init__(self, source: ByteSource, start: int, size: int) -> None:
        self._source, self._start, self.size = source, start, size

    def read(self, pos: int, n: int) -> bytes:
        n = max(0, min(n, self.size - pos))
        return self._source.read(self._start + pos, n)


def associated_files(source: ByteSource, model: Table,
                     spans: Sequence[tuple[int, int]]) -> tuple[str, ...]:
    """The associated file names the model's metadata declares, in order, without repeats.

    ``spans`` are the (position, length) of each model buffer's inline data.
    """
    names: list[str] = []
    for entry in model.tables(6):
        if entry.string(0, 64) != METADATA_NAME:
            continue
        index = entry.scalar(1, "u32")
        if index >= len(spans) or spans[index][1] < 8:
            continue
        meta_source = _Slice(source, *spans[index])
        fb = FlatBuffer(meta_source)
        if fb.identifier() != METADATA_IDENTIFIER:
            continue
        _collect_model(fb.root(), names)
    return tuple(dict.fromkeys(names))


def _collect_model(meta: Table, names: list[str]) -> None:
    _names(meta, 6, names)
    for sub in meta.tables(3):
        _names(sub, 4, names)
        for tensor in (*sub.tables(2), *sub.tables(3)):
            _names(tensor, 6, names)
            _process_units(tensor.tables(4), names)
        _process_units([*sub.tables(5), *sub.tables(6)], names)


def _process_units(units: list[Table], names: list[str]) -> None:
    for unit in units:
        slots = _TOKENIZER_FILE_SLOTS.get(unit.scalar(0, "u8"), ())
        options = unit.table(1) if slots else None
        for slot in slots:
            if options is not None:
                _names(options, slot, names)


def _names(table: Table, slot: int, names: list[str]) -> None:
    for item in table.tables(slot):
        if len(names) >= MAX_NAMES:
            raise ParseError(f"more than {MAX_NAMES} associated files declared")
        raw = item.string(0, 1024)
        if raw:
            names.append(raw.decode("utf-8", "replace"))
