"""Family: ordinary objects of the stdlib and the ML libraries, and payloads hidden inside them.

The benign twins are the allowlist generator's own catalogue (``tools/policy/pickle_catalogue.py``)
written the way users write them: ``pickle.dumps`` in every protocol, ``joblib.dump``,
``torch.save`` (zip and legacy); the real loaders prove they load. The malicious variants reuse
the same containers (a DataFrame column, a Series' attrs, an estimator attribute, an object array,
a state dict) to carry a payload object, and walk from an allowlisted function to ``exec``
through getattr lookups that hex resolves statically (resolution must not launder the target).
"""

from __future__ import annotations

import builtins
import io
import pickle
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regression.pickle_asm import glob, sstr, tup, ustr
from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "pickle-benign-objects"
_TOOLS = Path(__file__).resolve().parents[3] / "tools" / "policy"
_PLAIN_PICKLE_SKIPPED = {("torch", "modules"), ("torch", "optimizer-state")}
"""Plain pickles with more nested torch archives than hex's budget: reported as a limit (MEDIUM),
covered with that tolerance in tests/e2e/test_benign_catalogue.py."""


def _catalogue() -> Iterator[tuple[str, str, Any, bool]]:
    """(library, label, object, whether a plain pickle of it loads back)."""
    if str(_TOOLS) not in sys.path:
        sys.path.insert(0, str(_TOOLS))
    from pickle_catalogue import BUILDERS, TORCH_SAVE_ONLY

    for library, build in BUILDERS.items():
        try:
            entries = list(build())
        except ImportError:
            continue
        for label, obj in entries:
            yield library, label, obj, label not in TORCH_SAVE_ONLY


def _benign(library: str, label: str, obj: Any, plain: bool) -> Iterator[Variant]:
    stem = f"{library}-{label}"
    protocols = (2, 5) if library == "sklearn" else range(pickle.HIGHEST_PROTOCOL + 1)
    if plain and (library, label) not in _PLAIN_PICKLE_SKIPPED:
        for protocol in protocols:
            try:
                data = pickle.dumps(obj, protocol)
            except (TypeError, pickle.PicklingError, AttributeError):
                continue
            yield Variant(FAMILY, f"{stem}-p{protocol}", "model.pkl", data, "pickle",
                          malicious=False)
    if library in ("numpy", "pandas", "scipy", "sklearn", "lightgbm"):
        import joblib

        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        yield Variant(FAMILY, f"{stem}-joblib", "model.joblib", buffer.getvalue(), "joblib",
                      malicious=False)
    if library == "torch":
        import torch

        for legacy in (False, True) if plain else (False,):
            buffer = io.BytesIO()
            torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
            yield Variant(FAMILY, f"{stem}-torch{'-legacy' if legacy else ''}", "model.pt",
                          buffer.getvalue(), "torch", malicious=False)


def _hidden_in_containers(payload: PayloadFor) -> Iterator[Variant]:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    def bomb(name: str) -> Reduce:
        return Reduce(builtins.exec, payload(key_of(FAMILY, name)))

    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        name = f"frame-column-payload-p{protocol}"
        frame = pd.DataFrame({"x": [1, 2], "obj": [bomb(name), "b"]})
        yield Variant(FAMILY, name, "frame.pkl", pickle.dumps(frame, protocol), "pickle")
        name = f"series-attrs-payload-p{protocol}"
        series = pd.Series([1.0, 2.0], index=pd.date_range("2024", periods=2, tz="UTC"))
        series.attrs["meta"] = bomb(name)
        yield Variant(FAMILY, name, "series.pkl", pickle.dumps(series, protocol), "pickle")
    estimator = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    estimator.extra_ = bomb("estimator-attribute-payload")
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    yield Variant(FAMILY, "estimator-attribute-payload", "model.joblib", buffer.getvalue(),
                  "joblib")
    array = np.array([bomb("object-array-payload"), 1.5], dtype=object)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    yield Variant(FAMILY, "object-array-payload", "array.npy", buffer.getvalue(), "numpy")


def _hidden_in_torch(payload: PayloadFor) -> Iterator[Variant]:
    import torch

    state = torch.nn.Linear(2, 2).state_dict()
    for legacy in (False, True):
        name = f"state-dict-payload{'-legacy' if legacy else ''}"
        state["extra"] = Reduce(builtins.exec, payload(key_of(FAMILY, name)))
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
        yield Variant(FAMILY, name, "model.pt", buffer.getvalue(), "torch")


def _lookup(obj: bytes, name: bytes) -> bytes:
    return glob("builtins", "getattr") + tup(obj, name) + b"R"


def _resolved_getattr_walks(payload: PayloadFor) -> Iterator[Variant]:
    """fractions.Fraction.__new__.__globals__.get('__builtins__').get('exec')(payload): every
    lookup has a constant object and name, so hex resolves each one; the targets are judged."""
    for spelling, text in (("binunicode", ustr), ("string", sstr)):
        name = f"resolved-getattr-walk-{spelling}"
        new = _lookup(glob("fractions", "Fraction"), text("__new__"))
        namespace = _lookup(new, text("__globals__"))
        builtins_dict = _lookup(namespace, text("get")) + tup(text("__builtins__")) + b"R"
        exec_ = _lookup(builtins_dict, text("get")) + tup(text("exec")) + b"R"
        body = exec_ + tup(text(payload(key_of(FAMILY, name)))) + b"R"
        yield Variant(FAMILY, name, "model.pkl", b"\x80\x02" + body + b".", "pickle")


def variants(payload: PayloadFor) -> Iterator[Variant]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for library, label, obj, plain in _catalogue():
            yield from _benign(library, label, obj, plain)
        yield from _hidden_in_containers(payload)
        yield from _hidden_in_torch(payload)
    yield from _resolved_getattr_walks(payload)
