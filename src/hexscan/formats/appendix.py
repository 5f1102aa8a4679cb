"""Archives that a format documents as appended to its files (TFLite associated files).

A zip appended to a model is normally a polyglot (HEX-ARC-009): loaders read the model
from the start and zip readers read the archive from the end. TFLite is the exception:
tflite_support's MetadataPopulator writes the model's associated files (label maps,
vocabularies, SentencePiece models) as a zip appended to the flatbuffer, and lists them in
the model's metadata. The layout is accepted as that documented appendix only on evidence:

* the flatbuffer parses, and its metadata declares associated files;
* every zip member is one of the declared names (no extra, hidden member);
* the archive starts after the last byte of the model's buffer data (no overlap);
* no member holds code, a serialised object or another archive (labels are text).

Anything else keeps the polyglot finding. The members are scanned either way.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.identify import identify
from hexscan.formats.kinds import CODE_CAPABLE, CONTAINERS, DESERIALISES_CODE, Format
from hexscan.parsers.tflite import parse_tflite
from hexscan.scanners._io import random_access

#: Members whose content would make the appendix more than data files.
_NOT_DATA = CODE_CAPABLE | CONTAINERS | DESERIALISES_CODE
#: How many leading bytes of each member are identified.
_MEMBER_HEAD = 4096
#: More members than this is no label file set.
_MAX_MEMBERS = 256


@dataclass(frozen=True, slots=True)
class Appendix:
    """A documented appended archive: which format declares it and its member names."""

    format: Format
    kind: str
    members: tuple[str, ...]
    zip_start: int


def declared_appendix(art: Artifact, fmt: Format, limits: ResourceLimits) -> Appendix | None:
    """The appendix when the zip at the end of ``art`` is the one its format declares."""
    if fmt is not Format.TFLITE:
        return None
    try:
        with random_access(art, limits) as source:
            view = parse_tflite(source)
        declared = set(view.associated_files)
        if not declared:
            return None
        with art.open() as stream, zipfile.ZipFile(stream) as zf:
            infos = zf.infolist()
            if not infos or len(infos) > _MAX_MEMBERS:
                return None
            names = [i.filename for i in infos]
            start = min(i.header_offset for i in infos)
            unique = len(set(names)) == len(names)
            if not (set(names) <= declared and unique and start >= view.buffers_end):
                return None
            for info in infos:
                with zf.open(info) as member:
                    head = member.read(_MEMBER_HEAD)
                if identify(info.filename, head, info.file_size).format in _NOT_DATA:
                    return None
    except (ParseError, LimitExceeded, zipfile.BadZipFile, OSError, ValueError, EOFError,
            NotImplementedError, RuntimeError):
        return None
    return Appendix(Format.TFLITE, "tflite-associated-files", tuple(names), start)
