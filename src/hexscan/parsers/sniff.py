"""Recognise code and containers in a byte sample: validated executable headers, scripts,
pickles, archives. Used on embedded regions, appended data and decoded blobs."""

from __future__ import annotations

import re
import struct

from hexscan.formats import pickle_probe, probes

#: Where an executable may start inside a larger blob (validated by ``executable_at``).
EXEC_STARTS = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
               b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"#!/")


_PAIRS = tuple(sig[:2] for sig in EXEC_STARTS)


def candidate_starts(data: bytes, end: int) -> list[int]:
    """Offsets below ``end`` where one of EXEC_STARTS may begin (validated by the caller)."""
    try:
        import numpy as np
    except ImportError:
        return _candidates_by_find(data, end)
    stop = min(end, len(data) - 1)
    if stop < 1:
        return []
    lut = np.zeros(65536, dtype=bool)
    for pair in _PAIRS:
        lut[pair[0] | pair[1] << 8] = True
    found = []
    for phase in (0, 1):
        usable = (stop + 1 - phase) // 2 * 2
        words = np.frombuffer(data, dtype="<u2", count=usable // 2, offset=phase)
        found.append(np.flatnonzero(lut[words]) * 2 + phase)
    both = np.sort(np.concatenate(found))
    return [int(i) for i in both[both < end][:100_000]]


def _candidates_by_find(data: bytes, end: int) -> list[int]:
    """The same without numpy (bytes.find per signature)."""
    found: list[int] = []
    for sig in EXEC_STARTS:
        pos = data.find(sig, 0, end + len(sig) - 1)
        while pos >= 0 and len(found) < 100_000:
            found.append(pos)
            pos = data.find(sig, pos + 1, end + len(sig) - 1)
    return sorted(found)
_PE_MACHINES = frozenset({0x14C, 0x8664, 0xAA64, 0x1C0, 0x1C4, 0x200, 0x5064})
_MACHO_CPUS = frozenset({7, 0x01000007, 12, 0x0100000C, 18, 0x01000012})
_SHEBANG = re.compile(rb"#!/[\w./-]{1,64}(?: [\w./-]{1,32})?\r?\n")
_INTERPRETERS = (b"sh", b"bash", b"zsh", b"dash", b"python", b"perl", b"ruby", b"env",
                 b"node", b"php", b"ksh", b"lua")


def executable_at(data: bytes, pos: int) -> str | None:
    """The kind of executable whose validated header starts at ``pos``, or None."""
    sig = data[pos:pos + 4]
    if sig == b"\x7fELF":
        return "ELF" if _elf(data, pos) else None
    if sig[:2] == b"MZ":
        return "PE" if _pe(data, pos) else None
    if sig in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
               b"\xcf\xfa\xed\xfe"):
        return "Mach-O" if _macho(data, pos) else None
    if sig[:3] == b"#!/":
        m = _SHEBANG.match(data, pos)
        if m and m.group().split(b"\n")[0].rstrip(b"\r").split(b"/")[-1].split(b" ")[0] \
                .startswith(_INTERPRETERS):
            return "script"
    return None


def _elf(data: bytes, pos: int) -> bool:
    head = data[pos:pos + 64]
    if len(head) < 52:
        return False
    cls, order, version = head[4], head[5], head[6]
    if cls not in (1, 2) or order not in (1, 2) or version != 1:
        return False
    end = "<" if order == 1 else ">"
    e_type, _machine, e_version = struct.unpack_from(end + "HHI", head, 16)
    ehsize_at = 40 if cls == 1 else 52
    if len(head) < ehsize_at + 2:
        return False
    (ehsize,) = struct.unpack_from(end + "H", head, ehsize_at)
    return bool(1 <= e_type <= 4 and e_version == 1 and ehsize == (52 if cls == 1 else 64))


def _pe(data: bytes, pos: int) -> bool:
    if len(data) < pos + 0x40:
        return False
    (lfanew,) = struct.unpack_from("<I", data, pos + 0x3C)
    if not 0x40 <= lfanew <= 4096 or len(data) < pos + lfanew + 6:
        return False
    if data[pos + lfanew:pos + lfanew + 4] != b"PE\x00\x00":
        return False
    (machine,) = struct.unpack_from("<H", data, pos + lfanew + 4)
    return machine in _PE_MACHINES


def _macho(data: bytes, pos: int) -> bool:
    head = data[pos:pos + 28]
    if len(head) < 28:
        return False
    end = "<" if head[0] in (0xCE, 0xCF) else ">"
    cpu, _sub, filetype, ncmds = struct.unpack_from(end + "iIII", head, 4)
    return cpu in _MACHO_CPUS and 1 <= filetype <= 12 and 1 <= ncmds <= 1000


def describe(sample: bytes) -> str:
    """What a region starting with ``sample`` looks like, in a few words."""
    kind = code_kind(sample)
    if kind:
        return kind
    if not sample.strip(b"\x00"):
        return "zero bytes"
    if probes.looks_like_text(sample):
        return "text"
    return f"binary data (entropy {entropy(sample):.1f} bits/byte)"


def code_kind(sample: bytes) -> str | None:
    """Code or an archive at the start of ``sample`` (None for plain data)."""
    exe = executable_at(sample, 0)
    if exe:
        return f"{exe} executable" if exe != "script" else "shell/interpreter script"
    if sample[:1] == b"\x80" and len(sample) > 2 and sample[1] <= 5:
        walk = pickle_probe.walk_pickle(sample)
        if not walk.underflow and (walk.ops >= 8 or walk.stop is not None):
            return "pickle"
    if sample[:1] in (b"\xe3", b"\x63") and len(sample) >= 16 and _marshal_code(sample):
        return "marshalled Python code"
    for magic, name in _ARCHIVES:
        if sample.startswith(magic):
            return name
    return None


def runs_code(kind: str | None) -> bool:
    """Whether a code_kind() answer is code (not merely an archive or document)."""
    return kind is not None and kind not in {name for _, name in _ARCHIVES}


_ARCHIVES = ((b"PK\x03\x04", "zip archive"), (b"7z\xbc\xaf\x27\x1c", "7z archive"),
             (b"\x1f\x8b\x08", "gzip stream"), (b"BZh", "bzip2 stream"),
             (b"\xfd7zXZ\x00", "xz stream"), (b"Rar!\x1a\x07", "rar archive"),
             (b"%PDF-", "PDF document"))


def _marshal_code(sample: bytes) -> bool:
    """A marshalled code object: TYPE_CODE (with or without FLAG_REF), then small ints."""
    argcount, posonly, kwonly, stacksize = struct.unpack_from("<4I", sample, 1)
    return bool(argcount < 256 and posonly < 256 and kwonly < 256 and stacksize < 10_000)


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte."""
    if not data:
        return 0.0
    import math

    counts = [0] * 256
    for byte in data:
        counts[byte] += 1
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in counts if c)
