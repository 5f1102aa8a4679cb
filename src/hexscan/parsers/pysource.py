"""What Python source would do when imported or called, read with ``ast`` (never compiled
to bytecode, never run).

Used where a model carries Python source that a loader imports (torch.package modules)
or that serving code may evaluate (ONNX metadata). The walk records calls of names that
run commands or code, open network connections, write files or import modules by a
computed name, and whether each call happens at import time (module level or a class
body) or inside a function (run when something calls it, e.g. ``__setstate__`` during
unpickling). Aliases made by ``import x as y`` / ``from x import y as z`` are resolved.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

#: Largest source analysed; longer sources are cut (and the cut is reported by callers).
MAX_SOURCE_CHARS = 2_000_000
#: Most calls reported per source.
MAX_CALLS = 200

#: Fully qualified callables that run commands or code, or reach the network or disk.
DANGEROUS_CALLS: dict[str, str] = {
    "os.system": "runs a shell command", "os.popen": "runs a shell command",
    "os.execv": "replaces the process", "os.execve": "replaces the process",
    "os.execl": "replaces the process", "os.execvp": "replaces the process",
    "os.execlp": "replaces the process", "os.spawnv": "starts a process",
    "os.spawnl": "starts a process", "os.posix_spawn": "starts a process",
    "os.fork": "forks the process", "os.remove": "deletes a file",
    "os.unlink": "deletes a file", "os.rmdir": "deletes a directory",
    "os.chmod": "changes file permissions", "os.putenv": "changes the environment",
    "posix.system": "runs a shell command", "nt.system": "runs a shell command",
    "pty.spawn": "starts a shell", "shutil.rmtree": "deletes a directory tree",
    "subprocess.run": "starts a process", "subprocess.Popen": "starts a process",
    "subprocess.call": "starts a process", "subprocess.check_call": "starts a process",
    "subprocess.check_output": "starts a process",
    "subprocess.getoutput": "runs a shell command",
    "subprocess.getstatusoutput": "runs a shell command",
    "builtins.exec": "executes Python code", "builtins.eval": "evaluates Python code",
    "builtins.compile": "compiles Python code", "builtins.__import__": "imports a module",
    "importlib.import_module": "imports a module by name",
    "importlib.__import__": "imports a module", "runpy.run_path": "runs a Python file",
    "runpy.run_module": "runs a Python module", "code.interact": "starts an interpreter",
    "pickle.loads": "unpickles data", "pickle.load": "unpickles data",
    "marshal.loads": "unmarshals code", "dill.loads": "unpickles data",
    "socket.socket": "opens a network socket", "socket.create_connection":
    "opens a network connection", "urllib.request.urlopen": "fetches a URL",
    "urllib.request.urlretrieve": "downloads a file", "requests.get": "fetches a URL",
    "requests.post": "sends data to a URL", "http.client.HTTPConnection":
    "opens an HTTP connection", "http.client.HTTPSConnection": "opens an HTTPS connection",
    "ctypes.CDLL": "loads a native library", "ctypes.cdll.LoadLibrary":
    "loads a native library", "ctypes.PyDLL": "loads a native library",
    "webbrowser.open": "opens a browser", "torch.ops.load_library": "loads a native library",
    "sys.settrace": "hooks the interpreter", "sys.setprofile": "hooks the interpreter",
}
#: Bare names that are builtins unless rebound by an import or assignment.
_BUILTINS = ("exec", "eval", "compile", "__import__", "breakpoint", "open", "getattr")
_WRITE_MODES = frozenset("wax+")
#: Modules whose attributes looked up by a computed name are calls in hiding.
_CODE_MODULES = frozenset({"os", "posix", "nt", "subprocess", "builtins", "__builtins__",
                           "importlib", "runpy", "pty", "socket", "ctypes", "marshal",
                           "pickle", "shutil", "sys"})


@dataclass(frozen=True, slots=True)
class PyCall:
    """One call: the resolved name, what it does, its line, and where it runs."""

    name: str
    what: str
    line: int
    import_time: bool
    function: str


@dataclass(frozen=True, slots=True)
class PySource:
    """The facts of one source: parsed or not, its dangerous calls and imported modules."""

    parsed: bool
    error: str
    calls: tuple[PyCall, ...]
    imports: tuple[str, ...]


def analyse(source: str) -> PySource:
    """Parse ``source`` and collect its dangerous calls; never raises on bad input."""
    try:
        tree = ast.parse(source[:MAX_SOURCE_CHARS])
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return PySource(False, f"{type(exc).__name__}: {exc}"[:200], (), ())
    walker = _Walker()
    try:
        walker.visit(tree)
    except RecursionError:
        return PySource(False, "nested too deeply", tuple(walker.calls), tuple(walker.imports))
    return PySource(True, "", tuple(walker.calls), tuple(walker.imports))


class _Walker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.calls: list[PyCall] = []
        self.imports: list[str] = []
        self.function_stack: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append(alias.name)
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else local
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self.imports.append(module)
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
                  name: str) -> None:
        """Decorators, defaults and annotations run where the function is defined; only
        the body runs when it is called."""
        if not isinstance(node, ast.Lambda):
            for deco in node.decorator_list:
                self.visit(deco)
            if node.returns is not None:
                self.visit(node.returns)
        self.visit(node.args)
        self.function_stack.append(name)
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            self.visit(stmt)
        self.function_stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, "<lambda>")

    def visit_Call(self, node: ast.Call) -> None:
        name = self.resolve(node.func)
        if name == "builtins.getattr" and len(node.args) >= 2:
            name, what = self._getattr(node.args[0], node.args[1])
        else:
            what = _judge(name, node) if name else None
        if what is not None and len(self.calls) < MAX_CALLS:
            self.calls.append(PyCall(name or "", what, node.lineno, not self.function_stack,
                                     self.function_stack[-1] if self.function_stack else ""))
        self.generic_visit(node)

    def _getattr(self, target: ast.expr, attr: ast.expr) -> tuple[str | None, str | None]:
        """getattr(module, "name") is module.name; a computed name on a module that runs
        code (os, builtins, subprocess ...) is a lookup meant to hide the call."""
        base = self.resolve(target)
        if base is None:
            return None, None
        if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            name = f"{base}.{attr.value}"
            return name, DANGEROUS_CALLS.get(name)
        if base.split(".")[0] in _CODE_MODULES:
            return f"{base}.<computed>", "looks up a function by a computed name"
        return None, None

    def resolve(self, func: ast.expr) -> str | None:
        """The dotted name a call refers to, with import aliases expanded."""
        parts: list[str] = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Subscript) and isinstance(func.value, ast.Name) and \
                func.value.id in ("__builtins__", "builtins"):
            key = func.slice
            head = f"builtins.{key.value}" if isinstance(key, ast.Constant) and \
                isinstance(key.value, str) else "builtins.<computed>"
            return ".".join([head, *reversed(parts)])
        if isinstance(func, ast.Call):
            inner = self.resolve(func.func)  # __import__("os").system, importlib.import_module
            if inner == "builtins.getattr" and len(func.args) >= 2:
                looked_up = self._getattr(func.args[0], func.args[1])[0]
                return ".".join([looked_up, *reversed(parts)]) if looked_up else None
            if inner in ("builtins.__import__", "importlib.import_module") and func.args and \
                    isinstance(func.args[0], ast.Constant) and isinstance(func.args[0].value, str):
                return ".".join([func.args[0].value, *reversed(parts)])
            return None
        if not isinstance(func, ast.Name):
            return None
        alias = self.aliases.get(func.id)
        if alias is None:
            alias = f"builtins.{func.id}" if func.id in _BUILTINS and not parts else func.id
        return ".".join([alias, *reversed(parts)])


def _judge(name: str, call: ast.Call) -> str | None:
    if name in DANGEROUS_CALLS:
        return DANGEROUS_CALLS[name]
    if name.startswith("__builtins__."):
        return _judge("builtins." + name.split(".", 1)[1], call)
    if name.endswith(".<computed>") and name.split(".")[0] in _CODE_MODULES:
        return "calls a function looked up by a computed name"
    if name.startswith(("os.exec", "os.spawn", "subprocess.")):
        return "starts a process"
    if name == "builtins.open" and _writes(call):
        return "writes a file"
    if name == "builtins.breakpoint":
        return "starts the debugger"
    return None


def _writes(call: ast.Call) -> bool:
    """open(..., mode) with a write, append, create or update mode (or a computed one)."""
    mode: ast.expr | None = call.args[1] if len(call.args) >= 2 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(_WRITE_MODES & set(mode.value))
    return True


def looks_like_python(text: str) -> bool:
    """Whether free text is Python code (parses, and has a call, import or definition)."""
    if "\n" not in text.strip() and "(" not in text:
        return False
    try:
        tree = ast.parse(text[:MAX_SOURCE_CHARS])
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.Call, ast.Import, ast.ImportFrom, ast.FunctionDef,
                              ast.ClassDef)) for n in ast.walk(tree))
