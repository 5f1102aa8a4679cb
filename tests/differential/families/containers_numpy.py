"""Family: ``.npy`` / ``.npz`` files whose dtype makes ``numpy.load`` unpickle the data.

numpy unpickles the array data whenever ``descr_to_dtype(header['descr']).hasobject``. The
malicious variants spell "object" every way the header grammar allows (byte orders, item
sizes, aliases, comma strings, repeats, structured and nested fields, titles, subarrays,
StringDType ``T``) in every header version, as ``.npy`` and as ``.npz`` members (stored and
deflated). Files numpy itself writes (``numpy.save`` / ``savez`` of object arrays holding the
payload, of structured arrays with object fields, of dtypes with metadata) are included, and
the benign twins are real arrays of every dtype numpy saves, object arrays of plain data
among them.
"""

from __future__ import annotations

import builtins
import io
import pickle
import struct
import zipfile
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "containers-numpy"

#: Spellings of a descr whose dtype holds objects (checked against numpy in the unit tests).
OBJECT_DESCRS: dict[str, object] = {
    "O": "O", "pipe_O": "|O", "lt_O": "<O", "gt_O": ">O", "eq_O": "=O", "O8": "O8",
    "O4": "O4", "lt_O8": "<O8", "pipe_O4": "|O4", "object": "object", "object_": "object_",
    "T": "T", "pipe_T": "|T", "comma_i4_O": "i4,O", "comma_O_f8": "O,f8",
    "comma_spaces": "i4 , O", "comma_trailing": "O,", "repeat_paren": "(2,)O",
    "repeat_digit": "2O", "repeat_object": "3object", "comma_repeat": "i4,(2,3)O",
    "struct": [("a", "|O")], "struct_second": [("a", "<i4"), ("b", "|O")],
    "struct_shape": [("a", "|O", (2,))], "struct_title": [(("title", "a"), "|O")],
    "struct_nested": [("a", [("b", "<f8"), ("c", "|O")])],
    "struct_deep": [("a", [("b", [("c", [("d", "O")])])])],
    "struct_alias": [("x", "object")], "struct_comma": [("x", "i4,O")],
    "subarray": ("|O", (2,)), "subarray_int": ("O", 2), "subarray_nested": (("O", (2,)), (3,)),
    "subarray_struct": ([("a", "O")], (2,)), "struct_of_subarray": [("a", ("O", (2,)))],
}


def npy_bytes(descr: object, body: bytes, version: int = 1, shape: str = "(1,)",
              pad_to: int = 64) -> bytes:
    """A ``.npy`` file as numpy lays it out, with any descr (numpy.save writes only its own)."""
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape}, }}"
    header = text.encode("utf-8" if version == 3 else "latin-1")
    size_fmt = "<H" if version == 1 else "<I"
    lead = 8 + struct.calcsize(size_fmt)
    header += b" " * (-(lead + len(header) + 1) % pad_to) + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(size_fmt, len(header)) + header + body


def npz_bytes(members: dict[str, bytes], deflate: bool) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def variants(payload: PayloadFor) -> Iterator[Variant]:
    import numpy as np

    def evil(name: str, protocol: int = 3) -> bytes:
        return pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), protocol)

    for label, descr in OBJECT_DESCRS.items():
        for version in (1, 2, 3):
            name = f"npy_v{version}_{label}"
            yield Variant(FAMILY, name, "arr.npy", npy_bytes(descr, evil(name), version), "numpy")
        name = f"npz_{label}"
        inner = npy_bytes(descr, evil(name))
        yield Variant(FAMILY, name, "arrs.npz", npz_bytes(
            {"w.npy": npy_bytes("<f4", np.zeros(4, "<f4").tobytes(), shape="(4,)"),
             "x.npy": inner}, deflate=len(label) % 2 == 1), "numpy")
    # npz members whose local headers lie (zipfile trusts the central directory).
    from differential.families.containers_zip import _local_lies

    for how in ("sizes", "big_sizes", "names", "no_descriptor_flag"):
        name = f"npz_local_{how}"
        packed = npz_bytes({"x.npy": npy_bytes("|O", evil(name))}, deflate=how != "names")
        yield Variant(FAMILY, name, "arrs.npz", _local_lies(packed, how), "numpy")
    # Header quirks: Python 2 long literals, a padding-heavy header, protocol 0 and 5 data.
    name = "npy_py2_long"
    py2 = npy_bytes("|O", evil(name), shape="(1L,)")
    yield Variant(FAMILY, name, "arr.npy", py2, "numpy")
    name = "npy_big_header"
    yield Variant(FAMILY, name, "arr.npy", npy_bytes("|O", evil(name), 2, pad_to=200_000),
                  "numpy")
    for protocol in (0, 5):
        name = f"npy_pickle_p{protocol}"
        yield Variant(FAMILY, name, "arr.npy", npy_bytes("O", evil(name, protocol)), "numpy")
    yield from _numpy_written(payload, np)
    yield from _benign(np)


def _numpy_written(payload: PayloadFor, np: object) -> Iterator[Variant]:
    """Files numpy.save / savez write themselves, with the payload inside an object array."""
    numpy = np

    def obj_array(name: str, dtype: object) -> object:
        arr = numpy.empty(2, dtype=dtype)  # type: ignore[attr-defined]
        item = Reduce(builtins.exec, payload(key_of(FAMILY, name)))
        if getattr(arr.dtype, "names", None):
            arr["a"][0] = item
        else:
            arr[0] = item
        return arr

    dtypes = {"object": object, "metadata": numpy.dtype("O", metadata={"k": 1}),  # type: ignore[attr-defined]
              "structured": [("a", "O"), ("b", "<f4")], "structured_aligned":
              numpy.dtype([("a", "O"), ("b", "u1")], align=True)}  # type: ignore[attr-defined]
    for label, dtype in dtypes.items():
        name = f"saved_{label}"
        out = io.BytesIO()
        numpy.save(out, obj_array(name, dtype), allow_pickle=True)  # type: ignore[attr-defined]
        yield Variant(FAMILY, name, "arr.npy", out.getvalue(), "numpy")
        for compressed in (False, True):
            name = f"savez_{label}_{'deflated' if compressed else 'stored'}"
            out = io.BytesIO()
            save = numpy.savez_compressed if compressed else numpy.savez  # type: ignore[attr-defined]
            save(out, w=numpy.ones(3), x=obj_array(name, dtype))  # type: ignore[attr-defined]
            yield Variant(FAMILY, name, "arrs.npz", out.getvalue(), "numpy")


def _benign(np: object) -> Iterator[Variant]:
    """Real arrays of every dtype numpy saves, including object arrays of plain data."""
    numpy = np
    arrays = {
        code: numpy.zeros(3, dtype=code)  # type: ignore[attr-defined]
        for code in ("?", "i1", "u1", "<i2", ">i4", "<i8", "<u8", "<f2", "<f4", ">f8", "<c8",
                     "<c16", "S4", "<U3", "V5", "<M8[D]", "<m8[s]")
    }
    arrays["structured"] = numpy.zeros(2, dtype=[("a", "<i4"), ("Object", "<f8")])  # type: ignore[attr-defined]
    arrays["nested"] = numpy.zeros(2, dtype=[("O", [("OO", "<f4", (2,))])])  # type: ignore[attr-defined]
    arrays["title"] = numpy.zeros(2, dtype=[(("Obj title", "o"), "<i2")])  # type: ignore[attr-defined]
    arrays["object_plain"] = numpy.array([1, "two", 3.0, None], dtype=object)  # type: ignore[attr-defined]
    arrays["object_struct"] = numpy.zeros(2, dtype=[("a", "O"), ("b", "<i4")])  # type: ignore[attr-defined]
    arrays["scalar"] = numpy.float64(3.5)  # type: ignore[attr-defined]
    arrays["unicode_names"] = numpy.zeros(2, dtype=[("\u00e9t\u00e9", "<f4")])  # type: ignore[attr-defined]
    for label, arr in arrays.items():
        safe = label.replace("<", "le").replace(">", "be").replace("?", "bool").replace(
            "[", "_").replace("]", "")
        out = io.BytesIO()
        numpy.save(out, arr, allow_pickle=True)  # type: ignore[attr-defined]
        yield Variant(FAMILY, f"benign_npy_{safe}", "arr.npy", out.getvalue(), "numpy",
                      malicious=False)
    for compressed in (False, True):
        out = io.BytesIO()
        save = numpy.savez_compressed if compressed else numpy.savez  # type: ignore[attr-defined]
        save(out, **{f"a{i}": a for i, a in enumerate(arrays.values())})
        yield Variant(FAMILY, f"benign_npz_{'deflated' if compressed else 'stored'}",
                      "arrs.npz", out.getvalue(), "numpy", malicious=False)
