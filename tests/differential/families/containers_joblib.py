"""Family: what ``joblib.load`` reads: every compressor, legacy formats, arrays after the pickle.

joblib picks a decompressor from the first bytes (``numpy_pickle_utils._detect_compressor``:
``ZF`` for the pre-0.10 zfile format, then the prefixes of ``_COMPRESSORS``), then unpickles;
a ``NumpyArrayWrapper`` makes it read the array that follows the wrapper in the file, itself a
pickle when the dtype holds objects (structured dtypes with an object field included).

Malicious variants: ``joblib.dump`` of a payload and of object / structured-object arrays
holding one, with every compressor and several levels; zfiles written by joblib's own
``write_zfile`` (and the one-character-wider Python 2 header); ``.lzma`` ("alone") streams
written by ``lzma`` with every dictionary size liblzma accepts, declared sizes known and
unknown; ``.xz`` streams with filter chains and integrity checks joblib never writes itself.
Benign twins: real ``joblib.dump`` files of arrays of every dtype and estimator-like objects,
with every compressor.
"""

from __future__ import annotations

import builtins
import io
import lzma
import pickle
import zlib
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import Extra, PayloadFor, Variant, key_of

FAMILY = "containers-joblib"

_COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


def _dump(obj: object, compress: object = 0) -> bytes:
    import joblib

    out = io.BytesIO()
    joblib.dump(obj, out, compress=compress)
    return out.getvalue()


def variants(payload: PayloadFor) -> Iterator[Variant]:
    import numpy as np

    def evil(name: str) -> Reduce:
        return Reduce(builtins.exec, payload(key_of(FAMILY, name)))

    def holders(name: str) -> dict[str, object]:
        obj_arr = np.empty(3, dtype=object)
        obj_arr[1] = evil(name)
        struct = np.zeros(2, dtype=[("w", "<f4"), ("a", "O")])
        struct["a"][0] = evil(name)
        nested = np.zeros(2, dtype=[("n", [("w", "<f8"), ("a", "O")])])
        nested["n"]["a"][1] = evil(name)
        sub = np.zeros(2, dtype=[("a", "O", (2,))])
        sub["a"][0][1] = evil(name)
        return {"plain": {"model": evil(name)}, "object_array": [np.ones(4), obj_arr],
                "struct_array": {"x": np.arange(5), "y": struct}, "nested_struct": nested,
                "subarray_field": sub}

    for kind in ("plain", "object_array", "struct_array", "nested_struct", "subarray_field"):
        for compress in (0, *((c, 3) for c in _COMPRESSORS)):
            label = compress[0] if isinstance(compress, tuple) else "raw"
            name = f"{kind}_{label}"
            yield Variant(FAMILY, name, "model.joblib", _dump(holders(name)[kind], compress),
                          "joblib")
    for level in (1, 9):
        for comp in ("zlib", "gzip", "bz2", "xz"):
            name = f"plain_{comp}_level{level}"
            yield Variant(FAMILY, name, "model.pkl", _dump({"m": evil(name)}, (comp, level)),
                          "joblib")
    yield from _zfiles(payload)
    yield from _sidecars(payload, np)
    yield from _lzma_alone(payload)
    yield from _xz_filters(payload)
    yield from _benign(np)


def _zfiles(payload: PayloadFor) -> Iterator[Variant]:
    """joblib < 0.10 wrote one zlib "zfile": ``ZF``, the hex length, the deflated pickle."""
    from joblib.numpy_pickle_compat import write_zfile

    for protocol in (0, 2, 4):
        for level in (1, 9):
            name = f"zfile_p{protocol}_l{level}"
            data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), protocol)
            out = io.BytesIO()
            write_zfile(out, data, level)
            yield Variant(FAMILY, name, "model.pkl", out.getvalue(), "joblib")
    name = "zfile_py2_header"
    data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), 2)
    header = b"ZF" + hex(len(data)).encode().ljust(19) + b" "
    yield Variant(FAMILY, name, "model.pkl", header + zlib.compress(data), "joblib")
    benign = pickle.dumps({"coef": [1.0, 2.0]}, 2)
    out = io.BytesIO()
    write_zfile(out, benign, 3)
    yield Variant(FAMILY, "benign_zfile", "model.pkl", out.getvalue(), "joblib", malicious=False)


def _sidecars(payload: PayloadFor, np: object) -> Iterator[Variant]:
    """joblib <= 0.9 wrote each array to ``NAME_NN.npy`` next to the pickle, which holds an
    ``NDArrayWrapper``; ``joblib.load`` still reads those with ``numpy.load(allow_pickle=True)``.
    """
    from joblib.numpy_pickle_compat import NDArrayWrapper

    numpy = np
    for label, dtype in (("object", object), ("struct", [("a", "O"), ("b", "<i4")])):
        for protocol in (2, 4):
            name = f"sidecar_{label}_p{protocol}"
            arr = numpy.zeros(2, dtype=dtype)  # type: ignore[attr-defined]
            item = Reduce(builtins.exec, payload(key_of(FAMILY, name)))
            if label == "object":
                arr[0] = item
            else:
                arr["a"][0] = item
            out = io.BytesIO()
            numpy.save(out, arr, allow_pickle=True)  # type: ignore[attr-defined]
            wrapper = NDArrayWrapper("model.pkl_01.npy", numpy.ndarray)  # type: ignore[attr-defined]
            yield Variant(FAMILY, name, "model.pkl", pickle.dumps({"w": wrapper}, protocol),
                          "joblib",
                          extras=(Extra("model.pkl_01.npy", out.getvalue(), judged=True),))
    name = "sidecar_parent_dir"
    arr = numpy.empty(1, dtype=object)  # type: ignore[attr-defined]
    arr[0] = Reduce(builtins.exec, payload(key_of(FAMILY, name)))
    out = io.BytesIO()
    numpy.save(out, arr, allow_pickle=True)  # type: ignore[attr-defined]
    # The array file lies outside the pickle's directory; joblib follows the name there.
    wrapper = NDArrayWrapper(f"../{name}_01.npy", numpy.ndarray)  # type: ignore[attr-defined]
    yield Variant(FAMILY, name, "model.pkl", pickle.dumps({"w": wrapper}, 2), "joblib",
                  extras=(Extra(f"../{name}_01.npy", out.getvalue(), judged=True),))
    out = io.BytesIO()
    numpy.save(out, numpy.arange(4.0))  # type: ignore[attr-defined]
    wrapper = NDArrayWrapper("model.pkl_01.npy", numpy.ndarray)  # type: ignore[attr-defined]
    yield Variant(FAMILY, "benign_sidecar", "model.pkl", pickle.dumps({"w": wrapper}, 2),
                  "joblib", malicious=False,
                  extras=(Extra("model.pkl_01.npy", out.getvalue(), judged=True),))


def _alone(data: bytes, dict_size: int, known_size: bool) -> bytes:
    """An .lzma stream written by liblzma, with the header's dictionary size set after.

    The encoder only writes sizes from 4 KiB to 1.5 GiB; the decoder accepts every 2^n and
    2^n + 2^(n-1) (and 2^32 - 1), so other sizes are patched into the header.
    """
    encoded = dict_size if 4096 <= dict_size <= 3 << 29 else 4096
    packed = lzma.compress(data, format=lzma.FORMAT_ALONE,
                           filters=[{"id": lzma.FILTER_LZMA1, "dict_size": encoded}])
    size = len(data).to_bytes(8, "little") if known_size else packed[5:13]
    return packed[:1] + dict_size.to_bytes(4, "little") + size + packed[13:]


def _lzma_alone(payload: PayloadFor) -> Iterator[Variant]:
    sizes = [0, 256, 512, 1024, 3 << 9, 4096, 3 << 12, 1 << 16, 1 << 20, 3 << 21, 1 << 26,
             1 << 30, 3 << 29, 1 << 31, 3 << 30, 0xFFFFFFFF, 0x1001, 0x12345600]
    for dict_size in sizes:
        for known in (False, True):
            name = f"lzma_dict_{dict_size:x}_{'sized' if known else 'unsized'}"
            data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), 4)
            yield Variant(FAMILY, name, "model.joblib", _alone(data, dict_size, known), "joblib")
    benign = pickle.dumps({"coef": [1.0, 2.0]}, 4)
    for dict_size in (1024, 1 << 31):
        yield Variant(FAMILY, f"benign_lzma_dict_{dict_size:x}", "model.joblib",
                      _alone(benign, dict_size, True), "joblib", malicious=False)


def _xz_filters(payload: PayloadFor) -> Iterator[Variant]:
    chains = {
        "delta": [{"id": lzma.FILTER_DELTA, "dist": 4}, {"id": lzma.FILTER_LZMA2}],
        "x86": [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2}],
        "arm": [{"id": lzma.FILTER_ARM}, {"id": lzma.FILTER_LZMA2, "preset": 9}],
        "tiny_dict": [{"id": lzma.FILTER_LZMA2, "dict_size": 4096}],
        "extreme": [{"id": lzma.FILTER_LZMA2, "preset": 6 | lzma.PRESET_EXTREME}],
    }
    checks = {"none": lzma.CHECK_NONE, "crc32": lzma.CHECK_CRC32, "sha256": lzma.CHECK_SHA256}
    for chain, filters in chains.items():
        for check_name, check in checks.items():
            name = f"xz_{chain}_{check_name}"
            data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), 4)
            packed = lzma.compress(data, format=lzma.FORMAT_XZ, check=check, filters=filters)
            yield Variant(FAMILY, name, "model.joblib", packed, "joblib")
    name = "xz_two_streams"
    # The pickle is split across two concatenated xz streams: LZMAFile reads both.
    whole = pickle.dumps([Reduce(builtins.exec, payload(key_of(FAMILY, name)))], 4)
    cut = len(whole) // 2
    yield Variant(FAMILY, name, "model.joblib", lzma.compress(whole[:cut]) +
                  lzma.compress(whole[cut:]), "joblib")


def _benign(np: object) -> Iterator[Variant]:
    numpy = np
    objects = {
        "arrays": {f"a_{code}": numpy.zeros(4, dtype=code)  # type: ignore[attr-defined]
                   for code in ("?", "i1", "<i4", ">i8", "<u2", "<f2", "<f4", ">f8", "<c16",
                                "S3", "<U2", "<M8[s]")},
        "struct": numpy.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),  # type: ignore[attr-defined]
        "object_plain": numpy.array([1, "x", None, 2.5], dtype=object),  # type: ignore[attr-defined]
        "struct_object_plain": numpy.zeros(2, dtype=[("a", "O"), ("b", "<i4")]),  # type: ignore[attr-defined]
        "estimator_like": {"coef_": numpy.arange(6.0).reshape(2, 3),  # type: ignore[attr-defined]
                           "classes_": numpy.array(["a", "b"], dtype=object),  # type: ignore[attr-defined]
                           "params": {"C": 1.0, "kernel": "rbf"}},
    }
    for label, obj in objects.items():
        for compress in (0, *((c, 3) for c in _COMPRESSORS)):
            comp = compress[0] if isinstance(compress, tuple) else "raw"
            yield Variant(FAMILY, f"benign_{label}_{comp}", "model.joblib", _dump(obj, compress),
                          "joblib", malicious=False)
