"""Family: library classes whose own ``__setstate__`` runs code from the pickled state.

SciPy distributions rebuild their argument parsers with ``exec(self._parse_arg_template)`` in
``rv_generic.__setstate__``. The variants are real distribution objects (continuous, discrete,
frozen, with and without shapes) pickled by CPython after their template was extended with the
payload, in several protocols; the twins are the same objects untouched. Nothing in the pickle
names a dangerous global: the library does the exec.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "library-setstate"


def _distributions() -> dict[str, object]:
    import scipy.stats as st

    return {"poisson": st.poisson, "norm": st.norm, "gamma": st.gamma,
            "binom": st.binom, "frozen_norm": st.norm(1.0, 2.0),
            "frozen_beta": st.beta(2.0, 3.0)}


def _with_template(dist: object, extra: str) -> object:
    clone = copy.deepcopy(dist)
    target = clone.dist if hasattr(clone, "dist") else clone
    target._parse_arg_template = target._parse_arg_template + extra  # type: ignore[attr-defined]
    return clone


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for label, dist in _distributions().items():
        for protocol in (2, 4, 5):
            name = f"{label}_p{protocol}"
            code = payload(key_of(FAMILY, name))
            evil = _with_template(dist, f"\n{code}\n")
            yield Variant(FAMILY, name, "dist.pkl", pickle.dumps(evil, protocol), "pickle")
            yield Variant(FAMILY, f"{name}_twin", "dist.pkl", pickle.dumps(dist, protocol),
                          "pickle", malicious=False)
        # the payload hidden in a default value of one of the three methods
        name = f"{label}_default"
        code = payload(key_of(FAMILY, name))
        dist2 = copy.deepcopy(dist)
        target = dist2.dist if hasattr(dist2, "dist") else dist2
        target._parse_arg_template = target._parse_arg_template.replace(  # type: ignore[attr-defined]
            "moments='mv'", f"moments=exec({code!r})", 1)
        yield Variant(FAMILY, name, "dist.pkl", pickle.dumps(dist2, 4), "pickle")
