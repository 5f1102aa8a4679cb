"""The symbolic pickle machine: real pickles built with the standard library, torch and numpy,
and hand-assembled opcode sequences for the evasions payloads use. Nothing is ever unpickled."""

from __future__ import annotations

import base64
import collections
import datetime
import decimal
import fractions
import io
import pathlib
import pickle
import pickletools
import random
import subprocess
import uuid
import zipfile

import pytest

from hexscan.parsers.pickle_values import PROTOCOL_METHODS
from hexscan.parsers.pickle_vm import GlobalUse, PickleLimits, PickleView, analyze_pickle

# ---------------------------------------------------------------------------- helpers


def su(text: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = text.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw


def proto(n: int = 4) -> bytes:
    return pickle.PROTO + bytes([n])


def stack_global(module: str, name: str) -> bytes:
    return su(module) + su(name) + pickle.STACK_GLOBAL


def call1(callee: bytes, arg: bytes) -> bytes:
    """callee(arg) with a one-item tuple."""
    return callee + arg + pickle.TUPLE1 + pickle.REDUCE


def uses(view: PickleView, full: str) -> dict[str, GlobalUse]:
    return {g.use: g for g in view.globals if g.full == full}


def called(view: PickleView) -> dict[str, GlobalUse]:
    """Called globals by written and by canonical (Python 3) name."""
    calls = {g.canonical: g for g in view.globals if g.use == "called"}
    return calls | {g.full: g for g in view.globals if g.use == "called"}


class Payload:
    """An object whose pickle calls ``func(*args)``; pickling never calls it."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


OS_SYSTEM = proto(2) + b"cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R."


# ---------------------------------------------------------------------------- benign values


BENIGN_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    255,
    65535,
    2**31,
    -(2**31),
    2**100,
    -(2**200),
    1.5,
    float("inf"),
    "",
    "text",
    "é" * 300,
    b"",
    b"bytes" * 100,
    bytearray(b"ba"),
    (),
    (1,),
    (1, 2),
    (1, 2, 3),
    tuple(range(10)),
    [],
    [1, [2, [3]]],
    {},
    {"a": 1, 2: "b"},
    {1, 2},
    frozenset({3}),
    complex(1, 2),
    slice(1, 5, 2),
    range(3),
    collections.OrderedDict(a=1),
    collections.deque([1, 2]),
    collections.Counter("abca"),
    collections.defaultdict(list, a=[1]),
    datetime.datetime(2024, 1, 2, 3, 4, 5),
    datetime.date(2024, 1, 1),
    datetime.timedelta(days=2),
    datetime.UTC,
    decimal.Decimal("1.25"),
    fractions.Fraction(1, 3),
    uuid.UUID(int=7),
    pathlib.PurePosixPath("/a/b"),
    pathlib.PureWindowsPath("c:/x"),
]


VALUE_CONSTRUCTORS = {
    "_codecs.encode",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.complex",
    "builtins.frozenset",
    "builtins.range",
    "builtins.set",
    "builtins.slice",
    "collections.Counter",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.deque",
    "copyreg._reconstructor",
    "datetime.date",
    "datetime.datetime",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "uuid.UUID",
}


@pytest.mark.parametrize("protocol", range(6))
def test_benign_values_parse_completely(protocol: int) -> None:
    shared = ["shared"]
    data = pickle.dumps(
        {"values": BENIGN_VALUES, "again": shared, "same": shared}, protocol=protocol
    )
    view = analyze_pickle(data)
    assert [s.complete for s in view.streams] == [True]
    assert not view.malformations and not view.limit_hits and not view.trailing
    assert view.opcode_count == sum(1 for _ in pickletools.genops(data))
    assert view.bytes_read == len(data)
    run = {g.canonical for g in view.globals if g.use in ("called", "constructed")}
    # the unpickler's own calls of __setitem__/append/... on what it built, by owner class
    protocol = {name for name in run if name.rpartition(".")[2] in PROTOCOL_METHODS}
    assert {name.rpartition(".")[0] for name in protocol} <= VALUE_CONSTRUCTORS
    run -= protocol
    assert {"collections.OrderedDict", "decimal.Decimal", "uuid.UUID"} <= run <= VALUE_CONSTRUCTORS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, 2.5, "x"], "b": (1, 2)}, "{'a': [1, 2.5, 'x'], 'b': (1, 2)}"),
        ([None, True, b"\x00"], "[None, True, b'\\x00']"),
        ((7,), "(7,)"),
    ],
)
@pytest.mark.parametrize("protocol", range(6))
def test_result_rendering(value, expected: str, protocol: int) -> None:
    view = analyze_pickle(pickle.dumps(value, protocol=protocol))
    assert view.streams[0].result == expected


def test_large_containers_keep_a_sample_and_the_exact_count() -> None:
    view = analyze_pickle(pickle.dumps([float(i) for i in range(100_000)], protocol=4))
    assert view.streams[0].result == "[0.0, 1.0, 2.0, 3.0, ...<100000 items>]"


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_45mb_float_list(protocol: int) -> None:
    """The performance target's input (timing is measured outside the test suite)."""
    data = pickle.dumps([float(i) for i in range(5_000_000)], protocol=protocol)
    view = analyze_pickle(io.BytesIO(data))
    assert view.streams[0].complete and view.streams[0].result.endswith("...<5000000 items>]")
    assert not view.globals and not view.malformations and not view.limit_hits
    per_item = 2 if protocol == 0 else 1  # FLOAT+APPEND vs BINFLOAT (+ one APPENDS per 1000)
    assert 5_000_000 * per_item <= view.opcode_count <= 5_000_000 * per_item + 20_000


# ---------------------------------------------------------------------------- calls and globals


def test_plain_reduce_is_a_call_with_a_readable_expression() -> None:
    view = analyze_pickle(OS_SYSTEM)
    use = called(view)["os.system"]
    assert use.expression == "os.system('echo hi')"
    assert use.opcode == "REDUCE" and use.offset == OS_SYSTEM.index(b"R")
    assert uses(view, "os.system")["referenced"].offset == 2


@pytest.mark.parametrize("protocol", range(6))
def test_reduce_payloads_built_by_pickle(protocol: int) -> None:
    data = pickle.dumps(
        [Payload(subprocess.Popen, ["echo", "x"]), Payload(eval, "1+1"), Payload(print, "x" * 200)],
        protocol=protocol,
    )
    calls = called(analyze_pickle(data))
    popen = calls[
        "subprocess.Popen"
    ]  # protocols 0-2 write it under its Python 2 name, commands.Popen
    assert popen.expression == f"{popen.full}(['echo', 'x'])"
    assert calls["builtins.eval"].expression == "eval('1+1')"
    assert "...<200>" in calls["builtins.print"].expression  # long literals are cut


def test_getattr_import_chain_resolves_to_os_system() -> None:
    data = (
        proto()
        + stack_global("builtins", "getattr")
        + call1(stack_global("builtins", "__import__"), su("os"))
        + su("system")
        + pickle.TUPLE2
        + pickle.REDUCE
        + su("echo hi")
        + pickle.TUPLE1
        + pickle.REDUCE
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert called(view)["os.system"].expression == "getattr(__import__('os'), 'system')('echo hi')"
    assert uses(view, "os.system")["attribute"].opcode == "REDUCE"
    # object and name are known: the lookup is recorded as resolved, its target on its own
    assert "resolved" in uses(view, "builtins.getattr")


def test_stack_global_fed_from_memo_and_computed_strings() -> None:
    data = (
        proto()
        + su("o")
        + pickle.MEMOIZE
        + su("sys")
        + pickle.MEMOIZE
        + su("tem")
        + pickle.MEMOIZE
        # module: operator.add('o', 's') ; name: ''.join(['sys', 'tem'][::]) via str.join
        + stack_global("operator", "add")
        + pickle.BINGET
        + b"\x00"
        + su("s")
        + pickle.TUPLE2
        + pickle.REDUCE
        + stack_global("builtins", "str.join")
        + su("")
        + pickle.EMPTY_LIST
        + pickle.MARK
        + pickle.BINGET
        + b"\x01"
        + pickle.BINGET
        + b"\x02"
        + pickle.APPENDS
        + pickle.TUPLE2
        + pickle.REDUCE
        + pickle.STACK_GLOBAL
        + su("echo hi")
        + pickle.TUPLE1
        + pickle.REDUCE
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert called(view)["os.system"].expression == "os.system('echo hi')"


def test_names_decoded_at_load_time_are_folded() -> None:
    rot13 = (
        call1(stack_global("codecs", "decode"), su("flfgrz") + su("rot13") + pickle.TUPLE2)[:-2]
        + pickle.REDUCE
    )
    b64 = (
        stack_global("base64", "b64decode")
        + su(base64.b64encode(b"os").decode())
        + pickle.TUPLE1
        + pickle.REDUCE
    )
    module = stack_global("builtins", "bytes.decode") + b64 + pickle.TUPLE1 + pickle.REDUCE
    data = (
        proto()
        + module
        + rot13
        + pickle.STACK_GLOBAL
        + su("id")
        + pickle.TUPLE1
        + pickle.REDUCE
        + pickle.STOP
    )
    assert "os.system" in called(analyze_pickle(data))


def test_protocol0_global_with_dotted_names() -> None:
    data = b"cos.path\njoin\n(S'a'\nS'b'\ntR0cbdb\nBdb.run\n(S'x'\ntR."
    view = analyze_pickle(data)
    assert called(view)["os.path.join"].expression == "os.path.join('a', 'b')"
    assert "bdb.Bdb.run" in called(view)
    assert "referenced" in uses(view, "bdb.Bdb")


def test_dotted_attribute_chain_through_self_reaches_the_module() -> None:
    data = (
        proto()
        + call1(stack_global("builtins", "getattr.__self__.exec"), su("print(1)"))
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert "builtins.exec" in called(view)
    assert "builtins.getattr.__self__.exec" in view.global_names()


@pytest.mark.parametrize(
    "data",
    [
        b"(S'echo hi'\nios\nsystem\n.",  # INST with args
        b"(cos\nsystem\nS'echo hi'\no.",  # OBJ with args
    ],
)
def test_inst_and_obj_with_arguments_are_calls(data: bytes) -> None:
    assert called(analyze_pickle(data))["os.system"].expression == "os.system('echo hi')"


def test_inst_without_arguments_constructs_a_class() -> None:
    view = analyze_pickle(b"(i__main__\nNet\n.")
    assert "constructed" in uses(view, "__main__.Net")
    assert "called" not in uses(view, "__main__.Net")


def test_newobj_and_newobj_ex_construct() -> None:
    data = (
        proto()
        + stack_global("__main__", "Net")
        + pickle.EMPTY_TUPLE
        + pickle.NEWOBJ
        + pickle.POP
        + stack_global("__main__", "Other")
        + pickle.EMPTY_TUPLE
        + pickle.EMPTY_DICT
        + pickle.NEWOBJ_EX
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert (
        uses(view, "__main__.Net")["constructed"].expression == "__main__.Net.__new__(__main__.Net)"
    )
    assert uses(view, "__main__.Other")["constructed"].opcode == "NEWOBJ_EX"


def test_build_planted_setstate_is_called() -> None:
    data = (
        proto()
        + stack_global("__main__", "Net")
        + pickle.EMPTY_TUPLE
        + pickle.NEWOBJ
        + pickle.EMPTY_DICT
        + su("__setstate__")
        + stack_global("os", "system")
        + pickle.SETITEM
        + pickle.BUILD
        + su("echo hi")
        + pickle.BUILD
        + pickle.STOP
    )
    use = called(analyze_pickle(data))["os.system"]
    assert use.expression == "os.system('echo hi')" and use.opcode == "BUILD"


def test_build_on_a_module_overrides_later_imports() -> None:
    data = (
        proto()
        + stack_global("torch", "_utils")
        + pickle.EMPTY_DICT
        + su("_rebuild_tensor")
        + stack_global("builtins", "eval")
        + pickle.SETITEM
        + pickle.BUILD
        + pickle.POP
        + call1(stack_global("torch._utils", "_rebuild_tensor"), su("1+1"))
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert "mutated" in uses(view, "torch._utils")
    assert called(view)["builtins.eval"].expression == "eval('1+1')"


def test_attrgetter_methodcaller_partial_and_copyreg() -> None:
    getter = call1(stack_global("operator", "attrgetter"), su("system"))
    module = call1(stack_global("importlib", "import_module"), su("os"))
    first = (
        getter
        + module
        + pickle.TUPLE1
        + pickle.REDUCE
        + su("echo 1")
        + pickle.TUPLE1
        + pickle.REDUCE
    )
    caller = (
        stack_global("operator", "methodcaller")
        + su("check_call")
        + su("echo")
        + pickle.TUPLE2
        + pickle.REDUCE
    )
    second = (
        caller
        + call1(stack_global("builtins", "__import__"), su("subprocess"))
        + pickle.TUPLE1
        + pickle.REDUCE
    )
    partial = call1(stack_global("functools", "partial"), stack_global("posix", "system"))
    third = partial + su("echo 3") + pickle.TUPLE1 + pickle.REDUCE
    recon = (
        stack_global("copyreg", "_reconstructor")
        + stack_global("__main__", "Net")
        + stack_global("builtins", "object")
    )
    fourth = recon + pickle.NONE + pickle.TUPLE3 + pickle.REDUCE
    data = proto() + pickle.MARK + first + second + third + fourth + pickle.LIST + pickle.STOP
    view = analyze_pickle(data)
    calls = called(view)
    assert calls[
        "os.system"
    ].expression == "attrgetter('system')(importlib.import_module('os'))('echo 1')".replace(
        "attrgetter", "operator.attrgetter"
    )
    assert calls["subprocess.check_call"].expression.endswith("(__import__('subprocess'))")
    assert calls["posix.system"].expression == "functools.partial(posix.system)('echo 3')"
    assert "constructed" in uses(view, "__main__.Net")


def test_trampolines_record_the_inner_call() -> None:
    ctor = stack_global("numpy.random._pickle", "__randomstate_ctor")
    data = (
        proto()
        + ctor
        + su("echo hi")
        + stack_global("os", "system")
        + pickle.TUPLE2
        + pickle.REDUCE
        + pickle.STOP
    )
    assert called(analyze_pickle(data))["os.system"].expression == "os.system('echo hi')"


def test_unresolvable_stack_global_is_reported() -> None:
    data = (
        proto()
        + call1(stack_global("mystery", "name"), pickle.NONE)
        + su("system")
        + pickle.STACK_GLOBAL
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert any(g.module == "?" for g in view.globals)


def test_extension_codes_resolve_through_the_default_registry() -> None:
    data = (
        proto(2)
        + pickle.EXT1
        + b"\x7f"
        + pickle.EXT2
        + b"\x01\x02"
        + pickle.EXT4
        + b"\x00\x00\x01\x00"
        + pickle.TUPLE3
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert [(e.code, e.module) for e in view.extensions] == [
        (127, None),
        (513, None),
        (65536, None),
    ]


def test_persistent_ids_are_recorded() -> None:
    data = (
        proto(2)
        + b"Pkey-1\n"
        + pickle.MARK
        + su("storage")
        + pickle.TUPLE
        + pickle.BINPERSID
        + pickle.TUPLE2
        + pickle.STOP
    )
    view = analyze_pickle(data)
    assert view.persistent_id_count == 2
    assert [p.expression for p in view.persistent_ids] == ["'key-1'", "('storage',)"]


# ------------------------------------------------------------------ several and nested pickles


def test_second_pickle_in_the_stream_is_analysed() -> None:
    data = pickle.dumps(["benign"], protocol=4) + OS_SYSTEM
    view = analyze_pickle(data)
    assert [s.complete for s in view.streams] == [True, True]
    assert called(view)["os.system"].stream == 1
    assert called(view)["os.system"].offset == len(
        pickle.dumps(["benign"], protocol=4)
    ) + OS_SYSTEM.index(b"R")


def test_junk_after_stop_is_trailing_data_not_a_pickle() -> None:
    data = pickle.dumps({"a": 1}) + b"\x00\xffjunk"
    view = analyze_pickle(data)
    assert len(view.streams) == 1 and not view.malformations
    assert [(t.offset, t.length) for t in view.trailing] == [(len(data) - 6, 6)]


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda b: b, "raw"),
        (lambda b: base64.b64encode(b).decode(), "base64"),
        (lambda b: b.hex(), "hex"),
    ],
)
def test_nested_pickles_in_values(encode, encoding: str) -> None:
    data = pickle.dumps({"weights": [1.0], "blob": encode(OS_SYSTEM)}, protocol=4)
    view = analyze_pickle(data)
    assert not view.globals
    (nested,) = view.nested
    assert nested.encoding == encoding and nested.depth == 1
    assert "os.system" in called(nested.view)
    assert "os.system" in view.global_names()


def test_nested_depth_is_bounded() -> None:
    data = OS_SYSTEM
    for _ in range(6):
        data = pickle.dumps({"inner": data}, protocol=4)
    view = analyze_pickle(data, PickleLimits(max_nested_depth=3))
    depth, current = 0, view
    while current.nested:
        current, depth = current.nested[0].view, depth + 1
    assert depth == 3
    assert current.limit_hits[0].limit == "max_nested_depth"


def test_plain_strings_are_not_nested_pickles() -> None:
    values = [
        "c" * 40 + ".",
        base64.b64encode(b"not a pickle at all!").decode(),
        "80" * 30,
        "gASV" + "A" * 40,
    ]
    assert not analyze_pickle(pickle.dumps(values)).nested


# ------------------------------------------------------------------ malformed input and limits


def test_truncated_after_reduce_keeps_the_call() -> None:
    view = analyze_pickle(OS_SYSTEM[:-1])
    assert "os.system" in called(view)
    assert view.malformations[0].message == "data ends before STOP"
    assert not view.streams[0].complete


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (proto() + pickle.BINGET + b"\x03" + pickle.STOP, "memo key 3 has never been stored"),
        (
            proto()
            + pickle.BININT
            + b"*\x00\x00\x00"
            + su("os")
            + pickle.STACK_GLOBAL
            + pickle.STOP,
            "STACK_GLOBAL requires str",
        ),
        (b"\xff", "invalid opcode 0xff"),
        (pickle.POP, "MARK expected"),
        (b"S'unquoted\n.", "not quoted"),
        (proto(9), "unsupported pickle protocol 9"),
        (proto() + pickle.BINUNICODE + b"\xff\xff\x00\x00abc", "data ends inside"),
    ],
)
def test_malformations_are_recorded_not_raised(data: bytes, message: str) -> None:
    view = analyze_pickle(data)
    assert message in view.malformations[0].message


@pytest.mark.parametrize(
    ("limits", "data", "limit"),
    [
        (
            PickleLimits(max_opcodes=100),
            pickle.dumps([{"k": i} for i in range(3000)]),
            "max_opcodes",
        ),
        (
            PickleLimits(max_memo_entries=10),
            pickle.dumps([[i] for i in range(100)]),
            "max_memo_entries",
        ),
        (PickleLimits(max_nesting=50), b"(" * 100, "max_nesting"),
        (PickleLimits(max_seconds=0), pickle.dumps([{"k": i} for i in range(3000)]), "max_seconds"),
        (PickleLimits(max_stack_depth=1000), b"(" + b"N" * 5000 + b"l.", "max_stack_depth"),
    ],
    ids=["opcodes", "memo", "nesting", "seconds", "stack"],
)
def test_limits_are_recorded(limits: PickleLimits, data: bytes, limit: str) -> None:
    view = analyze_pickle(data, limits)
    assert [hit.limit for hit in view.limit_hits] == [limit]


def test_oversized_values_are_skipped_but_counted() -> None:
    data = pickle.dumps([b"x" * 5000, "y" * 5000, b"z"], protocol=4)
    view = analyze_pickle(data, PickleLimits(max_value_bytes=1000, kept_head_bytes=10))
    assert view.truncated_values == 2
    assert view.streams[0].result == "[<bytes of 5000 bytes>, <str of 5000 bytes>, b'z']"


class _ChunkRecorder(io.RawIOBase):
    """A non-seekable stream that remembers how much was asked for at once."""

    def __init__(self, data: bytes) -> None:
        self.inner, self.largest = io.BytesIO(data), 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.largest = max(self.largest, size)
        return self.inner.read(size)


def test_streams_are_read_incrementally() -> None:
    data = pickle.dumps([b"v" * 100_000 for _ in range(40)] + [Payload(eval, "1")], protocol=4)
    stream = _ChunkRecorder(data)
    view = analyze_pickle(stream)
    assert "builtins.eval" in called(view) and view.bytes_read == len(data)
    assert 0 < stream.largest <= 1 << 20


def test_random_and_mutated_input_never_raises() -> None:
    rng = random.Random(1234)  # noqa: S311 - reproducible fuzzing, not cryptography
    seeds = [
        OS_SYSTEM,
        pickle.dumps(BENIGN_VALUES, protocol=2),
        pickle.dumps(BENIGN_VALUES, protocol=0),
    ]
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        assert isinstance(analyze_pickle(bytes(data[: rng.randint(0, len(data))])), PickleView)
    for _ in range(200):
        assert isinstance(analyze_pickle(rng.randbytes(rng.randint(0, 300))), PickleView)


# ---------------------------------------------------------------------------- real ML pickles


def _torch_data_pkl(obj) -> bytes:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(buffer) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))


def test_torch_state_dict_persistent_ids_and_rebuild_calls() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    view = analyze_pickle(_torch_data_pkl(model.state_dict()))
    assert view.streams[0].complete and not view.malformations
    assert view.persistent_id_count == len(model.state_dict())
    assert "torch._utils._rebuild_tensor_v2" in called(view)
    assert "'storage'" in view.persistent_ids[0].expression


def test_numpy_object_array_contents_are_followed() -> None:
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.array([1, Payload(eval, "1")], dtype=object))
    view = analyze_pickle(data)
    assert "builtins.eval" in called(view)
    assert "numpy.ndarray" in {g.full for g in view.globals if g.use == "constructed"}


def _joblib_bytes(obj) -> bytes:
    joblib = pytest.importorskip("joblib")
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def test_joblib_inline_array_data_is_skipped() -> None:
    np = pytest.importorskip("numpy")
    data = _joblib_bytes(
        {
            "floats": np.arange(1000.0),
            "fortran": np.asfortranarray(np.ones((3, 4))),
            "text": np.array(["ab", "c"]),
            "records": np.zeros(3, dtype=[("a", "f4"), ("b", "i8")]),
            "objects": np.array([1, "x"], dtype=object),
            "after": "done",
        }
    )
    view = analyze_pickle(data)
    assert (
        [s.complete for s in view.streams] == [True]
        and not view.malformations
        and not view.trailing
    )
    assert view.bytes_read == len(data) and view.streams[0].result.endswith("...<6 items>}")


def test_joblib_object_array_stream_is_analysed() -> None:
    np = pytest.importorskip("numpy")
    view = analyze_pickle(
        _joblib_bytes({"o": np.array([Payload(eval, "1+1")], dtype=object), "k": 1})
    )
    assert called(view)["builtins.eval"].expression == "eval('1+1')"
    assert view.streams[0].complete and not view.malformations


# ----------------------------------------------------------------- frames and import machinery


def test_value_running_past_its_frame_is_malformed_and_the_rest_is_read_as_opcodes() -> None:
    """anchors B9: a frame-respecting unpickler reads the bytes past the FRAME end as opcodes."""
    hidden = b"cposix\nsystem\n(S'echo hi'\ntR."
    inside = b"B" + (4 + len(hidden)).to_bytes(4, "little") + b"abcd"
    data = proto(4) + b"\x95" + len(inside).to_bytes(8, "little") + inside + hidden + b"."
    view = analyze_pickle(data)
    assert any("past the end of its FRAME" in m.message for m in view.malformations)
    assert [n.view.globals[0].full for n in view.nested] == ["posix.system"]


def test_values_outside_frames_are_not_overruns() -> None:
    """The pickler commits its frame before a large value: no false overrun."""
    data = pickle.dumps([b"x" * 200_000, "y" * 70_000, 1.5], protocol=5)
    view = analyze_pickle(data)
    assert not view.malformations and not view.nested


@pytest.mark.parametrize("module", ["_frozen_importlib", "importlib._bootstrap"])
def test_gcd_import_is_followed_like_import_module(module: str) -> None:
    imported = call1(stack_global(module, "_gcd_import"), su("os"))
    getter = stack_global("builtins", "getattr") + imported + su("system") + pickle.TUPLE2
    data = proto() + call1(getter + pickle.REDUCE, su("echo hi")) + pickle.STOP
    assert "os.system" in called(analyze_pickle(data))
