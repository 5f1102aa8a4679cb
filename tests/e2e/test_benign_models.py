"""No false alarms: models and data written by the real libraries scan with nothing >= MEDIUM.

One session-scoped directory is filled by torch, scikit-learn, joblib, numpy, the stdlib and
(when installed) pandas, then scanned once by ``hex scan``. Whole models of user-defined
classes may be reported LOW (loading them imports the user's code); nothing may be MEDIUM or
above.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import fractions
import os
import pathlib
import pickle
import re
import types
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

SERIOUS = ("CRITICAL", "HIGH", "MEDIUM")
COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


class UserModel:
    """A user's own model class (pickled by reference: LOW is expected, nothing more)."""

    def __init__(self) -> None:
        self.weights = [0.1, 0.2]
        self.name = "user"


Point = collections.namedtuple("Point", "x y")


def _torch(root: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.1),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 8), nn.LayerNorm(8), nn.GELU(),
        nn.Linear(8, 2), nn.Softmax(dim=-1))
    extra = nn.ModuleDict({
        "embed": nn.Embedding(10, 8), "lstm": nn.LSTM(8, 8, batch_first=True),
        "gru": nn.GRU(8, 8), "conv1d": nn.Conv1d(8, 8, 3), "attn": nn.MultiheadAttention(8, 2),
        "encoder": nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
        "stack": nn.ModuleList([nn.Linear(8, 8), nn.Tanh(), nn.Sigmoid(), nn.LeakyReLU()]),
        "norm": nn.GroupNorm(2, 8), "bn1d": nn.BatchNorm1d(8), "prelu": nn.PReLU(),
        "convt": nn.ConvTranspose2d(4, 4, 2), "bilinear": nn.Bilinear(4, 4, 2),
    })
    torch.save(model.state_dict(), root / "sequential_state_dict.pt")
    torch.save(model, root / "sequential_whole.pt")
    torch.save(extra, root / "layers_whole.pth")
    torch.save(extra.state_dict(), root / "layers_state_dict.bin")
    torch.save(model.state_dict(), root / "legacy_state_dict.pt",
               _use_new_zipfile_serialization=False)
    params = list(model.parameters())
    checkpoint: dict[str, Any] = {"epoch": 3, "model": model.state_dict()}
    for name, opt in {"adam": torch.optim.Adam(params, lr=1e-3),
                      "sgd": torch.optim.SGD(params, lr=0.1, momentum=0.9),
                      "adamw": torch.optim.AdamW(params), "rmsprop": torch.optim.RMSprop(params)
                      }.items():
        model(torch.randn(2, 3, 8, 8)).sum().backward()
        opt.step()
        checkpoint[f"opt_{name}"] = opt.state_dict()
    opt = torch.optim.SGD(params, lr=0.1)
    for name, sched in {"step": torch.optim.lr_scheduler.StepLR(opt, 2),
                        "cosine": torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10),
                        "onecycle": torch.optim.lr_scheduler.OneCycleLR(opt, 1.0, 10),
                        "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau(opt)}.items():
        checkpoint[f"sched_{name}"] = sched.state_dict()
    checkpoint["rng"] = torch.get_rng_state()
    torch.save(checkpoint, root / "checkpoint.ckpt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.* deprecation notices
        torch.jit.save(torch.jit.trace(model.eval(), torch.zeros(1, 3, 8, 8)),
                       root / "traced_torchscript.pt")
    torch.save({"half": torch.ones(3, dtype=torch.float16), "int": torch.arange(4),
                "bool": torch.ones(2, dtype=torch.bool),
                "bf16": torch.ones(2, dtype=torch.bfloat16),
                "sparse": torch.eye(3).to_sparse(), "param": nn.Parameter(torch.ones(2)),
                "complex": torch.ones(2, dtype=torch.complex64)}, root / "tensor_kinds.pt")


def _sklearn_models() -> dict[str, Any]:
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.ensemble import (
        AdaBoostClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    texts = [f"word{i % 7} token{i % 3} model" for i in range(60)]
    cats = np.array([["a", "b", "c"][i % 3] for i in range(60)], dtype=object).reshape(-1, 1)
    mixed = np.hstack([x[:, :2], cats])
    models: dict[str, Any] = {
        "count_vectorizer": CountVectorizer().fit(texts),
        "tfidf_vectorizer": TfidfVectorizer(ngram_range=(1, 2)).fit(texts),
        "random_forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=5).fit(x, y),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=5).fit(x, y),
        "svc": SVC(probability=True).fit(x, y),
        "kmeans": KMeans(3, n_init=2, random_state=0).fit(x),
        "pca": PCA(2).fit(x),
        "truncated_svd": TruncatedSVD(2).fit(x),
        "logistic_regression": LogisticRegression().fit(x, y),
        "mlp": MLPClassifier((8,), max_iter=50).fit(x, y),
        "isolation_forest": IsolationForest(n_estimators=5, random_state=0).fit(x),
        "knn_kd_tree": KNeighborsClassifier(3, algorithm="kd_tree").fit(x, y),
        "knn_ball_tree": KNeighborsClassifier(3, algorithm="ball_tree").fit(x, y),
        "decision_tree": DecisionTreeRegressor(max_depth=3).fit(x, x[:, 1]),
        "extra_trees": ExtraTreesRegressor(n_estimators=3).fit(x, x[:, 1]),
        "adaboost": AdaBoostClassifier(n_estimators=3).fit(x, y),
        "ridge": Ridge().fit(x, x[:, 1]),
        "sgd": SGDClassifier(max_iter=20).fit(x, y),
        "gaussian_nb": GaussianNB().fit(x, y),
        "label_encoder": LabelEncoder().fit(["x", "y", "z"]),
        "scaler_pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "column_transformer": Pipeline([
            ("prep", ColumnTransformer([("num", StandardScaler(), [0, 1]),
                                        ("cat", OneHotEncoder(handle_unknown="ignore"), [2])])),
            ("clf", RandomForestClassifier(n_estimators=3, random_state=0))]).fit(mixed, y),
        "grid_search": GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(x, y),
    }
    return models


def _sklearn(root: Path) -> None:
    import joblib

    models = _sklearn_models()
    for name, model in models.items():
        (root / f"{name}.pkl").write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        joblib.dump(model, root / f"{name}.joblib")
    (root / "all_models_proto2.pkl").write_bytes(pickle.dumps(models, protocol=2))
    for method in COMPRESSORS:
        joblib.dump(models["column_transformer"], root / f"pipeline_{method}.joblib",
                    compress=(method, 3))


def _numpy(root: Path) -> None:
    import joblib
    import numpy as np

    arrays: dict[str, Any] = {
        f"dtype_{np.dtype(code).name}": np.arange(6).astype(code).reshape(2, 3)
        for code in ("?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8",
                     "c8", "c16", "M8[s]", "m8[ms]", "U5", "S5")
    }
    arrays["structured"] = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")])
    arrays["object_strings"] = np.array(["alpha", "beta", None, "gamma"], dtype=object)
    arrays["object_mixed"] = np.array([1, "two", 3.0, (4, 5)], dtype=object)
    for name, arr in arrays.items():
        np.save(root / f"{name}.npy", arr, allow_pickle=True)
    np.savez(root / "arrays.npz", **arrays)
    np.savez_compressed(root / "arrays_compressed.npz", **arrays)
    extras = {"masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
              "matrix": np.matrix([[1, 2], [3, 4]]), "scalar": np.float32(1.5),
              "recarray": np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
              "generator": np.random.default_rng(1), "random_state": np.random.RandomState(2),
              "dtype": np.dtype("f8"), "fortran": np.asfortranarray(np.ones((3, 2)))}
    (root / "numpy_objects.pkl").write_bytes(pickle.dumps({**arrays, **extras}, protocol=4))
    (root / "numpy_objects_proto2.pkl").write_bytes(pickle.dumps({**arrays, **extras}, 2))
    for method in COMPRESSORS:
        joblib.dump({**arrays, **extras}, root / f"arrays_{method}.joblib", compress=(method, 3))
    joblib.dump({**arrays, **extras}, root / "arrays_plain.joblib")


def _stdlib(root: Path) -> None:
    ns = argparse.Namespace(lr=0.1, layers=[1, 2], name="run")
    value = {
        "ordered": collections.OrderedDict(a=1), "default": collections.defaultdict(list, a=[1]),
        "deque": collections.deque([1, 2], maxlen=5), "counter": collections.Counter("abca"),
        "date": datetime.date(2024, 1, 2), "time": datetime.time(3, 4),
        "datetime": datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.UTC),
        "delta": datetime.timedelta(days=2), "decimal": decimal.Decimal("1.25"),
        "fraction": fractions.Fraction(1, 3), "uuid": uuid.UUID(int=7),
        "path": pathlib.PurePosixPath("/models/a.bin"), "local": pathlib.Path("relative/b.bin"),
        "regex": re.compile(r"^[a-z]+\d*$", re.I), "namespace": ns,
        "simple": types.SimpleNamespace(a=1, b="x"), "set": {1, 2}, "frozen": frozenset({3}),
        "bytes": b"\x00\x01", "bytearray": bytearray(b"xy"), "complex": 1 + 2j,
        "range": range(3), "slice": slice(1, 5, 2), "none": None, "nested": [[1, {"a": (1,)}]],
    }
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        (root / f"stdlib_protocol{proto}.pkl").write_bytes(pickle.dumps(value, protocol=proto))
    (root / "user_model.pkl").write_bytes(pickle.dumps(
        {"model": UserModel(), "point": Point(1, 2)}, protocol=4))
    (root / "argparse_only.pkl").write_bytes(pickle.dumps(ns))


def _pandas(root: Path) -> None:
    pd = pytest.importorskip("pandas")
    import numpy as np

    frame = pd.DataFrame({
        "i": np.arange(4), "f": np.linspace(0, 1, 4), "s": ["a", "b", "c", "d"],
        "cat": pd.Categorical(["x", "y", "x", "y"]), "b": [True, False, True, False],
        "t": pd.date_range("2024-01-01", periods=4, tz="UTC"),
        "td": pd.to_timedelta([1, 2, 3, 4], unit="s"),
    }, index=pd.Index(["w", "x", "y", "z"], name="key"))
    objects = {"frame": frame, "series": frame["f"], "index": pd.Index([1, 2, 3]),
               "range_index": pd.RangeIndex(5), "timestamp": pd.Timestamp("2024-01-01"),
               "multi": pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]),
               "interval": pd.Interval(0, 1), "period": pd.Period("2024-01", "M")}
    (root / "pandas_objects.pkl").write_bytes(pickle.dumps(objects, protocol=5))
    frame.to_pickle(root / "frame_to_pickle.pkl")


@pytest.fixture(scope="session")
def benign_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("benign")
    for builder in (_torch, _sklearn, _numpy, _stdlib):
        sub = root / builder.__name__.strip("_")
        sub.mkdir()
        builder(sub)
    try:
        (root / "pandas").mkdir()
        _pandas(root / "pandas")
    except pytest.skip.Exception:
        pass
    run = run_hex("scan", str(root), "--json", "--workers", "2", cwd=root)
    assert run.code in (0, 1, 3), run.stderr
    return root, run.json()


def _serious(report: dict[str, Any], sub: str) -> list[str]:
    return [f"{f['severity']} {os.path.basename(f['file_path'])}!{f['member']}: "
            f"{f['description'][:160]}" for f in report["results"]
            if f["severity"] in SERIOUS and f"{os.sep}{sub}{os.sep}" in f["file_path"]]


@pytest.mark.parametrize("sub", ["torch", "sklearn", "numpy", "stdlib"])
def test_nothing_medium_or_above(benign_report: tuple[Path, dict[str, Any]], sub: str) -> None:
    root, report = benign_report
    assert len(list((root / sub).iterdir())) >= 5
    assert not _serious(report, sub)


def test_pandas_objects_are_clean(benign_report: tuple[Path, dict[str, Any]]) -> None:
    pytest.importorskip("pandas")
    _, report = benign_report
    assert not _serious(report, "pandas")


def test_every_benign_file_was_scanned(benign_report: tuple[Path, dict[str, Any]]) -> None:
    root, report = benign_report
    top = {f["path"] for f in report["files"] if f["member"] is None}
    written = {str(p) for p in root.rglob("*") if p.is_file()}
    assert written <= {os.path.realpath(p) for p in top} | top
    assert not [e for e in report["errors"] if e["kind"] in ("crash", "scanner-error")]
    assert report["complete"], report["errors"]


def test_user_classes_are_low_not_silent(benign_report: tuple[Path, dict[str, Any]]) -> None:
    """A whole model of a user's class is never silent: its import is reported at LOW."""
    _, report = benign_report
    lows = [f for f in report["results"] if f["file_path"].endswith("user_model.pkl")]
    assert lows and {f["severity"] for f in lows} == {"LOW"}
    assert any("UserModel" in f["description"] for f in lows)


def test_the_benign_set_is_large_enough(benign_report: tuple[Path, dict[str, Any]]) -> None:
    root, _ = benign_report
    sklearn_kinds = {p.stem for p in (root / "sklearn").glob("*.pkl")} - {"all_models_proto2"}
    assert len(sklearn_kinds) >= 15
    assert len(list((root / "numpy").glob("dtype_*.npy"))) >= 18
    assert {p.name for p in (root / "numpy").glob("arrays_*.joblib")} >= {
        f"arrays_{m}.joblib" for m in COMPRESSORS}
