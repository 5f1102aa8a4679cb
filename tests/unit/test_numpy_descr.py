"""hex's ``hasobject`` for ``.npy`` descrs equals numpy's, over a grid of spellings.

numpy unpickles an array's data when ``descr_to_dtype(descr).hasobject``; hex answers the same
question without numpy (parsers/numpy.py). Every descr numpy accepts must get numpy's answer;
a descr numpy rejects may get any answer (nothing is unpickled then).
"""

from __future__ import annotations

import io
import itertools
import string
import warnings

import pytest

from hexscan.errors import ParseError
from hexscan.parsers.numpy import descr_hasobject, read_npy_header

np = pytest.importorskip("numpy")
from numpy.lib.format import descr_to_dtype  # noqa: E402

_ORDERS = ("", "<", ">", "|", "=")


def _names() -> list[str]:
    names = set(np.sctypeDict) | {"object", "object_", "str", "bytes", "int", "float"}
    for code in string.ascii_letters + "?":
        names.add(code)
        names.update(f"{code}{size}" for size in (0, 1, 2, 4, 8, 16))
    names.update({"M8[ns]", "m8[D]", "M8", "S", "U", "V"})
    return sorted(str(n) for n in names)


def _numpy_answer(descr: object) -> bool | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(descr_to_dtype(descr).hasobject)
        except Exception:  # noqa: BLE001 - any rejection means "nothing is unpickled"
            return None


def _grid() -> list[object]:
    names = _names()
    simple = [order + name for order, name in itertools.product(_ORDERS, names)]
    commas = [f"{a},{b}" for a, b in itertools.product(("i4", "O", "f8", "object", "T"),
                                                       ("O", "<f4", "object", "S3", "T"))]
    commas += ["i4 , O", "O,", "(2,)O", "2O", "3object", "i4,(2,3)O", "(2)O", "(2,3)f8",
               "O, O", "2T", "<(2,)O", ">2i4", "i4,,O", "O O", "O\t", "f8 "]
    structured: list[object] = [
        [("a", "O")], [("a", "<i4"), ("b", "|O")], [("a", "|O", (2,))],
        [(("title", "a"), "|O")], [("a", [("b", "<f8"), ("c", "|O")])], [("a", "<f8")],
        [("Object", "<f8")], [("O", [("OO", "<f4", (2,))])], [("", "|V4"), ("a", "O")],
        [("a", ("O", (2,)))], [("x", "object")], [("x", "i4,O")], [("a", "T")],
        ("|O", (2,)), ("O", 2), (("O", (2,)), (3,)), ([("a", "O")], (2,)), ("<f4", (2,)),
        ("V", 8), [("a",)], [("a", "O", (2,), 1)], [], 5, None, {"a": "O"}, ("O",),
    ]
    return simple + commas + structured


def test_hasobject_matches_numpy_on_every_accepted_spelling() -> None:
    accepted = [(d, _numpy_answer(d)) for d in _grid()]
    accepted = [(d, want) for d, want in accepted if want is not None]
    assert len(accepted) > 400
    assert sum(want for _, want in accepted) >= 40, "the grid must hold many object spellings"
    wrong = [(d, want) for d, want in accepted if descr_hasobject(d) is not want]
    assert not wrong


def _npy(descr: object, version: int, shape: str = "(1,)", pad: int = 0) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape}, }}" + " " * pad
    header = (text + "\n").encode("utf-8" if version == 3 else "latin-1")
    size = len(header).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + b"DATA"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_header_versions_and_data_offset(version: int) -> None:
    data = _npy("|O", version)
    header = read_npy_header(io.BytesIO(data))
    assert header.objects is True
    assert data[header.data_offset:] == b"DATA"


def test_numpy_written_headers_are_read_like_numpy() -> None:
    for arr in (np.zeros(3, "<f4"), np.array([1, None], dtype=object),
                np.zeros(2, dtype=[("a", "O"), ("b", "<i4")]),
                np.zeros(2, dtype=[("\u00e9", "<f4")])):
        out = io.BytesIO()
        np.save(out, arr, allow_pickle=True)
        header = read_npy_header(io.BytesIO(out.getvalue()))
        assert header.objects is bool(arr.dtype.hasobject)
        if not arr.dtype.hasobject:
            assert header.data_offset == len(out.getvalue()) - arr.nbytes


def test_python2_long_literals_are_filtered_for_v1_and_v2_only() -> None:
    assert read_npy_header(io.BytesIO(_npy("|O", 1, "(1L,)"))).shape == (1,)
    with pytest.raises(ParseError):
        read_npy_header(io.BytesIO(_npy("|O", 3, "(1L,)")))


def test_a_header_larger_than_the_identification_head_is_read_whole() -> None:
    data = _npy("O", 2, pad=300_000)
    header = read_npy_header(io.BytesIO(data))
    assert header.objects is True and data[header.data_offset:] == b"DATA"


def test_padding_beyond_the_kept_header_is_read_through_not_held() -> None:
    data = _npy("|O", 2, pad=3 * 1024 * 1024)
    header = read_npy_header(io.BytesIO(data))
    assert header.objects is True and data[header.data_offset:] == b"DATA"
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + " " * 2_200_000 + "x\n"
    raw = text.encode("latin-1")
    bad = b"\x93NUMPY\x02\x00" + len(raw).to_bytes(4, "little") + raw
    with pytest.raises(ParseError):
        read_npy_header(io.BytesIO(bad))


@pytest.mark.parametrize("data", [b"\x93NUMPY\x04\x00\x10\x00", b"\x93NUMPY\x01\x00\xff\x00{",
                                  _npy("O", 1)[:-30], b"\x93NUMPY\x01\x00\x05\x00[1,2]"])
def test_broken_headers_are_parse_errors(data: bytes) -> None:
    with pytest.raises(ParseError):
        read_npy_header(io.BytesIO(data))


def test_deeply_nested_descr_is_bounded() -> None:
    descr: object = "O"
    for _ in range(200):
        descr = [("a", descr)]
    assert descr_hasobject(descr) is None
