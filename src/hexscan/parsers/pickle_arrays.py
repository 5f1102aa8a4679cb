"""What joblib writes after a pickled array wrapper: how many bytes, and whether they are a pickle.

``NumpyArrayWrapper`` pickles only dtype and shape; joblib then writes the array's bytes after
the pickle, or a second pickle when the dtype holds Python objects. The pickle machine reads
the symbolic dtype and shape with these helpers to know which of the two follows.
"""

from __future__ import annotations

import math
from typing import Any

from hexscan.parsers.pickle_values import CallResult, Seq

_JOBLIB_WRAPPERS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    }
)


#: numpy's dtype flag (state item 7 of a pickled dtype) for "holds Python objects".
_NPY_ITEM_HASOBJECT = 0x01


def _dtype_itemsize(dtype: Any) -> int | str | None:
    """Item size of a symbolic ``numpy.dtype(code, ...)`` value; ``"object"`` for object dtypes."""
    if not (isinstance(dtype, CallResult) and dtype.args and isinstance(dtype.args[0], str)):
        return None
    code = dtype.args[0].lstrip("<>=|")
    if code[:1] == "O" or code == "T":
        return "object"
    state = dtype.attrs.get("__state__")
    if (
        isinstance(state, Seq)
        and len(state.items) > 7
        and isinstance(state.items[7], int)
        and state.items[7] & _NPY_ITEM_HASOBJECT
    ):
        return "object"  # a structured dtype with an object field: joblib pickles the data
    if (
        isinstance(state, Seq)
        and len(state.items) > 5
        and isinstance(state.items[5], int)
        and state.items[5] > 0
    ):
        return state.items[5]
    digits = code[1:]
    return int(digits) if digits.isdigit() else None


def _shape_count(shape: Any) -> int | None:
    if not (
        isinstance(shape, Seq)
        and shape.complete
        and all(isinstance(n, int) and n >= 0 for n in shape.items)
    ):
        return None
    return int(math.prod(shape.items))
