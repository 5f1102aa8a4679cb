"""The central directory PyTorch's zip reader (miniz) picks, which need not be zipfile's.

``torch.load`` reads zips with miniz (``PyTorchStreamReader``); numpy, joblib and Keras use
Python's ``zipfile``. The two locate the archive differently:

* the end record (EOCD): zipfile takes the last ``PK\\x05\\x06`` in the final 64 KiB + 22 bytes
  and fails when that one is cut short; miniz scans back from the end for the last signature
  with a whole record (22 bytes) after it, so junk holding a signature in the last 21 bytes
  breaks zipfile but not torch;
* the central directory: zipfile puts it right before the EOCD (``EOCD offset - size``) and
  shifts every offset by the difference to the stored offset (data prepended to the zip);
  miniz reads it at the stored offset, as is. A zip can therefore hold two central
  directories, one for each reader.

This module reads the directory the miniz way (``mz_zip_reader_read_central_dir``), so the
walk can scan the members torch would load when they differ from zipfile's.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

from hexscan.discover.streams import read_up_to

_EOCD_SIG = b"PK\x05\x06"
_EOCD = struct.Struct("<4s4H2LH")
_LOCATOR_SIG = b"PK\x06\x07"
_LOCATOR = struct.Struct("<4sLQL")
_EOCD64_SIG = b"PK\x06\x06"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_SIG = b"PK\x01\x02"
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL_SIZE = 30
_LOCAL_SIG = b"PK\x03\x04"
#: miniz gives up searching for the EOCD this far from the end (``MZ_UINT16_MAX + 22``).
_SEARCH = 0xFFFF + _EOCD.size
#: The most central directory bytes read (miniz holds it all in memory too).
MAX_DIRECTORY = 256 * 1024 * 1024
_MAX32 = 0xFFFFFFFF


def _size_of(stream: BinaryIO) -> int:
    return stream.seek(0, 2)


def _read_at(stream: BinaryIO, offset: int, n: int) -> bytes:
    stream.seek(offset)
    return read_up_to(stream, n)


def miniz_eocd(stream: BinaryIO, size: int) -> int | None:
    """Offset of the end record miniz uses: the last signature with 22 bytes after it."""
    start = max(0, size - _SEARCH)
    tail = _read_at(stream, start, size - start)
    pos = tail.rfind(_EOCD_SIG, 0, max(0, len(tail) - _EOCD.size + len(_EOCD_SIG)))
    return start + pos if pos >= 0 else None


def miniz_infos(stream: BinaryIO, size: int | None = None) -> list[zipfile.ZipInfo] | None:
    """The members miniz lists, as ZipInfo with absolute offsets; None if miniz rejects it."""
    size = _size_of(stream) if size is None else size
    if size < _EOCD.size:
        return None
    eocd_at = miniz_eocd(stream, size)
    if eocd_at is None:
        return None
    directory = _directory_span(stream, eocd_at, size)
    if directory is None:
        return None
    offset, length, total = directory
    if length > MAX_DIRECTORY or length < total * _CENTRAL.size or offset + length > size:
        return None
    infos = _entries(_read_at(stream, offset, length), total, size)
    if infos is None:
        return None
    # miniz lists an entry whose local header is missing but fails to read it (and so does
    # torch.load): only readable entries are members.
    return [info for info in infos if _read_at(stream, info.header_offset, 4) == _LOCAL_SIG]


def _directory_span(stream: BinaryIO, eocd_at: int, size: int) -> tuple[int, int, int] | None:
    """(offset, size, entries) of the central directory from the EOCD or its zip64 record."""
    (_, disk, cd_disk, on_disk, total, cd_size, cd_offset, _) = _EOCD.unpack(
        _read_at(stream, eocd_at, _EOCD.size))
    if eocd_at >= _LOCATOR.size + _EOCD64.size:
        locator = _read_at(stream, eocd_at - _LOCATOR.size, _LOCATOR.size)
        sig, _, record_at, _ = _LOCATOR.unpack(locator)
        if sig == _LOCATOR_SIG:
            if record_at > size - _EOCD64.size:
                return None
            record = _EOCD64.unpack(_read_at(stream, record_at, _EOCD64.size))
            if record[0] == _EOCD64_SIG:
                disk, cd_disk, on_disk, total, cd_size, cd_offset = record[4:10]
    if total != on_disk or ((disk | cd_disk) != 0 and (disk, cd_disk) != (1, 1)):
        return None
    return cd_offset, cd_size, total


def _entries(data: bytes, total: int, size: int) -> list[zipfile.ZipInfo] | None:
    infos: list[zipfile.ZipInfo] = []
    pos = 0
    for _ in range(total):
        if pos + _CENTRAL.size > len(data) or data[pos:pos + 4] != _CENTRAL_SIG:
            return None
        fields = _CENTRAL.unpack_from(data, pos)
        (flags, method, crc, packed, unpacked, name_len, extra_len, comment_len,
         external, local) = (fields[3], fields[4], fields[7], fields[8], fields[9], fields[10],
                             fields[11], fields[12], fields[15], fields[16])
        end = pos + _CENTRAL.size + name_len + extra_len + comment_len
        if end > len(data):
            return None
        name_at = pos + _CENTRAL.size
        extra = data[name_at + name_len:name_at + name_len + extra_len]
        packed, unpacked, local = _zip64_sizes(extra, packed, unpacked, local)
        if local + _LOCAL_SIZE + packed > size:
            return None
        raw_name = data[name_at:name_at + name_len]
        info = zipfile.ZipInfo(raw_name.decode("utf-8" if flags & 0x800 else "cp437",
                                                "replace"))
        info.flag_bits, info.compress_type, info.CRC = flags, method, crc
        info.compress_size, info.file_size, info.header_offset = packed, unpacked, local
        info.external_attr = external
        infos.append(info)
        pos = end
    return infos


def _zip64_sizes(extra: bytes, packed: int, unpacked: int, local: int) -> tuple[int, int, int]:
    """The zip64 extra field (id 1) replaces the 32-bit fields that are all ones, in order."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + length]
        if tag == 1:
            values = [int.from_bytes(body[i:i + 8], "little") for i in range(0, len(body) - 7, 8)]
            if unpacked == _MAX32 and values:
                unpacked = values.pop(0)
            if packed == _MAX32 and values:
                packed = values.pop(0)
            if local == _MAX32 and values:
                local = values.pop(0)
            break
        pos += 4 + length
    return packed, unpacked, local
