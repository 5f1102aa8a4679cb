"""Generate ``src/hexscan/policy/pickle_capabilities.json.gz``: library callables that reach a sink.

Run from the repository root with the interpreter whose libraries the map should describe::

    python tools/policy/gen_capabilities.py [--check] [--out PATH]

The libraries are read as source with ``ast`` (see ``capgraph.py``); nothing is imported. The
output records the interpreter and library versions, the sink table and the depth bound, and is
byte-for-byte deterministic for the same installed sources (``--check`` compares with the
shipped file). Why each piece exists is in docs/capabilities.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capgraph import Graph, Reach, capabilities  # noqa: E402
from capindex import DefInfo, ModuleInfo, index_tree  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "src" / "hexscan" / "policy" / "pickle_capabilities.json.gz"
FORMAT = 1
MAX_DEPTH = {"process": 8, "eval": 8, "deserialise": 8, "network": 8, "file": 8, "import": 2}
"""Calls from the pickled callable to the sink. Dynamic import is bounded at 2: deeper, it is
almost always a library importing one of its own optional dependencies by a fixed name
(``import_optional_dependency("pyarrow")``), which a pickle cannot steer."""

#: Capability order is the bit order of the data file; the first four are CRITICAL, the rest HIGH.
CAPABILITIES = ("process", "eval", "deserialise", "import", "network", "file")

#: The primitives every chain ends in. A name matches itself and everything below it
#: (``pickle.Unpickler`` matches ``pickle.Unpickler.load``). Library entry points are listed only
#: where the library's own path to the primitive goes through something the analysis cannot follow
#: (a pickle module passed as a parameter in torch, an unpickler held in a local in joblib, a
#: filesystem object in fsspec, C extensions).
SINKS: dict[str, tuple[str, ...]] = {
    "process": (
        "os.system", "os.popen", "os.execl", "os.execle", "os.execlp", "os.execlpe", "os.execv",
        "os.execve", "os.execvp", "os.execvpe", "os.spawnl", "os.spawnle", "os.spawnlp",
        "os.spawnlpe", "os.spawnv", "os.spawnve", "os.spawnvp", "os.spawnvpe", "os.posix_spawn",
        "os.posix_spawnp", "os.startfile", "posix.system", "posix.execv", "posix.execve",
        "posix.posix_spawn", "posix.posix_spawnp", "subprocess.Popen", "subprocess.run",
        "subprocess.call", "subprocess.check_call", "subprocess.check_output",
        "subprocess.getoutput", "subprocess.getstatusoutput", "_posixsubprocess.fork_exec",
        "pty.spawn", "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell",
    ),
    "eval": (
        "builtins.eval", "builtins.exec", "builtins.compile", "types.FunctionType",
        "types.CodeType",
    ),
    "deserialise": (
        "pickle.load", "pickle.loads", "pickle.Unpickler", "pickle._load", "pickle._loads",
        "pickle._Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler",
        "marshal.load", "marshal.loads", "yaml.load", "yaml.load_all", "yaml.unsafe_load",
        "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all", "dill.load",
        "dill.loads", "dill.Unpickler", "cloudpickle.load", "cloudpickle.loads",
        "torch.load", "torch.serialization.load", "torch.serialization._load",
        "torch.serialization._legacy_load", "torch._C.import_ir_module",
        "torch._C.import_ir_module_from_buffer", "torch._C._load_for_lite_interpreter",
        "torch._C._import_ir_module_from_package", "joblib.numpy_pickle._unpickle",
        "joblib.numpy_pickle_compat.load_compatibility",
    ),
    "import": (
        "builtins.__import__", "importlib.import_module", "importlib.__import__",
        "importlib._bootstrap._gcd_import", "importlib.util.spec_from_file_location",
        "importlib.machinery.SourceFileLoader", "imp.load_source", "imp.load_module",
        "zipimport.zipimporter",
    ),
    "network": (
        "urllib.request.urlopen", "urllib.request.urlretrieve", "http.client.HTTPConnection",
        "http.client.HTTPSConnection", "socket.socket", "socket.create_connection",
        "socket.getaddrinfo", "socket.gethostbyname", "_socket.socket", "ftplib.FTP",
        "smtplib.SMTP", "requests.get", "requests.post", "requests.put", "requests.patch",
        "requests.delete", "requests.head", "requests.options", "requests.request",
        "requests.api", "requests.sessions.Session.request", "urllib3.PoolManager",
        "urllib3.request", "httpx.get", "httpx.post", "httpx.request", "httpx.stream",
        "httpx.Client", "fsspec.open", "fsspec.open_files", "fsspec.core.open",
        "fsspec.core.open_files", "fsspec.filesystem", "fsspec.core.url_to_fs",
    ),
    "file": (
        "builtins.open", "io.open", "io.open_code", "io.FileIO", "_io.open", "_io.open_code",
        "_io.FileIO", "os.open", "os.remove", "os.unlink", "os.rename", "os.renames",
        "os.replace", "os.makedirs", "os.mkdir", "os.rmdir", "os.removedirs", "os.symlink",
        "os.link", "os.truncate", "os.chmod", "os.chown", "os.mkfifo", "shutil.copy",
        "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move", "shutil.rmtree",
        "shutil.make_archive", "shutil.unpack_archive", "sqlite3.connect", "h5py.File",
        "h5py._hl.files.File", "h5py._hl.files.make_fid",
        "safetensors._safetensors_rust.serialize_file", "safetensors._safetensors_rust.safe_open",
        "fsspec.open", "fsspec.open_files", "fsspec.core.open", "fsspec.core.open_files",
    ),
}

#: Third-party top-level packages read from the environment's site-packages: the ML libraries
#: the project's ``test`` extra installs and pins, and what they pull in (sympy, networkx and
#: fsspec come with torch). A fixed list, so that the map does not change with whatever else
#: happens to be installed; add a library here to cover it.
LIBRARIES = (
    "numpy", "pandas", "scipy", "sklearn", "torch", "joblib", "keras", "dill", "cloudpickle",
    "yaml", "fsspec", "sympy", "networkx", "h5py", "onnx", "safetensors", "gguf", "tqdm",
)
#: Distribution name of each top-level package, for the recorded versions.
DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml"}

#: The standard library modules read. Modules already dangerous as a whole in pickle.toml are
#: included too: their chains explain library gadgets that go through them.
STDLIB = (
    "abc", "argparse", "ast", "asyncio", "base64", "bdb", "bz2", "cProfile", "code", "codecs",
    "codeop", "collections", "concurrent", "configparser", "contextlib", "copy", "copyreg",
    "csv", "ctypes", "dataclasses", "datetime", "dbm", "decimal", "difflib", "doctest", "email",
    "enum", "fileinput", "fractions", "ftplib", "functools", "glob", "gzip", "hashlib", "heapq",
    "hmac", "http", "imaplib", "importlib", "inspect", "io", "ipaddress", "json", "linecache",
    "locale", "logging", "lzma", "mailbox", "mailcap", "mimetypes", "multiprocessing",
    "netrc", "nntplib", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle",
    "pickletools", "pipes", "pkgutil", "platform", "plistlib", "poplib", "pprint", "profile",
    "pstats", "pty", "pydoc", "queue", "random", "re", "reprlib", "runpy", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "smtplib", "socket", "socketserver", "sqlite3",
    "ssl", "statistics", "string", "struct", "subprocess", "sysconfig", "tarfile", "telnetlib",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback", "types",
    "typing", "urllib", "uu", "uuid", "warnings", "wave", "weakref", "webbrowser", "xml",
    "xmlrpc", "zipfile", "zipimport", "zoneinfo",
)

#: Entries the map must not flag, each with the reason. Only entries whose chain was checked by
#: hand and found unreachable from a pickle's arguments, or reviewed and handled elsewhere, belong
#: here; the data file records them so that a reader can see what was left out and why.
EXCLUDED: dict[str, str] = {
    "zoneinfo._zoneinfo.ZoneInfo": (
        "time zones of pickled datetimes; ZoneInfo(key) only reads TZif files under TZPATH or "
        "tzdata after rejecting path-like keys (allowlisted in pickle.toml)"),
    "scipy.stats._distn_infrastructure": (
        "scipy distributions: rv_generic.__setstate__ runs exec(self._parse_arg_template); the "
        "pickle machine checks that template against scipy's own shape and reports any other "
        "as a call of builtins.exec (parsers/pickle_exec_state.py), so the class is not flagged"),
    "scipy.stats._continuous_distns": (
        "scipy distribution classes: see scipy.stats._distn_infrastructure"),
    "scipy.stats._discrete_distns": (
        "scipy distribution classes: see scipy.stats._distn_infrastructure"),
    "torch.storage._load_from_bytes": (
        "torch storages pickled with plain pickle; the pickle machine reads its bytes argument as "
        "a nested pickle and judges what is inside (allowlisted in pickle.toml)"),
}

#: Callees that are not followed: their chain to a sink exists in the call graph but cannot be
#: steered by the caller's arguments.
BARRIERS: dict[str, str] = {
    "ast.parse": "compile(..., PyCF_ONLY_AST) builds a syntax tree and runs nothing",
    "ast.literal_eval": "evaluates literals only (ast.parse, then a tree walk)",
    "inspect._signature_fromstr": (
        "evaluates the __text_signature__ of builtins (fixed strings compiled into C modules)"),
    "collections.namedtuple": (
        "checks every field name is an identifier before it evaluates its fixed class template"),
    "typing.ForwardRef.__init__": "compiles the annotation to check its syntax; runs nothing",
    "sympy.core.sympify._sympify": (
        "sympify(a, strict=True): strings are rejected before any parsing or evaluation"),
    "inspect._signature_from_callable": (
        "inspect.signature evaluates string annotations only with eval_str=True; library callers "
        "(parameter validation, keras archive helpers) use the default False"),
}


_TEST_SEGMENTS = frozenset({"tests", "test", "testing"})
"""Test modules shipped inside packages are analysed (their helpers are on chains) but their
own names are not exposed: they are noise in the data, and calling them is HIGH anyway."""


def sink_matcher(sinks: Mapping[str, Iterable[str]]) -> tuple[dict[str, set[str]], object]:
    """``(sink -> capabilities, dotted -> matched sink or None)``."""
    table: dict[str, set[str]] = {}
    for cap, names in sinks.items():
        for name in names:
            table.setdefault(name, set()).add(cap)

    def sink_of(dotted: str) -> str | None:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in table:
                return prefix
        return None

    return table, sink_of


class _Tables:
    """The exposed names, the class method tables and the node numbering of the data file."""

    def __init__(self, graph: Graph, reach: Mapping[str, Reach], excluded: Iterable[str]) -> None:
        self.graph, self.reach = graph, reach
        prefixes = tuple(excluded)
        self.ok = {n for n in reach if not any(n == p or n.startswith(p + ".") for p in prefixes)}
        self.classes: dict[str, tuple[list[str], dict[str, str | None]]] = {}
        self._relevant: dict[str, bool] = {}

    def relevant(self, cls: str) -> bool:
        """Does calling the class, or any method a pickle can name on it, reach a sink?"""
        if cls not in self._relevant:
            self._relevant[cls] = cls in self.ok or any(
                d in self.ok for d in self.graph.methods(cls).values())
        return self._relevant[cls]

    def add_class(self, cls: str) -> None:
        """Record ``cls``: its own reaching methods, its relevant bases, and overrides.

        The query walks own methods, then bases depth-first. Where that walk would not give what
        the generator's resolution gives (a base that reaches nothing shadowing a later base's
        method), the own table says so explicitly (``None``: this name reaches nothing).
        """
        if cls in self.classes:
            return
        info = self.graph.defs[cls]
        own: dict[str, str | None] = {m: d for m, d in info.methods.items() if d in self.ok}
        bases = [b for b in self.graph._bases(info) if self.relevant(b)]
        self.classes[cls] = (bases, own)
        for base in bases:
            self.add_class(base)
        for method, target in self.graph.methods(cls).items():
            expected = target if target in self.ok else None
            if self.lookup(cls, method) != expected:
                own[method] = expected

    def lookup(self, cls: str, method: str, depth: int = 0) -> str | None:
        bases, own = self.classes[cls]
        if method in own:
            return own[method]
        for base in bases:
            if depth < 30 and (found := self.lookup(base, method, depth + 1)):
                return found
        return None

    def exposures(self) -> dict[str, dict[str, str]]:
        """module -> {name a pickle can import from it -> ``def:`` or ``sink:``}."""
        out: dict[str, dict[str, str]] = {}
        for module in sorted(self.graph.modules):
            names: dict[str, str] = {}
            if _TEST_SEGMENTS & set(module.split(".")):
                continue
            for local in sorted(self.graph.names(module)):
                resolved = self.graph.resolve(module, local)
                if not resolved or resolved.startswith("module:"):
                    continue
                target = resolved[4:]
                if resolved.startswith("sink:"):
                    names[local] = resolved
                elif self.graph.defs[target].kind == "class":
                    if self.relevant(target):
                        self.add_class(target)
                        names[local] = resolved
                elif target in self.ok:
                    names[local] = resolved
            if names:
                out[module] = names
        return out


def build(roots: Iterable[tuple[Path, Iterable[str]]], sinks: Mapping[str, Iterable[str]],
          max_depth: Mapping[str, int], excluded: Mapping[str, str] | None = None,
          barriers: Mapping[str, str] | None = None) -> dict[str, object]:
    """The data file's content for source trees ``(root, top-level packages)``."""
    defs: dict[str, DefInfo] = {}
    modules: dict[str, ModuleInfo] = {}
    failed = sum(index_tree(root, packages, defs, modules) for root, packages in roots)
    table, sink_of = sink_matcher(sinks)
    stops = tuple(barriers or ())
    graph = Graph(defs, modules, sink_of,  # type: ignore[arg-type]
                  lambda n: any(n == b or n.startswith(b + ".") for b in stops))
    reach = capabilities(graph, lambda s: sorted(table[s]), max_depth)
    tables = _Tables(graph, reach, excluded or {})
    exposed = tables.exposures()
    roots_used = {t[4:] for names in exposed.values() for t in names.values()
                  if t.startswith("def:")}
    roots_used |= set(tables.classes)
    roots_used |= {d for _, own in tables.classes.values() for d in own.values() if d}
    closure = _closure(reach, roots_used)
    index = {name: i for i, name in enumerate(closure)}
    sink_names = sorted({h[5:] for n in closure if n in reach
                         for h in reach[n].next_hop.values() if h.startswith("sink:")}
                        | {t[5:] for names in exposed.values() for t in names.values()
                           if t.startswith("sink:")})
    sink_index = {name: i for i, name in enumerate(sink_names)}

    def encode(ref: str) -> int:
        return index[ref[4:]] if ref.startswith("def:") else -1 - sink_index[ref[5:]]

    nodes: list[list[object]] = []
    for name in closure:
        hops = reach[name].next_hop if name in reach else {}
        bits = sum(1 << CAPABILITIES.index(c) for c in hops)
        nodes.append([name, bits, [encode(hops[c]) for c in CAPABILITIES if c in hops]])
    classes = {str(index[c]): [[index[b] for b in bases],
                               {m: (index[d] if d else None) for m, d in sorted(own.items())}]
               for c, (bases, own) in sorted(tables.classes.items())}
    return {
        "format": FORMAT,
        "generator": "tools/policy/gen_capabilities.py",
        "max_depth": dict(sorted(max_depth.items())),
        "capabilities": list(CAPABILITIES),
        "sinks": sink_names,
        "sink_bits": [sum(1 << CAPABILITIES.index(c) for c in table[s]) for s in sink_names],
        "nodes": nodes,
        "classes": classes,
        "names": {m: {q: encode(t) for q, t in names.items()} for m, names in exposed.items()},
        "excluded": dict(sorted((excluded or {}).items())),
        "barriers": dict(sorted((barriers or {}).items())),
        "stats": {"modules": len(modules), "defs": len(defs), "unparsed_files": failed,
                  "reaching": len(reach)},
    }


def _closure(reach: Mapping[str, Reach], roots: Iterable[str]) -> list[str]:
    """Sorted defs on the chains of ``roots`` (the data stores only these)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in reach:
            todo.extend(h[4:] for h in reach[name].next_hop.values() if h.startswith("def:"))
    return sorted(seen)


def versions(libraries: Iterable[str]) -> dict[str, str]:
    """Installed versions (from distribution metadata; nothing is imported)."""
    found = {"python": ".".join(map(str, sys.version_info[:3]))}
    for top in libraries:
        try:
            found[top] = metadata.version(DISTRIBUTIONS.get(top, top))
        except metadata.PackageNotFoundError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the output differs from the file at --out")
    args = parser.parse_args(argv)
    site = Path(sysconfig.get_paths()["purelib"])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    libraries = [lib for lib in LIBRARIES
                 if (site / lib).is_dir() or (site / f"{lib}.py").is_file()]
    data = build([(stdlib, STDLIB), (site, libraries)], SINKS, MAX_DEPTH, EXCLUDED, BARRIERS)
    data = {"versions": versions(libraries), **data}
    text = json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
    if args.check:
        same = args.out.is_file() and gzip.decompress(args.out.read_bytes()).decode() == text
        print("up to date" if same else f"{args.out} is stale")
        return 0 if same else 1
    # mtime 0 and no file name in the header: the same text always gives the same bytes
    args.out.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    stats = data["stats"]
    print(f"{args.out}: {len(text)} bytes; {stats}")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
