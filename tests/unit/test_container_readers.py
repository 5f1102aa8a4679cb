"""Container readers follow their loaders: miniz's central directory, joblib's zfile and
.lzma headers, torch's legacy tar record layout. Files come from the real writers (zipfile,
torch.save, joblib, lzma); only the quirks no writer produces are patched in by hand."""

from __future__ import annotations

import io
import lzma
import pickle
import pickletools
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from regression.samples import Reduce

from hexscan.discover.streams import ZlibReader, skip_zfile_header
from hexscan.discover.zipdirs import miniz_eocd, miniz_infos
from hexscan.formats.probes import looks_like_lzma_alone, looks_like_zlib
from hexscan.parsers.torch_legacy import ELEMENT_SIZE, LostTrack, RecordPickle, walk_records


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_miniz_view_of_a_plain_zip_equals_zipfiles() -> None:
    data = _zip({"a/data.pkl": b"x" * 10, "a/version": b"3\n"}, zipfile.ZIP_DEFLATED)
    mine = miniz_infos(io.BytesIO(data))
    assert mine is not None
    theirs = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert [(i.filename, i.header_offset, i.compress_size, i.file_size, i.compress_type)
            for i in mine] == [(i.filename, i.header_offset, i.compress_size, i.file_size,
                                i.compress_type) for i in theirs]


def test_a_signature_in_the_last_bytes_breaks_zipfile_but_not_miniz() -> None:
    data = _zip({"a/data.pkl": b"payload"}) + b"PK\x05\x06"
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data))
    infos = miniz_infos(io.BytesIO(data))
    assert infos is not None and [i.filename for i in infos] == ["a/data.pkl"]


def test_miniz_reads_the_directory_at_the_stored_offset() -> None:
    """Two directories: zipfile's sits before the EOCD, miniz's where the EOCD points."""
    from differential.families.containers_zip import two_directories

    first = _zip({"archive/data.pkl": b"A" * 300})
    second = _zip({"archive/data.pkl": b"B" * 10})
    both = two_directories(first, second)
    by_zipfile = zipfile.ZipFile(io.BytesIO(both)).infolist()
    by_miniz = miniz_infos(io.BytesIO(both))
    assert by_miniz is not None
    assert by_zipfile[0].compress_size == 10 and by_miniz[0].compress_size == 300


def test_eocd_search_and_rejections() -> None:
    data = _zip({"x": b"1"})
    assert miniz_eocd(io.BytesIO(data), len(data)) == len(data) - 22
    assert miniz_infos(io.BytesIO(b"PK\x03\x04 not a zip at all, no end record")) is None
    cut = bytearray(data)
    struct.pack_into("<L", cut, len(cut) - 6, len(cut) + 100)  # directory past the end
    assert miniz_infos(io.BytesIO(bytes(cut))) is None
    # Prepended data: zipfile shifts the offsets, miniz does not and reads nothing there.
    assert not miniz_infos(io.BytesIO(b"JUNK" * 100 + data))


def test_joblib_zfile_header_is_skipped_like_read_zfile() -> None:
    from joblib.numpy_pickle_compat import read_zfile, write_zfile

    for extra_space in (False, True):
        out = io.BytesIO()
        write_zfile(out, b"hello pickle", 3)
        data = out.getvalue()
        if extra_space:
            data = data[:21] + b" " + data[21:]
        assert looks_like_zlib(data)
        reader = ZlibReader(skip_zfile_header(io.BytesIO(data)))  # type: ignore[arg-type]
        assert reader.read() == read_zfile(io.BytesIO(data)) == b"hello pickle"


@pytest.mark.parametrize("dict_size", [0, 256, 1024, 3 << 9, 4096, 1 << 20, 3 << 29, 1 << 31,
                                       3 << 30])
def test_lzma_alone_dictionary_sizes_the_loader_accepts(dict_size: int) -> None:
    packed = lzma.compress(b"data" * 10, format=lzma.FORMAT_ALONE)
    patched = packed[:1] + dict_size.to_bytes(4, "little") + packed[5:]
    assert looks_like_lzma_alone(patched)
    assert lzma.decompress(patched) == b"data" * 10  # liblzma accepts it too


@pytest.mark.parametrize("dict_size", [0x1001, 0x12345600, 5000])
def test_lzma_alone_dictionary_sizes_the_loader_rejects(dict_size: int) -> None:
    packed = lzma.compress(b"data" * 10, format=lzma.FORMAT_ALONE)
    patched = packed[:1] + dict_size.to_bytes(4, "little") + packed[5:]
    assert not looks_like_lzma_alone(patched)
    with pytest.raises(lzma.LZMAError):
        lzma.decompress(patched)


def test_element_sizes_match_torch() -> None:
    torch = pytest.importorskip("torch")
    from torch._utils import _element_size

    for name, size in ELEMENT_SIZE.items():
        module, cls = name.rsplit(".", 1)
        owner = torch.cuda if module == "torch.cuda" else torch
        assert _element_size(getattr(owner, cls)._dtype) == size, name


def test_legacy_storages_records_skip_raw_bytes() -> None:
    pytest.importorskip("torch")
    import tarfile

    from differential.families.containers_torch_legacy import legacy_tar

    data = legacy_tar(None, None, 2, decoy=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        storages = tar.extractfile("storages").read()  # type: ignore[union-attr]
        tensors = tar.extractfile("tensors").read()  # type: ignore[union-attr]
    found = list(walk_records(io.BytesIO(storages), "storages"))
    assert all(isinstance(r, RecordPickle) for r in found) and len(found) == 5
    for record in found:
        assert isinstance(record, RecordPickle)
        assert b"system" not in record.data  # the decoy raw bytes are not a record
        ops = [op.name for op, _, _ in pickletools.genops(record.data)]
        assert ops[-1] == "STOP" and "REDUCE" not in ops
    assert len(list(walk_records(io.BytesIO(tensors), "tensors"))) == 3


def test_legacy_layout_lost_is_reported() -> None:
    bad = pickle.dumps(1, 2) + pickle.dumps((0, "cpu", "not a type"), 2) + b"\x00" * 16
    found = list(walk_records(io.BytesIO(bad), "storages"))
    assert isinstance(found[-1], LostTrack) and "storage type" in found[-1].reason


def test_zlib_reader_stops_at_the_end_of_the_stream() -> None:
    data = zlib.compress(b"abc") + b"trailing"
    assert ZlibReader(io.BytesIO(data)).read() == b"abc"  # type: ignore[arg-type]


def _load_from_bytes_chain(levels: int) -> bytes:
    """A pickle whose _load_from_bytes argument is a torch zip whose pickle does the same,
    ``levels`` deep, with a payload at the bottom (never loaded here)."""
    torch = pytest.importorskip("torch")
    import os

    from torch.storage import _load_from_bytes

    obj: object = Reduce(os.system, "echo owned")
    for _ in range(levels):
        out = io.BytesIO()
        torch.save({"m": obj}, out)
        obj = Reduce(_load_from_bytes, out.getvalue())
    return pickle.dumps({"w": obj}, 4)


def test_embedded_checkpoints_are_walked_within_the_depth_bound(tmp_path: Path) -> None:
    from fixtures.models import ids, scan_path

    from hexscan.model.severity import Severity

    shallow = tmp_path / "shallow.pkl"
    shallow.write_bytes(_load_from_bytes_chain(2))
    found = scan_path(shallow)
    assert "HEX-PKL-001" in ids(found.findings, Severity.HIGH)
    deep = tmp_path / "deep.pkl"
    deep.write_bytes(_load_from_bytes_chain(2))
    bounded = scan_path(deep, max_depth=2)
    assert any(e.kind == "limit" and "max_depth" in e.message for e in bounded.errors)
