"""A broad catalogue of ordinary objects, built by the real libraries installed here.

It is shared by the allowlist generator (``gen_pickle_allowlist.py``: which globals do these
objects' pickles use, and how) and by the tests that pickle the same objects in every protocol and
require hex to stay quiet on them. Each builder returns ``(label, object)`` pairs; a library that is
not installed contributes nothing (its absence is reported by :func:`library_versions`).
"""

from __future__ import annotations

import array
import collections
import datetime
import decimal
import enum
import fractions
import importlib
import ipaddress
import pathlib
import re
import types
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

Entry = tuple[str, Any]
LIBRARIES = ("numpy", "pandas", "pyarrow", "scipy", "sklearn", "torch", "joblib", "lightgbm",
             "xgboost", "transformers", "tokenizers")


def library_versions() -> dict[str, str]:
    """Installed versions of the catalogue's libraries (absent ones are left out)."""
    import platform

    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: S112 - a library that does not import is simply not catalogued
            continue
        versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def stdlib() -> Iterator[Entry]:
    """Value types of the standard library (the catalogue's own enum stands for user enums)."""
    aware = datetime.datetime(2024, 5, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    yield from [
        ("datetime-naive", datetime.datetime(2024, 5, 1, 12, 30)),
        ("datetime-zoneinfo", aware),
        ("datetime-utc", datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)),
        ("datetime-offset", datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone(
            datetime.timedelta(hours=-3), "BRT"))),
        ("zoneinfo", zoneinfo.ZoneInfo("America/New_York")),
        ("date-time-delta", (datetime.date(2024, 1, 2), datetime.time(3, 4, 5),
                             datetime.timedelta(days=3, seconds=7))),
        ("decimal", [decimal.Decimal("1.10"), decimal.Decimal("NaN"), decimal.Context(prec=5)]),
        ("fraction", fractions.Fraction(3, 7)),
        ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
        ("ipaddress", [ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("::1"),
                       ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_interface("10.1.2.3/24"),
                       ipaddress.ip_network("2001:db8::/32")]),
        ("pathlib", [pathlib.PurePosixPath("/a/b"), pathlib.PureWindowsPath("c:/x"),
                     pathlib.Path("rel/path")]),
        ("re-pattern", re.compile(r"\w+", re.IGNORECASE | re.MULTILINE)),
        ("re-flags", [re.IGNORECASE, re.DOTALL | re.VERBOSE, re.ASCII]),
        ("enum-stdlib", [uuid.SafeUUID.safe, re.RegexFlag.IGNORECASE, enum.FlagBoundary.STRICT,
                         _pstats_sort()]),
        ("intflag", [re.NOFLAG, re.I | re.M | re.S, re.RegexFlag(0x3000)]),
        ("collections", [collections.OrderedDict(a=1), collections.defaultdict(list, b=[1]),
                         collections.deque([1, 2], maxlen=5), collections.Counter("abca"),
                         collections.ChainMap({"a": 1}, {"b": 2})]),
        ("array", [array.array("d", [1.0, 2.5]), array.array("b", [1, -2]), array.array("u", "hi"),
                   array.array("Q", [2**63])]),
        ("builtins", [bytearray(b"ab\x00"), complex(1, -2), range(1, 10, 3), slice(1, None, 2),
                      frozenset({1, 2}), {3, 4}, b"bytes", 2**100, -1.5e300, float("nan"),
                      None, True, Ellipsis, NotImplemented, type(None), int, str, bytes]),
        ("simplenamespace", types.SimpleNamespace(a=1, b="two")),
        ("mappingproxy-free-dict", {"nested": [{"k": (1, 2.0, "s")}]}),
    ]


def _pstats_sort() -> Any:
    import pstats

    return pstats.SortKey.CUMULATIVE


def numpy_objects() -> Iterator[Entry]:
    """Arrays of every dtype kind, scalars, masked/record arrays, random states and generators."""
    import numpy as np

    dtypes = ["bool", "int8", "uint16", "int32", "int64", "uint64", "float16", "float32", "float64",
              "longdouble", "complex64", "complex128", "datetime64[ns]", "timedelta64[s]",
              "U5", "S3", "V4", "object"]
    yield ("arrays", [np.zeros(3, dtype=d) for d in dtypes])
    yield ("scalars", [np.zeros(1, dtype=d)[0] for d in dtypes if d != "object"])
    yield ("dtypes", [np.dtype(d) for d in dtypes] + [np.dtype([("a", "<i4"), ("b", "f8", (2,))]),
                                                      np.dtype(">u2"), np.float32, np.int64])
    yield ("structured", np.zeros(2, dtype=[("x", "i4"), ("y", "U3")]))
    yield ("fortran-empty-0d", [np.asfortranarray(np.ones((2, 3))), np.empty((0, 4)),
                                np.array(5.0), np.arange(12).reshape(3, 4)[:, ::2]])
    yield ("masked", np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]))
    yield ("recarray", np.rec.fromarrays([np.arange(2), np.ones(2)], names="a,b"))
    yield ("matrix", np.matrix([[1, 2], [3, 4]]))
    yield ("random-state", np.random.RandomState(0))
    bit_generators = [np.random.PCG64DXSM(2), np.random.Philox(3), np.random.SFC64(4),
                      np.random.MT19937(5)]
    yield ("random-generators", [np.random.default_rng(1), np.random.SeedSequence(6),
                                 *bit_generators,
                                 *(np.random.Generator(b) for b in bit_generators)])


def pandas_objects() -> Iterator[Entry]:
    """Frames, series and every Index kind, with the extension dtypes users pickle."""
    import numpy as np
    import pandas as pd

    n = 4
    naive = pd.date_range("2024-01-01", periods=n, freq="D")
    aware = pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Berlin")
    frame = pd.DataFrame({
        "int": np.arange(n), "float": np.linspace(0, 1, n), "str": list("abcd"),
        "naive": naive, "aware": aware, "utc": naive.tz_localize("UTC"),
        "period": pd.period_range("2024-01", periods=n, freq="M"),
        "interval": pd.interval_range(0, n), "timedelta": pd.to_timedelta(np.arange(n), unit="s"),
        "category": pd.Categorical(list("xyxz")), "ordered": pd.Categorical(list("abab"),
                                                                             ordered=True),
        "sparse": pd.arrays.SparseArray([0, 0, 1, 0]), "Int64": pd.array([1, None, 3, 4], "Int64"),
        "UInt8": pd.array([1, None, 3, 4], "UInt8"), "Float64": pd.array([1.5, None, 3, 4],
                                                                          "Float64"),
        "boolean": pd.array([True, None, False, True], "boolean"),
        "string": pd.array(["a", None, "c", "d"], "string[python]"),
        "bool": [True, False, True, False], "object": [{"a": 1}, [1], (2,), None],
    })
    yield ("frame-mixed", frame)
    yield ("frame-attrs-flags", frame.set_flags(allows_duplicate_labels=False))
    yield ("series", [frame[c] for c in frame.columns])
    yield ("indexes", [
        pd.RangeIndex(0, 10, 2), pd.Index([1, 2, 3]), pd.Index(["a", "b"]),
        pd.Index([1.5, 2.5]), pd.Index([True, False], dtype=bool), naive, aware,
        pd.period_range("2024Q1", periods=3, freq="Q"), pd.interval_range(0, 3, closed="left"),
        pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["l", "n"]),
        pd.CategoricalIndex(list("aab")), pd.timedelta_range("1 day", periods=3),
        pd.Index(pd.array([1, None], "Int64")), pd.DatetimeIndex([]),
    ])
    yield ("scalars", [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01", tz="Asia/Tokyo"),
                       pd.Timestamp("2024-01-01", tz="UTC"), pd.Timedelta("3h"),
                       pd.Period("2024-03", "M"), pd.Interval(0, 1, closed="both"), pd.NaT, pd.NA,
                       pd.DateOffset(months=2), pd.offsets.BusinessDay(3),
                       pd.offsets.MonthEnd(), pd.offsets.Week(weekday=1),
                       pd.offsets.CustomBusinessDay(holidays=["2024-01-01"])])
    yield ("dtypes", [pd.CategoricalDtype(["a", "b"]), pd.DatetimeTZDtype(tz="UTC"),
                      pd.PeriodDtype("D"), pd.IntervalDtype("int64"), pd.SparseDtype(float),
                      pd.Int64Dtype(), pd.BooleanDtype(), pd.StringDtype(), pd.Float32Dtype()])
    yield ("multiindex-frame", frame.iloc[:, :3].set_index(["int", "str"]))
    yield ("wide-frame-columns-mi", pd.DataFrame(np.ones((2, 4)), columns=pd.MultiIndex.from_tuples(
        [("a", 1), ("a", 2), ("b", 1), ("b", 2)])))
    yield from _pyarrow_backed(pd)
    yield ("dateutil-zones", [*_dateutil_zones(), *_dateutil_timestamp(pd)])
    yield ("groupby-free-series-name", pd.Series([1, 2], name=("tuple", "name"),
                                                 index=pd.Index(["x", "y"], name="idx")))


def _dateutil_zones() -> list[Any]:
    """dateutil's zones, which pandas accepts wherever a tz goes (``tz='dateutil/...'``)."""
    from dateutil import tz

    return [tz.tzutc(), tz.tzoffset("BRT", -3 * 3600), tz.gettz("Europe/London"), tz.tzlocal()]


def _dateutil_timestamp(pd: Any) -> list[Any]:
    """A Timestamp in a dateutil zone, where this pandas can localise one (1.5 cannot)."""
    try:
        return [pd.Timestamp("2024-06-01", tz=_dateutil_zones()[2])]
    except (AttributeError, ValueError, TypeError):
        return []


def _pyarrow_backed(pd: Any) -> Iterator[Entry]:
    """Arrow-backed columns (pandas 3 stores every str column this way when pyarrow is present)."""
    try:
        import pyarrow as pa
    except ImportError:
        return
    frame = pd.DataFrame({
        "str": pd.array(["a", None, "c"], dtype="string[pyarrow]"),
        "int": pd.array([1, None, 3], dtype=pd.ArrowDtype(pa.int64())),
        "ts": pd.array(pd.date_range("2024", periods=3, tz="UTC"),
                       dtype=pd.ArrowDtype(pa.timestamp("us", tz="UTC"))),
        "list": pd.array([[1], [2, 3], None], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
        "plain": ["x", "y", "z"],
    })
    yield ("pyarrow-frame", frame)
    yield ("pyarrow-series", [frame[c] for c in frame.columns])


def scipy_objects() -> Iterator[Entry]:
    """Sparse matrices and arrays of every format; frozen distributions."""
    import numpy as np
    from scipy import sparse, stats

    dense = np.array([[0, 1.0], [2.0, 0]])
    formats = ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"]
    yield ("sparse-matrix", [sparse.coo_matrix(dense).asformat(f) for f in formats])
    yield ("sparse-array", [sparse.coo_array(dense).asformat(f) for f in formats])
    yield ("distributions", [stats.norm(0, 1), stats.gamma(2.0), stats.poisson(3)])


def sklearn_objects() -> Iterator[Entry]:
    """Fitted estimators of every family on a tiny data set."""
    from sklearn_catalogue import fitted_estimators

    yield from fitted_estimators()


def torch_objects() -> Iterator[Entry]:
    """Tensors of every dtype (dense, sparse, quantized), modules, optimizers and schedulers."""
    import torch

    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64,
              torch.complex128, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.bool]
    yield ("tensors", [torch.zeros(2, dtype=d) for d in dtypes])
    newer = [torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn, torch.float8_e5m2]
    yield ("tensors-newer-dtypes", [torch.zeros(2, dtype=d) for d in newer])
    dense = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    yield ("sparse", [dense.to_sparse(), dense.to_sparse_csr(), dense.to_sparse_csc(),
                      dense.to_sparse_bsr((1, 1))])
    yield ("quantized", [torch.quantize_per_tensor(dense, 0.1, 0, torch.quint8),
                         torch.quantize_per_channel(dense, torch.tensor([0.1, 0.2]),
                                                    torch.tensor([0, 0]), 0, torch.qint8)])
    yield ("values", [torch.Size([2, 3]), torch.device("cpu"), torch.device("cuda", 0),
                      torch.float32, torch.int64, torch.strided, torch.sparse_coo,
                      torch.per_channel_affine, torch.per_tensor_affine])
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(2, 4), torch.nn.Dropout(0.1),
        torch.nn.LayerNorm(4), torch.nn.GELU(), torch.nn.Embedding(5, 4),
    )
    rnn = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(4, 3, batch_first=True),
                               "gru": torch.nn.GRU(3, 2), "attn": torch.nn.MultiheadAttention(4, 2),
                               "tfm": torch.nn.TransformerEncoderLayer(4, 2, 8)})
    yield ("modules", [model, rnn, torch.nn.Parameter(torch.ones(2))])
    yield ("state-dict", model.state_dict())
    params = list(model.parameters())
    optimizers = [torch.optim.SGD(params, lr=0.1, momentum=0.9), torch.optim.Adam(params),
                  torch.optim.AdamW(params), torch.optim.RMSprop(params),
                  torch.optim.Adagrad(params)]
    loss = sum(p.sum() for p in params)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    yield ("optimizer-state", [o.state_dict() for o in optimizers])
    sgd = optimizers[0]
    schedulers = [torch.optim.lr_scheduler.StepLR(sgd, 2),
                  torch.optim.lr_scheduler.CosineAnnealingLR(sgd, 5),
                  torch.optim.lr_scheduler.ExponentialLR(sgd, 0.9)]
    yield ("scheduler-state", [s.state_dict() for s in schedulers])


def lightgbm_objects() -> Iterator[Entry]:
    """A fitted LightGBM classifier and regressor (scikit-learn API) and a raw Booster."""
    import lightgbm
    import numpy as np

    rng = np.random.RandomState(0)
    features = rng.rand(60, 3)
    labels = (features[:, 0] > 0.5).astype(int)
    params = {"n_estimators": 3, "num_leaves": 4, "min_child_samples": 2, "verbose": -1}
    classifier = lightgbm.LGBMClassifier(**params).fit(features, labels)
    regressor = lightgbm.LGBMRegressor(**params).fit(features, features[:, 1])
    yield ("sklearn-api", [classifier, regressor])
    yield ("booster", classifier.booster_)


_UNKNOWN, _PADDING = "[UNK]", "[PAD]"
"""Special tokens of the catalogue's tokenizers."""


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=_UNKNOWN))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=50, special_tokens=[_UNKNOWN, _PADDING])
    tokenizer.train_from_iterator(["the cat sat on the mat", "a dog ran"] * 5, trainer)
    return tokenizer


def tokenizers_objects() -> Iterator[Entry]:
    """A BPE tokenizer trained in memory (no download) and its parts."""
    from tokenizers import models

    tokenizer = _tokenizer()
    yield ("tokenizer", tokenizer)
    vocabulary = {_UNKNOWN: 0, "a": 1}
    yield ("models", [models.WordPiece(vocabulary, unk_token=_UNKNOWN),
                      models.WordLevel(vocabulary, unk_token=_UNKNOWN)])


def transformers_objects() -> Iterator[Entry]:
    """Model and generation configs, and a fast tokenizer around an in-memory tokenizer."""
    import transformers

    yield ("configs", [transformers.BertConfig(num_hidden_layers=1),
                       transformers.GPT2Config(n_layer=1), transformers.T5Config(),
                       transformers.GenerationConfig(max_new_tokens=5)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=_tokenizer(),
                                                unk_token=_UNKNOWN, pad_token=_PADDING)
    yield ("fast-tokenizer", fast)
    yield ("batch-encoding", fast(["the cat", "a dog ran"], padding=True))
    from transformers.trainer_utils import IntervalStrategy
    from transformers.utils import PaddingStrategy, TensorType

    yield ("enums", [PaddingStrategy.LONGEST, TensorType.PYTORCH, IntervalStrategy.STEPS])


TORCH_SAVE_ONLY = frozenset({"tensors-newer-dtypes"})
"""Labels whose plain pickles and legacy torch.save files torch cannot load back (no storage
type for these dtypes there): only written with the zip torch.save, as users can."""

BUILDERS: dict[str, Callable[[], Iterator[Entry]]] = {
    "stdlib": stdlib,
    "numpy": numpy_objects,
    "pandas": pandas_objects,
    "scipy": scipy_objects,
    "sklearn": sklearn_objects,
    "torch": torch_objects,
    "lightgbm": lightgbm_objects,
    "tokenizers": tokenizers_objects,
    "transformers": transformers_objects,
}
"""Library -> builder. A builder whose library does not import is skipped by the callers."""
