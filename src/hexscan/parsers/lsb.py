"""Statistics of the low mantissa bits of float weights (payloads hidden in LSBs).

Two tests per window of raw little-endian weight bits:

* header, for every k = 1..8 low bits that the dtype's mantissa can spare (and the low
  bits of int8/uint8 weights): the low k bits of consecutive elements, reassembled into
  bytes (both bit orders), start with a recognisable file (zip, ELF, PE, pickle, Python
  source ...) at byte 0, 4 or 8 (after a length prefix), also once decompressed or
  XOR-ed with a key derived from the data, or hold one further into the sampled stream
  (parsers/lsb_payload);
* planes: bytes reassembled from the low k bits are compared with bytes reassembled the
  same way from the k bits right above them (256-bin chi-square, as a z-score). Trained,
  randomly initialised and cast weights have low bits that are as random as the bits
  above (both z small) or as structured (both large, e.g. float16 values stored as
  float32); an embedded payload makes the low planes structured under random planes, or
  varying under constant planes.

numpy is used when it is installed (it is not a core dependency); without it the test
is skipped and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hexscan.parsers.lsb_payload import SAMPLE, SKIPS, payload_at_start, payload_inside

#: (bytes per element, mantissa bits) of the dtypes tested; the integer types count their
#: value bits, and only the header test applies to them.
DTYPES = {"F32": (4, 23), "F16": (2, 10), "BF16": (2, 7), "I8": (1, 8), "U8": (1, 8)}
FLOATS = frozenset({"F32", "F16", "BF16"})
#: Low bits tried per element by the header test.
HEADER_BITS = (1, 2, 3, 4, 5, 6, 7, 8)


def numpy_or_none() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


@dataclass(frozen=True, slots=True)
class LsbVerdict:
    kind: str          # "header" or "planes"
    bits: int
    detail: str
    z_low: float = 0.0
    z_ref: float = 0.0
    element: int = 0   # index of the window's first element


def z_score(counts: Any, np: Any, expected_p: Any | None = None) -> float:
    """Wilson-Hilferty z of the chi-square of ``counts`` against ``expected_p`` (uniform
    when None); bins expected to hold less than one count are pooled."""
    n = float(counts.sum())
    bins = len(counts)
    if n < bins * 5:
        return 0.0
    probs = np.full(bins, 1.0 / bins) if expected_p is None else expected_p
    expected = probs * n
    keep = expected >= 1.0
    pooled_obs = float(counts[~keep].sum())
    pooled_exp = float(expected[~keep].sum())
    chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    if pooled_exp > 0 or pooled_obs > 0:
        chi2 += (pooled_obs - pooled_exp) ** 2 / max(pooled_exp, 1.0)
    df = max(int(keep.sum()), 2) - 1
    return float(((chi2 / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df)))


def _bytes_from_bits(values: Any, k: int, np: Any, little: bool) -> Any:
    """Reassemble the low ``k`` bits of each value into a byte stream (bit order: the
    field's bits MSB-first packed MSB-first, or LSB-first packed LSB-first)."""
    if 8 % k == 0:
        group = 8 // k
        usable = len(values) - len(values) % group
        v = values[:usable].astype(np.uint32).reshape(-1, group)
        steps = np.arange(group, dtype=np.uint32) * k
        shifts = steps if little else (8 - k) - steps
        return (v << shifts).sum(axis=1).astype(np.uint8)
    shifts = np.arange(k, dtype=np.uint32) if little else np.arange(k - 1, -1, -1,
                                                                       dtype=np.uint32)
    bits = ((values.astype(np.uint32)[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    usable = len(bits) - len(bits) % 8
    return np.packbits(bits[:usable], bitorder="little" if little else "big")


def header_verdict(raw: Any, dtype: str, np: Any) -> LsbVerdict | None:
    """A recognisable file in the low bits at the start of the tensor.

    A float keeps at least two mantissa bits above the ones tried, and an int8 weight at
    least one value bit: hiding data in all of them would leave no weight.
    """
    _, mant = DTYPES[dtype]
    room = mant - 2 if dtype in FLOATS else mant - 1
    needed = (SAMPLE + max(SKIPS)) * 8
    streams = []
    shifted = []  # the same bits starting 1.. elements later: a payload need not align
    for k in HEADER_BITS:
        if k > room:
            break
        low = raw[:(needed + k - 1) // k + 8] & ((1 << k) - 1)
        for little in (False, True):
            streams.append((k, little, _bytes_from_bits(low, k, np, little).tobytes()))
            shifted += [(k, little, _bytes_from_bits(low[phase:], k, np, little).tobytes())
                        for phase in range(1, 8 // math.gcd(8, k))]
    searches = ((streams, lambda stream: payload_at_start(stream)),
                (streams + shifted, payload_inside),
                (streams, lambda stream: payload_at_start(stream, xor=True)))
    for candidates, search in searches:
        for k, little, stream in candidates:
            found = search(stream)
            if found is not None:
                return LsbVerdict("header", k, f"{found} in the low-{k}-bit stream "
                                  f"({'LSB' if little else 'MSB'}-first)")
    return None


def plane_verdict(raw: Any, dtype: str, np: Any, z_structured: float, z_random: float,
                  constant_share: float, first: int) -> LsbVerdict | None:
    """Low planes that disagree with the planes right above them."""
    size, mant = DTYPES[dtype]
    magnitude = raw & ((1 << (size * 8 - 1)) - 1)
    values = raw[magnitude != 0]
    if len(values) < 4096:
        return None
    for k in (1, 2, 4, 8):
        if 2 * k > mant:
            break
        mask = (1 << k) - 1
        low, ref = values & mask, (values >> k) & mask
        # Low planes: dependence between consecutive elements. Reference planes: plainly
        # random (uniform), which constant or clustered planes are not.
        z_low = _z_seq(low, k, np)
        z_ref = z_score(np.bincount(_bytes_from_bits(ref, k, np, False), minlength=256), np)
        if z_low > z_structured and z_ref < z_random:
            return LsbVerdict("planes", k, f"low {k} bit(s) are structured (z={z_low:.0f}) "
                              f"while the {k} bit(s) above are random (z={z_ref:.1f})",
                              z_low, z_ref, first)
        ref_values = np.bincount(ref.astype(np.int64), minlength=mask + 1)
        if ref_values.max() >= 0.995 * len(ref):
            share = float((low != 0).mean())
            planes = [float(((low >> b) & 1).mean()) for b in range(k)]
            # Natural noise that fits under constant planes decays towards the top low
            # bit (a share of ~0.2 at most); written data fills every low plane.
            if share > constant_share and all(0.3 <= p <= 0.7 for p in planes):
                return LsbVerdict("planes", k, f"{share:.0%} of the elements carry data in "
                                  f"the low {k} bit(s) while the {k} bit(s) above are "
                                  "constant", z_low, z_ref, first)
    return None


def _z_seq(field: Any, k: int, np: Any) -> float:
    """Dependence between the k-bit fields of consecutive elements.

    Bytes reassembled from g = 8/k consecutive fields are compared with what independent
    fields with the observed field distribution would give. Whatever shapes one element's
    low bits (rounding bias, quantised initialisers, trailing zeros of small values) is
    in that distribution; data written across elements (text, code, archives) is not.
    With k = 8 a byte is one element, so there is nothing to compare: returns 0.
    """
    if k >= 8 or 8 % k:
        return 0.0
    symbols = np.bincount(field.astype(np.int64), minlength=1 << k).astype(float)
    p_sym = symbols / max(symbols.sum(), 1.0)
    values = np.arange(256)
    probs = np.ones(256)
    for j in range(8 // k):
        probs *= p_sym[(values >> (8 - k * (j + 1))) & ((1 << k) - 1)]
    counts = np.bincount(_bytes_from_bits(field, k, np, False), minlength=256)
    return z_score(counts, np, probs)


def as_uints(data: bytes, dtype: str, np: Any) -> Any:
    size, _ = DTYPES[dtype]
    usable = len(data) - len(data) % size
    return np.frombuffer(data[:usable], dtype={4: "<u4", 2: "<u2", 1: "u1"}[size])


def plausible_floats(data: bytes, dtype: str, np: Any) -> float:
    """Share of values that look like ordinary weights (finite, moderate, or zero)."""
    if dtype == "BF16":
        raw = as_uints(data, dtype, np).astype(np.uint32) << 16
        values = raw.view(np.float32)
    else:
        usable = len(data) - len(data) % DTYPES[dtype][0]
        values = np.frombuffer(data[:usable], dtype="<f4" if dtype == "F32" else "<f2")
    if not len(values):
        return 0.0
    with np.errstate(all="ignore"):
        mag = np.abs(values.astype(np.float64))
        ok = (mag == 0) | ((mag > 1e-30) & (mag < 1e4))
    return float(ok.mean())
