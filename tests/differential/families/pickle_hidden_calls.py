"""Family: calls the unpickler makes by itself, and functools.partial.

APPEND/APPENDS call ``append``/``extend`` on anything that is not a list, ADDITEMS calls
``add`` on anything that is not a set, and BUILD calls ``__setstate__`` when the object has
one. A value planted under such a name (by a BUILD of the object's dict, its slot state, or an
attribute set on its class) is what runs. The callee here is ``differential.gadget.run``, a
function no list knows: imported only it is LOW, called it is HIGH, so a machine that misses the
hidden call lets the variant through. Variants vary the object (an instance of an allowlisted
class, the result of a call), the opcode, the spelling (protocol 0 text or binary) and push the
planted name past every window the machine keeps (hundreds of keys and items before it).

functools.partial: a partial of the gadget that is called (by REDUCE, as REDUCE's callable, or
rebuilt by CPython's own pickling of a partial) runs it. Benign twins are real pickles of
OrderedDict, deque, defaultdict, Counter, sets, SimpleNamespace, argparse.Namespace,
scikit-learn's Bunch (a dict subclass) and ``functools.partial(numpy.add, 1)``, written by
CPython's pickler in every protocol.
"""

from __future__ import annotations

import argparse
import collections
import functools
import pickle
import types
from collections.abc import Callable, Iterator

import numpy
from regression.pickle_asm import glob, sstr, ustr

from differential import gadget
from differential.harness import PayloadFor, Variant, key_of

FAMILY = "pickle-hidden-calls"
LOADERS = ("pickle", "pickle-py")
GADGET = glob("differential.gadget", "run")

# Objects the hidden call is made on (protocol 0 text; each pushes one object).
OBJECTS: dict[str, bytes] = {
    "namespace_call": glob("types", "SimpleNamespace") + b"(tR",
    "namespace_newobj": glob("types", "SimpleNamespace") + b")\x81",
    "argparse_reconstructor": glob("copyreg", "_reconstructor")
    + b"(" + glob("argparse", "Namespace") + glob("builtins", "object") + b"NtR",
    "argparse_namespace": glob("argparse", "Namespace") + b"(tR",
}


def _state(planted: bytes, method: str, filler: int, *, slots: bool) -> bytes:
    """A BUILD state dict ``{k0: 0, ..., method: planted}``, or ``(None, that)`` as slot state."""
    pairs = b"".join(ustr(f"k{i}") + b"K\x00" for i in range(filler))
    mapping = b"(" + pairs + ustr(method) + planted + b"d"
    return b"(N" + mapping + b"t" if slots else mapping


def _trigger(method: str, source: str, filler: int) -> bytes:
    """The opcode that makes the unpickler call ``method`` with the canary source."""
    items = b"".join(b"K\x01" for _ in range(filler))
    if method == "append":
        return sstr(source) + b"a"
    if method == "extend":
        return b"(" + items + sstr(source) + b"e"
    if method == "add":
        return b"(" + items + sstr(source) + b"\x90"
    return sstr(source) + b"b"  # __setstate__: a second BUILD


def _planted(obj: bytes, method: str, source: str, *, filler: int = 0,
             slots: bool = False) -> bytes:
    return (b"\x80\x02" + obj + _state(GADGET, method, filler, slots=slots) + b"b"
            + _trigger(method, source, filler) + b".")


def _cases() -> Iterator[tuple[str, Callable[[str], bytes]]]:
    for obj_name, obj in OBJECTS.items():
        for method in ("append", "extend", "add", "__setstate__"):
            tag = method.strip("_")
            yield f"{obj_name}_{tag}", functools.partial(_planted, obj, method)
            yield f"{obj_name}_{tag}_slots", functools.partial(_planted, obj, method, slots=True)
            yield (f"{obj_name}_{tag}_past_cap",
                   functools.partial(_planted, obj, method, filler=300))
    obj = OBJECTS["namespace_call"]
    # APPENDS falls back to append per item when there is no extend
    yield "appends_fallback_to_append", lambda s: (
        b"\x80\x02" + obj + _state(GADGET, "append", 0, slots=False) + b"b("
        + sstr(s) + b"e.")
    # the C unpickler's APPEND calls extend([x]) when extend exists
    yield "append_uses_extend", lambda s: (
        b"\x80\x02" + obj + _state(GADGET, "extend", 0, slots=False) + b"b" + sstr(s) + b"a.")
    # planted on the class (slot state of a BUILD on the class), called on an instance
    yield "planted_on_class", lambda s: (
        b"\x80\x02" + glob("argparse", "Namespace") + b"(N(" + ustr("append") + GADGET
        + b"dtb0" + glob("argparse", "Namespace") + b"(tR" + sstr(s) + b"a.")
    # planted under a name computed at load time by allowlisted calls: str(PurePosixPath('append'))
    computed = (glob("builtins", "str") + b"(" + glob("pathlib", "PurePosixPath") + b"("
                + sstr("append") + b"tRtR")
    for filler in (0, 300):
        yield f"planted_under_computed_name_{filler}", lambda s, n=filler: (
            b"\x80\x02" + obj + b"(" + b"".join(ustr(f"k{i}") + b"K\x00" for i in range(n))
            + computed + GADGET + b"db" + sstr(s) + b"a.")
    # planted by an allowed helper that sets attributes and returns the object
    yield "planted_by_set_obj_state", lambda s: (
        b"\x80\x02" + glob("torch._utils", "_set_obj_state") + b"(" + obj + b"(" + ustr("append")
        + GADGET + b"dtR" + sstr(s) + b"a.")
    # partial: called by REDUCE, as REDUCE's callable, and as CPython pickles a partial
    yield "partial_called", lambda s: (
        glob("functools", "partial") + b"(" + GADGET + sstr(s) + b"tR(tR.")
    yield "partial_as_callable", lambda s: (
        glob("functools", "partial") + b"(" + GADGET + b"tR(" + sstr(s) + b"tR.")
    yield "partial_newobj", lambda s: (
        b"\x80\x02" + glob("functools", "partial") + b"(" + GADGET + sstr(s) + b"t\x81(tR.")
    for protocol in range(6):
        yield f"partial_pickled_p{protocol}", functools.partial(_pickled_partial, protocol)


class _CallOf:
    """An object whose pickle is ``func()`` (REDUCE with no arguments)."""

    def __init__(self, func: object) -> None:
        self.func = func

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return self.func, ()


def _pickled_partial(protocol: int, source: str) -> bytes:
    """CPython's own pickle of ``functools.partial(gadget.run, source)()``."""
    return pickle.dumps(_CallOf(functools.partial(gadget.run, source)), protocol)


def _benign_values() -> dict[str, object]:
    values: dict[str, object] = {
        "ordered_dict": collections.OrderedDict(a=1, b=[2]),
        "deque": collections.deque([1, 2, 3]),
        "defaultdict": collections.defaultdict(list, {"x": [1]}),
        "counter": collections.Counter("abca"),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a"}),
        "namespace": types.SimpleNamespace(a=1, append=2),
        "argparse": argparse.Namespace(lr=0.1, extend=[1]),
        "partial_numpy_add": functools.partial(numpy.add, 1),
        "big_ordered_dict": collections.OrderedDict((f"k{i}", i) for i in range(600)),
        "big_deque": collections.deque(range(600)),
    }
    try:
        from sklearn.utils import Bunch

        values["bunch"] = Bunch(a=1, b=[1, 2])
    except ImportError:  # scikit-learn is an optional test dependency
        pass
    return values


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for name, build in _cases():
        for loader in LOADERS:
            vname = f"{name}_{loader}"
            yield Variant(FAMILY, vname, "model.pkl", build(payload(key_of(FAMILY, vname))),
                          loader)
    for name, value in _benign_values().items():
        for protocol in range(6):
            data = pickle.dumps(value, protocol)
            for loader in LOADERS:
                yield Variant(FAMILY, f"benign_{name}_p{protocol}_{loader}", "model.pkl", data,
                              loader, malicious=False)
