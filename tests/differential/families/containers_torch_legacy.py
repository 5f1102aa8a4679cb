"""Family: torch < 0.4 tar checkpoints, loaded by today's ``torch.load`` (``legacy_load``).

The tar holds ``sys_info``, ``pickle`` (the object, storages by persistent id), ``storages``
and ``tensors``. ``storages`` is a pickle of the count, then per storage a pickle of
``(key, location, storage_type)`` followed by raw bytes (an int64 element count and the
data), then a pickle of the storage views; ``tensors`` is a pickle of the count, then per
tensor a pickle of ``(key, storage_id, type)`` and raw sizes, strides and offset. torch
unpickles every one of those pickles. No torch release writes the format any more, so the
members are assembled here with ``pickle`` and ``tarfile``; the malicious variants put the
payload in each pickle position in turn, the benign twins carry raw storage bytes that
look like pickles (which torch never unpickles).
"""

from __future__ import annotations

import builtins
import io
import pickle
import struct
import sys
import tarfile
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "containers-torch-legacy"

_POSITIONS = ("storages_count", "storage_args_0", "storage_args_1", "storage_args_2",
              "storage_views", "tensors_count", "tensor_args_0", "tensor_args_1", "pickle")


class _Ref:
    """A persistent reference to a tensor key, as torch's legacy pickle wrote it."""

    def __init__(self, key: str) -> None:
        self.key = key


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        return obj.key if isinstance(obj, _Ref) else None


def _dumps(obj: object, protocol: int = 2) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol).dump(obj)
    return out.getvalue()


#: Raw storage data that reads like a pickle calling os.system (torch only copies it).
_DECOY = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def legacy_tar(evil_at: str | None, evil: object, protocol: int = 2,
               decoy: bool = False) -> bytes:
    """A legacy tar checkpoint of three float storages and two tensors."""
    import torch

    def part(position: str, value: object) -> bytes:
        return _dumps(evil if position == evil_at else value, protocol)

    raw_storages = [struct.pack("<4f", 1, 2, 3, 4), struct.pack("<2f", 5, 6),
                    (_DECOY + b"\x00" * (-len(_DECOY) % 4)) if decoy else struct.pack("<f", 7)]
    storages = part("storages_count", len(raw_storages))
    for i, raw in enumerate(raw_storages):
        storages += part(f"storage_args_{i}", (i, "cpu", torch.FloatStorage))
        storages += struct.pack("<q", len(raw) // 4) + raw
    storages += part("storage_views", [])
    tensors = part("tensors_count", 2)
    for i, (storage, numel) in enumerate(((0, 4), (1, 2))):
        tensors += part(f"tensor_args_{i}", (10 + i, storage, torch.FloatTensor))
        tensors += struct.pack("<ii", 1, 0) + struct.pack("<q", numel) + struct.pack("<q", 1)
        tensors += struct.pack("<q", 0)
    main = part("pickle", {"w0": _Ref("10"), "w1": _Ref("11"), "epoch": 3})
    sys_info = _dumps({"protocol_version": 1001, "little_endian": sys.byteorder == "little",
                       "type_sizes": {"short": 2, "int": 4, "long": 4}})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("sys_info", sys_info), ("pickle", main), ("storages", storages),
                           ("tensors", tensors)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for position in _POSITIONS:
        for protocol in (0, 2, 4):
            name = f"{position}_p{protocol}"
            evil = Reduce(builtins.exec, payload(key_of(FAMILY, name)))
            yield Variant(FAMILY, name, "model.pt", legacy_tar(position, evil, protocol),
                          "torch")
        name = f"{position}_decoy"
        evil = Reduce(builtins.exec, payload(key_of(FAMILY, name)))
        yield Variant(FAMILY, name, "model.pt", legacy_tar(position, evil, 2, decoy=True),
                      "torch")
    for protocol in (0, 2, 4):
        yield Variant(FAMILY, f"benign_p{protocol}", "model.pt",
                      legacy_tar(None, None, protocol), "torch", malicious=False)
    yield Variant(FAMILY, "benign_decoy_bytes", "model.pt", legacy_tar(None, None, 2, True),
                  "torch", malicious=False)
