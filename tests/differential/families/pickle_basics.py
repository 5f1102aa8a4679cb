"""Family: plain pickles of a payload in every protocol, and benign twins.

The baseline of the harness: each protocol's own spelling of ``exec(payload)`` written by
CPython's pickler through ``__reduce__``, plus the same objects without a payload.
"""

from __future__ import annotations

import builtins
import pickle
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "pickle-basics"


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        name = f"exec_p{protocol}"
        data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), protocol)
        yield Variant(FAMILY, name, "model.pkl", data, "pickle")
        benign = pickle.dumps({"weights": [0.5, 1.5], "n": protocol}, protocol)
        yield Variant(FAMILY, f"benign_p{protocol}", "model.pkl", benign, "pickle",
                      malicious=False)
