"""Find a payload at the start of a byte stream rebuilt from weight bits, also when it was
compressed or XOR-ed before it was hidden.

A stream is tried as it is, after a 4- or 8-byte length prefix, after decompression
(zlib, raw deflate, gzip, bzip2, xz/lzma) and after XOR with keys derived from the data:
the most frequent byte (single-byte keys turn runs of zero bytes into runs of the key),
and repeating keys of 1 to 16 bytes recovered by known plaintext, i.e. a file signature
(pickle, zip, ELF, PE, shebang, compressed streams) assumed at the start and checked on
the signature's bytes the key does not cover. Every answer is validated beyond its magic
(a pickle that walks to STOP, a zip local header with sane fields, a parsed ELF/PE
header, printable Python source), because on random low bits a magic alone is chance
and a key derived from a magic always reproduces it.
"""

from __future__ import annotations

import bz2
import lzma
import operator
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator

from hexscan.formats import pickle_probe
from hexscan.parsers import sniff

#: Bytes of a candidate examined, and most bytes a trial decompression may produce.
SAMPLE = 4096
MAX_INFLATE = 16384
#: Where a payload may start: at once, or after a 4- or 8-byte length prefix.
SKIPS = (0, 4, 8)
#: Bytes decrypted per XOR key tried (a header, or the start of a compressed stream).
_XOR_SAMPLE = 1024
MAX_KEY = 16

#: Signatures assumed at the start for known-plaintext key recovery, with the positions
#: whose byte is unknown (a pickle frame's length, a zip entry's fields). The ELF and PE
#: ones are full 16-byte headers (64-bit little-endian e_ident; the DOS header of every
#: linker's stub), so keys up to 16 bytes are recovered from them; a pickle's header
#: gives up to 5 (protocols 4-5), zip local headers up to 10, scripts and Python source
#: their length less 4: the bytes a key does not cover confirm it.
def _template(pattern: bytes, unknown: tuple[int, ...] = (),
              checked: int = 4) -> tuple[bytes, tuple[int, ...], int]:
    """(pattern, known positions, longest key): a key must leave ``checked`` known bytes
    to confirm it, except for headers whose validation reads far past the signature."""
    known = tuple(i for i in range(len(pattern)) if i not in unknown)
    return pattern, known, max(len(known) - checked, 1)


TEMPLATES: tuple[tuple[bytes, tuple[int, ...], int], ...] = (
    _template(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00", (3, 4)),
    _template(b"\x80\x05\x95\x00\x00\x00\x00\x00\x00\x00\x00", (3, 4)),
    _template(b"\x80\x02c"), _template(b"\x80\x03c"), _template(b"\x80\x02"),
    _template(b"\x80\x03"),
    _template(b"PK\x03\x04\x14\x00\x00\x00\x08\x00", checked=0),
    _template(b"PK\x03\x04\x14\x00\x00\x00\x00\x00", checked=0),
    _template(b"PK\x03\x04\x0a\x00\x00\x00\x00\x00", checked=0),
    _template(b"PK\x03\x04\x14\x00\x08\x00\x08\x00", checked=0),
    _template(b"\x7fELF\x02\x01\x01" + b"\x00" * 9, checked=0),
    _template(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00", checked=0),
    _template(b"#!/"), _template(b"#!/bin/sh\n"), _template(b"#!/bin/bash\n"),
    _template(b"#!/usr/bin/env python"), _template(b"import "), _template(b"from "),
    _template(b"exec("), _template(b"\x1f\x8b\x08"), _template(b"\x78\x9c"),
    _template(b"\x78\xda"), _template(b"\x78\x01"), _template(b"BZh9"),
    _template(b"\xfd7zXZ\x00"),
)
#: Bytes most frequent in plain payloads: zero (binaries, pickles) and space (source).
_COMMON_PLAIN = (0x00, 0x20)
_ZIP_METHODS = frozenset({0, 8, 9, 12, 14, 93, 95, 98})
_PY_MARKERS = re.compile(rb"\b(?:import\s+\w|from\s+[\w.]+\s+import\b|def\s+\w+\s*\(|"
                         rb"exec\s*\(|eval\s*\(|__import__\s*\(|class\s+\w+\s*[(:])")
_ZIP_NAME = re.compile(rb"[A-Za-z0-9._/+~-]+")
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e\t\n\r]*")


def validated_kind(data: bytes) -> str | None:
    """What ``data`` starts with when it is code or an archive beyond reasonable doubt."""
    exe = sniff.executable_at(data, 0)
    if exe is not None:
        if exe != "script":
            return f"{exe} executable"
        # The first line is what a key derived from "#!/bin/sh\n" reproduces: the text
        # after it must be printable too.
        match = _PRINTABLE_RUN.match(data[:SAMPLE])
        run = match.group(0) if match else b""
        return "shell/interpreter script" if len(run) >= 48 and run.count(b"\n") >= 2 \
            else None
    if data[:1] == b"\x80" and len(data) > 2 and 2 <= data[1] <= 5:
        # A payload pickle imports something (GLOBAL / STACK_GLOBAL with identifier names)
        # and ends; random bytes after a forced magic rarely do both.
        walk = pickle_probe.walk_pickle(data[:SAMPLE])
        if not walk.underflow and walk.imported and walk.names_ok and (
                walk.stop is not None or walk.ops >= 64):
            return "pickle"
        return None
    if data.startswith(b"PK\x03\x04"):
        return "zip archive" if _zip_header(data) else None
    if data.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x78")):
        return None  # compressed streams are judged by what they decompress to
    if data[:1] in (b"\xe3", b"\x63") and len(data) >= 64 and \
            sniff.code_kind(data[:64]) == "marshalled Python code":
        return "marshalled Python code"
    if data.startswith((b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07")):
        return sniff.code_kind(data[:16])
    return _python_source(data)


def _zip_header(data: bytes) -> bool:
    if len(data) < 30:
        return False
    version, flags, method, _, _, _, packed, size, name_len, _ = struct.unpack_from(
        "<HHHHHIIIHH", data, 4)
    name = data[30:30 + name_len]
    sizes_ok = packed == size if method == 0 and not flags & 0x08 else packed <= size + 1024
    return (version <= 63 and flags < 1 << 14 and method in _ZIP_METHODS and sizes_ok
            and 0 < name_len <= 512 and len(name) == name_len
            and _ZIP_NAME.fullmatch(name) is not None)


def _python_source(data: bytes) -> str | None:
    """Python source at the start: a run of at least 48 printable bytes with a newline and
    Python syntax (a stream holds the payload, then whatever the low bits held before)."""
    match = _PRINTABLE_RUN.match(data[:SAMPLE])
    run = match.group(0) if match else b""
    if len(run) >= 48 and b"\n" in run and _PY_MARKERS.search(run):
        return "Python source"
    return None


def _decompressors() -> Iterator[tuple[str, Callable[[bytes], bytes]]]:
    def inflate(wbits: int) -> Callable[[bytes], bytes]:
        return lambda b: zlib.decompressobj(wbits).decompress(b, MAX_INFLATE)

    yield "zlib", inflate(15)
    yield "gzip", inflate(31)
    yield "raw deflate", inflate(-15)
    yield "bzip2", lambda b: bz2.BZ2Decompressor().decompress(b, MAX_INFLATE)
    yield "xz/lzma", lambda b: lzma.LZMADecompressor().decompress(b, MAX_INFLATE)


_DECOMPRESSORS = tuple(_decompressors())
_COMPRESSED_MAGIC = {"zlib": (b"\x78",), "gzip": (b"\x1f\x8b",), "bzip2": (b"BZh",),
                     "xz/lzma": (b"\xfd7zXZ", b"\x5d\x00\x00")}


def _inflated(data: bytes) -> str | None:
    """A payload inside a compressed stream at the start of ``data``."""
    for name, decompress in _DECOMPRESSORS:
        magics = _COMPRESSED_MAGIC.get(name)
        if magics is not None and not data.startswith(magics):
            continue
        try:
            out = decompress(data)
        except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
            continue
        kind = validated_kind(out) if len(out) >= 16 else None
        if kind is not None:
            return f"{kind} compressed with {name}"
    return None


def _plain(data: bytes) -> str | None:
    try:
        return validated_kind(data) or _inflated(data)
    except (struct.error, IndexError):
        return None


def _xor(data: bytes, key: bytes) -> bytes:
    reps = key * (len(data) // len(key) + 1)
    n = len(data)
    return (int.from_bytes(data, "little") ^ int.from_bytes(reps[:n], "little")).to_bytes(
        n, "little")


def _keys(data: bytes, frequency: bool) -> Iterator[bytes]:
    """Keys to try: per key length, the most frequent byte of each key position taken as
    a zero or a space (frequency analysis), then keys recovered from each template."""
    seen: set[bytes] = set()
    periods: dict[int, bool] = {}

    def periodic(size: int) -> bool:
        if size not in periods:
            periods[size] = _periodic(data, size)
        return periods[size]

    for window in (512,) if frequency else ():
        head = data[:window]
        for size in range(1, MAX_KEY + 1):
            if len(head) < 8 * size or periodic(size):
                continue
            modes = [_mode(head[j::size]) for j in range(size)]
            for plain in _COMMON_PLAIN:
                key = bytes(m ^ plain for m in modes)
                if any(key) and key not in seen:
                    seen.add(key)
                    yield key
    for template, known, longest in TEMPLATES:
        for size in range(1, min(MAX_KEY, longest) + 1):
            recovered = _recovered(data, template, known, size)
            # On a repeating pattern XOR would only paint the signature over it.
            if recovered is not None and recovered not in seen and any(recovered) and \
                    not periodic(size):
                seen.add(recovered)
                yield recovered


def _mode(column: bytes) -> int:
    return Counter(column).most_common(1)[0][0]


def _recovered(data: bytes, template: bytes, known: tuple[int, ...],
               size: int) -> bytes | None:
    """The ``size``-byte repeating key that turns ``data`` into ``template`` on its known
    bytes, if every key byte is covered and all known bytes agree."""
    key: list[int | None] = [None] * size
    for p in known:
        if p >= len(data):
            return None
        value = data[p] ^ template[p]
        slot = key[p % size]
        if slot is None:
            key[p % size] = value
        elif slot != value:
            return None
    if any(k is None for k in key):
        return None
    return bytes(k for k in key if k is not None)


def _periodic(data: bytes, period: int, share: float = 0.995, window: int = 1024) -> bool:
    """Whether ``data`` mostly repeats itself every ``period`` bytes (constant low bits,
    upcast weights): such a stream XOR-ed with its own period is a repeated signature."""
    head = data[:window]
    n = len(head) - period
    if n <= 0:
        return True
    same: int = sum(map(operator.eq, head[:n], head[period:]))
    return same >= share * n


#: Signatures searched for anywhere in a stream's sample (a payload after a header of its
#: own, or written from a later element): long enough, or validated strongly enough, that
#: a chance match is rejected.
_ANYWHERE = (b"\x80\x02c", b"\x80\x03c", b"\x80\x04\x95", b"\x80\x05\x95", b"PK\x03\x04",
             b"\x7fELF", b"MZ", b"\x1f\x8b\x08", b"BZh91AY&SY", b"\xfd7zXZ\x00",
             b"\x78\x9c", b"\x78\xda", b"#!/", b"import ")


def payload_inside(stream: bytes) -> str | None:
    """A validated payload starting anywhere in the first SAMPLE bytes of ``stream``."""
    for magic in _ANYWHERE:
        pos = stream.find(magic, 1, SAMPLE)
        hits = 0
        while pos != -1 and hits < 16:
            hits += 1
            found = _plain(stream[pos:pos + SAMPLE])
            if found is not None:
                return f"{found} at byte {pos}"
            pos = stream.find(magic, pos + 1, SAMPLE)
    return None


def payload_at_start(stream: bytes, xor: bool = False) -> str | None:
    """The payload hidden at the start of ``stream`` (or after a length prefix), if any:
    as it is or compressed, or with ``xor`` only once XOR-ed with a derived key (callers
    try every stream plainly first, so that a payload is named by the bits that hold it
    rather than by a key that happens to decode a neighbouring stream)."""
    for skip in SKIPS:
        data = stream[skip:skip + SAMPLE]
        if len(data) < 16:
            break
        where = f" after a {skip}-byte prefix" if skip else ""
        if not xor:
            found = _plain(data)
            if found is not None:
                return found + where
            continue
        head = data[:_XOR_SAMPLE]
        for key in _keys(data, frequency=skip == 0):
            found = _plain(_xor(head, key))
            if found is not None:
                return f"{found}, XOR-ed with the {len(key)}-byte key {key.hex()}{where}"
    return None
