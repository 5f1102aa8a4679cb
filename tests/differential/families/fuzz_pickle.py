"""Family: seeded mutations of the pickle families' malicious variants (mutate, load, compare).

Each seed is a malicious variant of a pickle family loaded by a plain unpickler. Its payload is
written for a fixed-width placeholder key; every mutant gets its own canary by rewriting that
key in place (same length, so no length prefix changes). Mutations never touch the placeholder:
they flip, insert, delete or duplicate bytes elsewhere, the way a fuzzer probes the edges of a
grammar. Most mutants no longer load; those whose canary fires must be caught like any variant.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Iterator

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "fuzz-pickle"
SEED_FAMILIES = ("pickle_basics", "pickle_grammar", "pickle_hidden_calls", "pickle_gadgets")
PICKLE_LOADERS = ("pickle", "pickle-py")
MUTANTS_PER_SEED = int(os.environ.get("HEX_DIFF_FUZZ", "6"))
_OPCODE_BYTES = b"()0.12abcdeghijlpqrstuR]}NIJKLMNPQSTUVX\x80\x81\x85\x93\x94\x95"
_PLACEHOLDER = "fz" + "Q" * 10  # as long as the mutant names below, so lengths never change


def _mutant_key(index: int) -> str:
    return f"fz{index:010d}"


def _mutate(data: bytes, protect: tuple[int, int], rng: random.Random) -> bytes | None:
    buf = bytearray(data)
    lo, hi = protect
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(buf))
        if lo - 4 <= pos <= hi + 4:
            continue
        op = rng.randrange(4)
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf.insert(pos, rng.choice(_OPCODE_BYTES))
        elif op == 2:
            del buf[pos]
        else:
            end = min(len(buf), pos + rng.randint(1, 8))
            buf[pos:pos] = buf[pos:end]
        lo, hi = _find(bytes(buf), data[protect[0]:protect[1]])
        if lo < 0:
            return None
    return bytes(buf)


def _find(data: bytes, needle: bytes) -> tuple[int, int]:
    at = data.find(needle)
    return at, at + len(needle)


def variants(payload: PayloadFor) -> Iterator[Variant]:
    placeholder_code = payload(key_of(FAMILY, _PLACEHOLDER))
    rng = random.Random(20261202)  # noqa: S311 - reproducible mutations, not secrets
    index = 0
    for name in SEED_FAMILIES:
        try:
            module = importlib.import_module(f"differential.families.{name}")
        except ModuleNotFoundError:
            continue
        for seed in module.variants(lambda key: placeholder_code):
            if not seed.malicious or seed.loader not in PICKLE_LOADERS:
                continue
            needle = placeholder_code.encode()
            if seed.data.count(needle) != 1:
                continue  # the payload is not stored verbatim: its canary cannot be rewritten
            protect = _find(seed.data, needle)
            for _ in range(MUTANTS_PER_SEED):
                mutant = _mutate(seed.data, protect, rng)
                if mutant is None:
                    continue
                key = _mutant_key(index)
                real = payload(key_of(FAMILY, key))
                assert len(real) == len(placeholder_code)
                mutant = mutant.replace(placeholder_code.encode(), real.encode())
                yield Variant(FAMILY, key, "model.pkl", mutant, seed.loader)
                index += 1
