"""Family: opcode spellings that CPython's unpicklers accept and a reader may not.

Each variant puts one quirk (a literal spelled with a base prefix, a NUL, an odd quote, a text
memo key, a PROTO where no pickler writes one, a FRAME in protocol 0, a STOP inside a frame ...)
*before* an ``exec`` of the canary, so a reader that stops at the quirk never sees the payload.
Every malicious variant is loaded by both the C unpickler (``pickle``) and the pure-Python one
(``pickle-py``); benign twins carry the same quirk before a plain value, for the unpicklers
that accept it according to CPython 3.11's pickle.py and _pickle.c (the harness checks that
they load cleanly). No library writes these streams, so they are assembled byte by byte.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator

from regression.pickle_asm import glob, sstr

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "pickle-grammar"

BOTH = ("pickle", "pickle-py")
C_ONLY = ("pickle",)
PY_ONLY = ("pickle-py",)


def _exec(source: str) -> bytes:
    """``builtins.exec(source)`` in protocol 0 (leaves the call's result on the stack)."""
    return glob("builtins", "exec") + b"(" + sstr(source) + b"tR"


_BENIGN = b"(dp0\nVweights\np1\n(lp2\nF0.5\naF1.5\nas."
"""``{'weights': [0.5, 1.5]}`` in protocol 0, ending in STOP."""


def _literals() -> Iterator[tuple[str, bytes, tuple[str, ...]]]:
    """(name, quirk that leaves the stack as it found it, unpicklers that accept it)."""
    ints = {
        "hex": b"0x1f", "hex_upper": b"0X1F", "octal_prefix": b"0o17", "octal_upper": b"0O17",
        "binary": b"0b1", "binary_upper": b"0B11", "underscore": b"1_000",
        "hex_underscore": b"0x_1f", "neg_hex": b"-0x1f", "plus_hex": b"+0x1f",
        "lead_space": b" 0x1f", "trail_space": b"0x1f ", "tabs": b"\t7\t", "plus": b"+7",
        "neg_zero": b"-0", "bool_false": b"00", "bool_true": b"01", "plus_one": b"+1",
        "space_one": b" 1", "huge": b"99999999999999999999999", "long_max": b"0x7fffffffffffffff",
        "long_overflow": b"0x8000000000000000", "long_underflow": b"-0x8000000000000001",
        "binary_underscore": b"0b1_0", "vtab": b"\x0b5\x0c",
    }
    for name, text in ints.items():
        yield f"int_{name}", b"I" + text + b"\n0", BOTH
    c_ints = {"octal": b"010", "octal_long": b"0777", "nul_junk": b"7\x00junk", "nul_only": b"\x00",
              "zero_nul": b"0\x00", "hex_nul": b"0x1f\x00\xff\xfe", "neg_octal": b"-017"}
    for name, text in c_ints.items():
        yield f"int_c_{name}", b"I" + text + b"\n0", C_ONLY
    longs = {"hex": b"0x1fL", "octal": b"0o17", "binary": b"0b101L", "underscore": b"1_0L",
             "spaces": b" 5 ", "neg_hex": b"-0x10L", "big": b"123456789012345678901234567890L"}
    for name, text in longs.items():
        yield f"long_{name}", b"L" + text + b"\n0", BOTH
    yield "long_c_nul_junk", b"L7\x00junkL\n0", C_ONLY
    floats = {"exp": b"1E5", "lead_dot": b".5", "trail_dot": b"5.", "inf": b"inf", "nan": b"-nan"}
    for name, text in floats.items():
        yield f"float_{name}", b"F" + text + b"\n0", BOTH
    py_floats = {"underscore": b"1_0.5", "spaces": b" 1.5 ", "overflow": b"1e999"}
    for name, text in py_floats.items():
        yield f"float_py_{name}", b"F" + text + b"\n0", PY_ONLY
    yield "float_c_nul_junk", b"F1.5\x00junk\n0", C_ONLY
    strings = {"double_quotes": b'S"x"\n0', "empty": b"S''\n0", "escaped_quote": b"S'it\\'s'\n0",
               "hex_escape": b"S'\\x41\\101'\n0", "inner_quote": b"S'a'b'\n0",
               "unicode_escape": b"V\\u0041\\U00000042\n0", "unicode_empty": b"V\n0",
               "binstring": b"T\x02\x00\x00\x00ab0", "short_binstring": b"U\x00" + b"0"}
    for name, text in strings.items():
        yield f"string_{name}", text, BOTH
    yield "marks_pop_mark", b"(I1\nI2\n1", BOTH
    yield "marks_pop_of_mark", b"(0", BOTH
    yield "marks_nested", b"((I1\nl(l01", BOTH
    yield "marks_dup_pop", b"I3\n200", BOTH
    yield "proto_mid_0", b"\x80\x00", BOTH
    yield "proto_mid_1", b"\x80\x01", BOTH
    yield "proto_mid_5", b"\x80\x05", BOTH
    yield "proto_repeated", b"\x80\x02\x80\x04\x80\x00\x80\x03", BOTH


def _memo_spellings() -> Iterator[tuple[str, bytes, bytes, tuple[str, ...]]]:
    """(name, PUT key, GET key, unpicklers): exec is stored under one spelling, fetched by the
    other, so a reader that parses either key differently loses the callee."""
    yield "underscore", b"1_0", b"10", BOTH
    yield "spaces", b" 3 ", b"3", BOTH
    yield "plus", b"+5", b"5", BOTH
    yield "leading_zeros", b"007", b"7", BOTH
    yield "get_underscore", b"12", b"1_2", BOTH
    yield "get_tab", b"4", b"\t4", BOTH
    yield "leading_zeros_get", b"42", b"0042", BOTH
    yield "c_put_nul", b"5\x00junk", b"5", C_ONLY
    yield "c_get_nul", b"9", b"9\x00z", C_ONLY


def _stream(quirk: bytes, source: str) -> bytes:
    return quirk + _exec(source) + b"."


def _frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for name, quirk, accepted in _literals():
        yield from _both(payload, name, functools.partial(_stream, quirk))
        for loader in accepted:
            yield Variant(FAMILY, f"{name}_benign_{loader}", "model.pkl", quirk + _BENIGN, loader,
                          malicious=False)
    for name, put, get, accepted in _memo_spellings():
        def build(src: str, put: bytes = put, get: bytes = get) -> bytes:
            stored = glob("builtins", "exec") + b"p" + put + b"\n0"
            return stored + b"g" + get + b"\n(" + sstr(src) + b"tR."
        yield from _both(payload, f"memo_{name}", build)
        for loader in accepted:
            benign = b"I7\np" + put + b"\n0(g" + get + b"\nl."
            yield Variant(FAMILY, f"memo_{name}_benign_{loader}", "model.pkl", benign, loader,
                          malicious=False)
    yield from _protocol_heads(payload)
    yield from _frames(payload)


def _both(payload: PayloadFor, name: str, build: Callable[[str], bytes]) -> Iterator[Variant]:
    for loader in BOTH:
        vname = f"{name}_{loader}"
        data = build(payload(key_of(FAMILY, vname)))
        yield Variant(FAMILY, vname, "model.pkl", data, loader)


def _protocol_heads(payload: PayloadFor) -> Iterator[Variant]:
    """Protocol 0/1 bodies after a PROTO opcode (and binary opcodes after PROTO 0)."""
    for proto in range(6):
        head = b"\x80" + bytes([proto])
        yield from _both(payload, f"proto{proto}_head", functools.partial(_stream, head))
        for loader in BOTH:
            yield Variant(FAMILY, f"proto{proto}_head_benign_{loader}", "model.pkl",
                          head + _BENIGN, loader, malicious=False)
    yield from _both(payload, "proto_before_stop",
                     lambda s: glob("builtins", "exec") + b"(" + sstr(s) + b"tR\x80\x02.")
    yield from _both(payload, "stack_global_after_proto0",
                     lambda s: b"\x80\x00Vbuiltins\nVexec\n\x93(" + sstr(s) + b"tR.")
    yield from _both(payload, "stack_global_escaped_names",
                     lambda s: b"S'built\\x69ns'\nS'ex\\145c'\n\x93(" + sstr(s) + b"tR.")
    yield from _both(payload, "stack_global_short_binstring",
                     lambda s: b"U\x08builtinsU\x04exec\x93(" + sstr(s) + b"tR.")
    yield from _both(payload, "inst_text", lambda s: b"(" + sstr(s) + b"ibuiltins\nexec\n.")
    yield from _both(payload, "obj_text",
                     lambda s: b"(" + glob("builtins", "exec") + sstr(s) + b"o.")


def _frames(payload: PayloadFor) -> Iterator[Variant]:
    """FRAME around protocol-0 bodies, and STOP before the end of a frame."""
    yield from _both(payload, "frame_proto0", lambda s: _frame(_exec(s) + b"."))
    yield from _both(payload, "frame_two_frames",
                     lambda s: _frame(b"I1\n0") + _frame(_exec(s) + b"."))
    for loader in BOTH:
        yield Variant(FAMILY, f"frame_proto0_benign_{loader}", "model.pkl", _frame(_BENIGN),
                      loader, malicious=False)
    # A benign stream ends part way into its frame; the rest of the frame is junk for one
    # reader and skipped by the other, and the payload stream follows the frame.
    for loader in ("pickle-all", "pickle-py-all"):
        for junk_name, junk in (("junk", b"\xff\xfe"), ("partial_stream", b"(I1\n")):
            name = f"stop_in_frame_{junk_name}_{loader}"
            first = b"\x80\x04" + _frame(b"N." + junk)
            data = first + _stream(b"", payload(key_of(FAMILY, name)))
            yield Variant(FAMILY, name, "model.pkl", data, loader)
        name = f"stop_in_frame_inner_{loader}"
        inner = _stream(b"", payload(key_of(FAMILY, name)))
        yield Variant(FAMILY, name, "model.pkl", b"\x80\x04" + _frame(b"N." + inner), loader)
        yield Variant(FAMILY, f"stop_in_frame_benign_{loader}", "model.pkl",
                      b"\x80\x04" + _frame(b"N.") + _BENIGN, loader, malicious=False)
