"""Family: a whole checkpoint handed to ``torch.storage._load_from_bytes`` inside a pickle.

``_load_from_bytes(b)`` (how plain pickle stores a tensor, so it is allowlisted) runs
``torch.load(io.BytesIO(b), weights_only=False)``: ``b`` may be a torch zip, a legacy stacked
pickle file (a legacy tar is read from real files only, never from bytes), whose own pickles
carry the payload. The variants embed each
kind, in every pickle protocol (protocol 2 spells bytes as ``_codecs.encode``), as a plain
pickle (loader ``pickle``) and inside a torch zip's ``data.pkl`` (loader ``torch``), and one
level deeper (a zip whose pickle embeds a zip). The benign twins are real pickles of tensors
(which torch writes through ``_load_from_bytes``) and the same constructions without payload.
"""

from __future__ import annotations

import builtins
import io
import pickle
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "containers-nested-bytes"


def _torch_save(obj: object, zipped: bool = True) -> bytes:
    import torch

    out = io.BytesIO()
    torch.save(obj, out, _use_new_zipfile_serialization=zipped)
    return out.getvalue()


def variants(payload: PayloadFor) -> Iterator[Variant]:
    import torch
    from torch.storage import _load_from_bytes

    def evil(name: str) -> Reduce:
        return Reduce(builtins.exec, payload(key_of(FAMILY, name)))

    inner_kinds = {
        "zip": lambda name: _torch_save({"m": evil(name)}),
        "legacy": lambda name: _torch_save({"m": evil(name)}, zipped=False),
        "zip_in_zip": lambda name: _torch_save(
            {"m": Reduce(_load_from_bytes, _torch_save({"n": evil(name)}))}),
    }
    for kind, make in inner_kinds.items():
        for protocol in (2, 3, 4, 5):
            name = f"pickle_{kind}_p{protocol}"
            outer = pickle.dumps({"w": Reduce(_load_from_bytes, make(name))}, protocol)
            yield Variant(FAMILY, name, "model.pkl", outer, "pickle")
        name = f"torch_{kind}"
        yield Variant(FAMILY, name, "model.pt",
                      _torch_save({"w": Reduce(_load_from_bytes, make(name))}), "torch")
        name = f"torch_legacy_outer_{kind}"
        yield Variant(FAMILY, name, "model.pt", _torch_save(
            {"w": Reduce(_load_from_bytes, make(name))}, zipped=False), "torch")
    tensors = {"t": torch.arange(6.0).reshape(2, 3), "i": torch.tensor([1, 2, 3])}
    for protocol in (2, 3, 4, 5):
        yield Variant(FAMILY, f"benign_tensor_pickle_p{protocol}", "model.pkl",
                      pickle.dumps(tensors, protocol), "pickle", malicious=False)
    yield Variant(FAMILY, "benign_embedded_zip", "model.pkl", pickle.dumps(
        {"w": Reduce(_load_from_bytes, _torch_save({"a": [1.0]}))}, 4), "pickle",
        malicious=False)
    yield Variant(FAMILY, "benign_torch_of_tensor_pickle", "model.pt", _torch_save(
        {"blob": pickle.dumps(tensors, 2)}), "torch", malicious=False)
