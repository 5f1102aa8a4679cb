"""Family: zips that ``torch.load`` (miniz) and Python's ``zipfile`` read differently.

Starting from real ``torch.save`` checkpoints, the variants give the file a second central
directory (miniz reads the directory at the stored offset, zipfile right before the end
record, shifting offsets), end it with junk holding an end-record signature that breaks
zipfile only, hide a fake end record in the comment, and make local headers lie (sizes,
names, the data-descriptor flag) while the central directory tells the truth. The benign
twins are the same constructions around benign checkpoints.
"""

from __future__ import annotations

import builtins
import io
import struct
import zipfile
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "containers-zip"

_EOCD = struct.Struct("<4s4H2LH")
_CENTRAL = struct.Struct("<4s6H3L5H2L")


def _torch_zip(obj: object) -> bytes:
    import torch

    out = io.BytesIO()
    torch.save(obj, out)
    return out.getvalue()


def _split(data: bytes) -> tuple[bytes, bytes, tuple[int, ...]]:
    """(local section, central directory, EOCD fields) of a zip without a comment."""
    eocd = _EOCD.unpack_from(data, len(data) - _EOCD.size)
    cd_size, cd_offset = eocd[5], eocd[6]
    return data[:cd_offset], data[cd_offset:cd_offset + cd_size], eocd


def _shift_directory(cd: bytes, delta: int) -> bytes:
    """The central directory with every local header offset moved by ``delta``."""
    out = bytearray(cd)
    pos = 0
    while pos < len(out):
        fields = _CENTRAL.unpack_from(out, pos)
        struct.pack_into("<L", out, pos + 42, fields[16] + delta)
        pos += _CENTRAL.size + fields[10] + fields[11] + fields[12]
    return bytes(out)


def _eocd(entries: int, cd_size: int, cd_offset: int, comment: bytes = b"") -> bytes:
    return _EOCD.pack(b"PK\x05\x06", 0, 0, entries, entries, cd_size, cd_offset,
                      len(comment)) + comment


def two_directories(for_miniz: bytes, for_zipfile: bytes) -> bytes:
    """One file, two archives: miniz lists ``for_miniz``, zipfile lists ``for_zipfile``.

    The EOCD stores the offset of the first directory (miniz reads it there) and the size of
    the second, which ends right before the EOCD (zipfile reads it there and adds the
    difference to every offset it lists).
    """
    m_local, m_cd, m_eocd = _split(for_miniz)
    z_local, z_cd, z_eocd = _split(for_zipfile)
    assert m_eocd[4] == z_eocd[4] and len(m_cd) == len(z_cd), "archives must match in shape"
    z_at = len(m_local) + len(m_cd)
    z_cd_at = z_at + len(z_local)
    concat = z_cd_at - len(m_local)
    body = m_local + m_cd + z_local + _shift_directory(z_cd, z_at - concat)
    return body + _eocd(m_eocd[4], len(z_cd), len(m_local))


_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR = struct.Struct("<4sLQL")


def two_zip64_records(for_miniz: bytes, for_zipfile: bytes) -> bytes:
    """Two zip64 end records: miniz follows the locator's offset to the first, zipfile reads
    the one right before the locator (and shifts offsets by what lies in between)."""
    m_local, m_cd, m_eocd = _split(for_miniz)
    z_local, z_cd, z_eocd = _split(for_zipfile)
    entries = m_eocd[4]
    assert entries == z_eocd[4]

    def record(cd_size: int, cd_offset: int) -> bytes:
        return _EOCD64.pack(b"PK\x06\x06", _EOCD64.size - 12, 45, 45, 0, 0, entries, entries,
                            cd_size, cd_offset)

    record_a = len(m_local) + len(m_cd)
    z_at = record_a + _EOCD64.size
    eocd_at = z_at + len(z_local) + len(z_cd) + _EOCD64.size + _LOCATOR.size
    concat = eocd_at - len(z_cd) - len(m_local) - (_EOCD64.size + _LOCATOR.size)
    body = m_local + m_cd + record(len(m_cd), len(m_local))
    body += z_local + _shift_directory(z_cd, z_at - concat) + record(len(z_cd), len(m_local))
    body += _LOCATOR.pack(b"PK\x06\x07", 0, record_a, 1)
    return body + _EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)


def _local_lies(data: bytes, how: str) -> bytes:
    """Rewrite every local header: zero sizes / CRC, or another name of the same length."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            at = info.header_offset
            if how == "sizes":
                struct.pack_into("<3L", out, at + 14, 0, 0, 0)
            elif how == "big_sizes":
                struct.pack_into("<3L", out, at + 14, 0xDEADBEEF, 0x7FFFFFFF, 0x7FFFFFFF)
            elif how == "names":
                name_len = struct.unpack_from("<H", out, at + 26)[0]
                out[at + 30:at + 30 + name_len] = b"x" * name_len
            elif how == "no_descriptor_flag":
                flags = struct.unpack_from("<H", out, at + 6)[0]
                struct.pack_into("<H", out, at + 6, flags & ~0x8)
    return bytes(out)


def variants(payload: PayloadFor) -> Iterator[Variant]:
    def evil(name: str, pad: int = 4096) -> bytes:
        return _torch_zip({"m": Reduce(builtins.exec, payload(key_of(FAMILY, name))),
                           "pad": "p" * pad})

    benign = _torch_zip({"m": {"w": [1.0, 2.0]}, "pad": ""})
    benign_padded = _torch_zip({"m": {"w": [1.0, 2.0]}, "pad": "p" * 4096})
    name = "plain"
    yield Variant(FAMILY, name, "model.pt", evil(name), "torch")
    for pad in (4096, 20000):
        name = f"two_directories_pad{pad}"
        yield Variant(FAMILY, name, "model.pt", two_directories(evil(name, pad), benign), "torch")
    name = "two_zip64_records"
    yield Variant(FAMILY, name, "model.pt", two_zip64_records(evil(name), benign), "torch")
    yield Variant(FAMILY, "benign_two_zip64_records", "model.pt",
                  two_zip64_records(benign_padded, benign), "torch", malicious=False)
    yield Variant(FAMILY, "benign_two_directories", "model.pt",
                  two_directories(benign_padded, benign), "torch", malicious=False)
    for tail in (b"PK\x05\x06", b"PK\x05\x06" + b"\x00" * 6, b"junkPK\x05\x06" + b"\x00" * 11):
        name = f"junk_signature_{len(tail)}"
        yield Variant(FAMILY, name, "model.pt", evil(name) + tail, "torch")
    yield Variant(FAMILY, "benign_junk_signature", "model.pt", benign + b"PK\x05\x06",
                  "torch", malicious=False)
    for junk in (b"\x00" * 100, b"A" * 70000):
        name = f"plain_trailer_{len(junk)}"
        yield Variant(FAMILY, name, "model.pt", evil(name) + junk, "torch")
    name = "signature_in_comment"
    yield Variant(FAMILY, name, "model.pt", _signature_in_comment(evil(name)), "torch")
    yield Variant(FAMILY, "benign_signature_in_comment", "model.pt",
                  _signature_in_comment(benign), "torch", malicious=False)
    for how in ("sizes", "big_sizes", "names", "no_descriptor_flag"):
        name = f"local_{how}"
        yield Variant(FAMILY, name, "model.pt", _local_lies(evil(name), how), "torch")
        yield Variant(FAMILY, f"benign_local_{how}", "model.pt", _local_lies(benign, how),
                      "torch", malicious=False)
    yield from _stored_overstated(payload)
    yield Variant(FAMILY, "benign_plain", "model.pt", benign, "torch", malicious=False)


def _signature_in_comment(data: bytes) -> bytes:
    """The EOCD's comment (its length declared) ends with an end-record signature: zipfile
    takes that last signature, finds no whole record after it and gives up; miniz skips it."""
    local, cd, eocd = _split(data)
    return local + cd + _eocd(eocd[4], len(cd), len(local), comment=b"note PK\x05\x06 ok")


def _stored_overstated(payload: PayloadFor) -> Iterator[Variant]:
    """A zip written by zipfile whose data.pkl is followed by bytes the sizes include."""
    import pickle

    name = "stored_sizes_overstated"
    data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), 2)
    src = io.BytesIO()
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("archive/data.pkl", data + b"\x00" * 64)
        zf.writestr("archive/version", b"3\n")
        zf.writestr("archive/byteorder", b"little")
    yield Variant(FAMILY, name, "model.pt", src.getvalue(), "torch")
