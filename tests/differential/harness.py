"""Differential harness: load each variant with the *real* loader in a throw-away subprocess
and directory, watch for a harmless canary, and compare with what hex reports.

A family module (``families/*.py``) yields :class:`Variant` objects built by the real libraries
(or assembled byte by byte where no library writes the quirk). Each variant gets its own canary
file; its payload only creates that file. The harness then:

1. writes every variant under one directory,
2. loads them with the loader each names, in subprocesses whose cwd is a scratch directory
   (one subprocess per loader for a whole batch; a crash restarts the batch after the culprit),
3. runs ``hex scan --json`` once over the directory,
4. returns one :class:`Outcome` per variant: did the canary fire, what did hex report.

The rule the tests apply: a variant whose canary fired must be caught at HIGH or above; a
benign variant (no payload) must stay below MEDIUM. Variants that do not fire are counted but
not judged: the loader refused them, which is what a loader differential looks like from the
other side. Nothing in this module loads anything in the test process itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent

SEVERITY_RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFO": 0}

_CHAT = (
    "CHAT = dict(messages=[{'role': 'user', 'content': 'hi'}, {'role': 'assistant', "
    "'content': 'hello'}, {'role': 'user', 'content': 'bye'}], add_generation_prompt=True, "
    "bos_token='<s>', eos_token='</s>', x='')\n"
)

#: The real loaders, each a script run as ``python -c SCRIPT FILE...``. Each file is loaded in
#: order; the script prints ``ok N`` or ``err N`` after each so the harness can restart a batch
#: after a file that killed the interpreter. Loading happens only here, never in hex.
LOADERS: dict[str, str] = {
    "pickle": "import pickle\ndef load(p):\n    with open(p, 'rb') as f:\n        pickle.load(f)\n",
    "pickle-py": (
        "import pickle\ndef load(p):\n    with open(p, 'rb') as f:\n"
        "        pickle._Unpickler(f).load()\n"
    ),
    "pickle-all": (  # every stacked stream, as a legacy torch file or a pickle log is read
        "import pickle\ndef load(p):\n    with open(p, 'rb') as f:\n"
        "        while f.peek(1):\n"
        "            pickle.load(f)\n"
    ),
    "pickle-py-all": (  # the same with the pure-Python unpickler (frames read as a whole)
        "import pickle\ndef load(p):\n    with open(p, 'rb') as f:\n"
        "        while f.peek(1):\n"
        "            pickle._Unpickler(f).load()\n"
    ),
    "torch": (
        "import torch\ndef load(p):\n    torch.load(p, weights_only=False, map_location='cpu')\n"
    ),
    "joblib": "import joblib\ndef load(p):\n    joblib.load(p)\n",
    "numpy": (
        "import numpy\ndef load(p):\n    r = numpy.load(p, allow_pickle=True)\n"
        "    if hasattr(r, 'files'):\n        [r[k] for k in r.files]\n"
    ),
    "jinja2": (
        "import jinja2\ndef load(p):\n    with open(p, encoding='utf-8') as f:\n"
        "        jinja2.Environment().from_string(f.read()).render(messages=[], x='')\n"
    ),
    # A chat template rendered as a runtime renders a conversation: a plain Environment
    # (llama-cpp-python before 0.2.72 and other ports) or transformers' immutable sandbox.
    "jinja2-chat": (
        "import jinja2\n" + _CHAT + "def load(p):\n    with open(p, encoding='utf-8') as f:\n"
        "        jinja2.Environment().from_string(f.read()).render(**CHAT)\n"
    ),
    "jinja2-sandbox": (
        "from jinja2.sandbox import ImmutableSandboxedEnvironment\n" + _CHAT +
        "def load(p):\n    with open(p, encoding='utf-8') as f:\n"
        "        ImmutableSandboxedEnvironment().from_string(f.read()).render(**CHAT)\n"
    ),
    "onnx": (  # onnx.load reads external data; a variant fires when a secret reaches a tensor
        "import pathlib, onnx\n"
        "def load(p):\n    m = onnx.load(p)\n"
        "    tensors = list(m.graph.initializer)\n"
        "    tensors += [a.t for n in m.graph.node for a in n.attribute]\n"
        "    if any(b'HEX-ONNX-SECRET' in t.raw_data for t in tensors):\n"
        "        q = pathlib.Path(p).resolve()\n"
        "        (q.parents[3] / 'canaries' / f'{q.parents[1].name}__{q.parent.name}').touch()\n"
    ),
    "onnxruntime": (  # a session built and run: the outputs show what the initializers hold
        "import pathlib, onnxruntime\n"
        "def load(p):\n"
        "    s = onnxruntime.InferenceSession(p, providers=['CPUExecutionProvider'])\n"
        "    if any(b'HEX-ONNX-SECRET' in o.tobytes() for o in s.run(None, {})):\n"
        "        q = pathlib.Path(p).resolve()\n"
        "        (q.parents[3] / 'canaries' / f'{q.parents[1].name}__{q.parent.name}').touch()\n"
    ),
    "torch-package": (  # the first pickle resource of the archive, as PackageImporter loads it
        "import torch.package, zipfile\n"
        "def load(p):\n"
        "    names = zipfile.ZipFile(p).namelist()\n"
        "    res = next(n for n in names if n.endswith('.pkl') and '/.data/' not in n)\n"
        "    pkg, _, name = res.partition('/')[2].rpartition('/')\n"
        "    torch.package.PackageImporter(p).load_pickle(pkg.replace('/', '.'), name)\n"
    ),
    "keras": (
        "import os\nos.environ.setdefault('KERAS_BACKEND', 'torch')\nimport keras\n"
        "def load(p):\n    m = keras.models.load_model(p, safe_mode=False, compile=False)\n"
        "    import numpy\n    m(numpy.zeros((1,) + tuple(m.input_shape[1:]), 'float32'))\n"
    ),
    "keras-safe": (  # keras' default: safe_mode=True
        "import os\nos.environ.setdefault('KERAS_BACKEND', 'torch')\nimport keras\n"
        "def load(p):\n    m = keras.models.load_model(p, compile=False)\n"
        "    import numpy\n    m(numpy.zeros((1,) + tuple(m.input_shape[1:]), 'float32'))\n"
    ),
}

_DRIVER = """
import sys
{loader}
for i, p in enumerate(sys.argv[1:]):
    try:
        load(p)
        print('ok', i, flush=True)
    except BaseException as e:
        print('err', i, type(e).__name__, flush=True)
"""


@dataclass(frozen=True)
class Extra:
    """A file or link written beside a variant before it is loaded.

    ``path`` is relative to the variant's directory and may climb with '..' (a secret the
    variant should not be able to reach lives outside it). ``link_to``, relative to the
    variant's directory too, makes ``path`` a symbolic link (or a hard link with ``hard``).
    """

    path: str
    data: bytes = b""
    link_to: str | None = None
    hard: bool = False
    judged: bool = False
    """The loader reads this file as part of the model (joblib's old ``_01.npy`` arrays): hex
    scans the directory, so the variant's verdict is the worst over it and the variant."""


@dataclass(frozen=True)
class Variant:
    """One file to load and to scan."""

    family: str
    name: str
    """Unique within the family; also the file's stem."""
    filename: str
    data: bytes
    loader: str
    """A key of :data:`LOADERS`."""
    malicious: bool = True
    """False for a benign twin: it carries no payload and must not be flagged."""
    extras: tuple[Extra, ...] = ()
    """Files the variant needs beside it (external data, a secret, links, side arrays)."""


@dataclass(frozen=True)
class Outcome:
    variant: Variant
    fired: bool
    loader_result: str
    """``ok``, ``err <Exception>`` or ``crash``."""
    severity: str | None
    """The most severe finding hex reported on the file, or None."""
    errors: tuple[str, ...] = ()

    @property
    def caught(self) -> bool:
        return SEVERITY_RANK.get(self.severity or "", -1) >= SEVERITY_RANK["HIGH"]

    @property
    def quiet(self) -> bool:
        return SEVERITY_RANK.get(self.severity or "", -1) < SEVERITY_RANK["MEDIUM"]


PayloadFor = Callable[[str], str]
"""variant key -> Python source whose only effect is to create that variant's canary."""

Family = Callable[[PayloadFor], Iterable[Variant]]


def canary_source(canary_dir: Path) -> PayloadFor:
    def payload(key: str) -> str:
        return f"open({str(canary_dir / key)!r}, 'w').close()"

    return payload


def shell_canary(canary_dir: Path) -> Callable[[str], str]:
    """The same canary as a shell command (for ``os.system``-style payloads)."""

    def payload(key: str) -> str:
        return f"touch {canary_dir / key}"

    return payload


def key_of(family: str, name: str) -> str:
    return f"{family}__{name}"


def _variant_path(root: Path, variant: Variant) -> Path:
    return root / variant.family / variant.name / variant.filename


def run_loader(loader: str, paths: list[Path], cwd: Path, timeout: float = 300) -> dict[int, str]:
    """Load ``paths`` with ``loader`` in subprocesses; index -> ``ok`` / ``err X`` / ``crash``."""
    results: dict[int, str] = {}
    start = 0
    script = _DRIVER.format(loader=LOADERS[loader])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "KERAS_BACKEND": "torch"}
    # the tests directory, so that a variant may name the stand-in gadget (differential.gadget)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(TESTS_DIR), env.get("PYTHONPATH"))))
    while start < len(paths):
        batch = [str(p) for p in paths[start:]]
        try:
            # The test's own loader process (differential testing); hex never runs this.
            proc = subprocess.run([sys.executable, "-c", script, *batch],  # noqa: S603
                                  cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
            out = proc.stdout
        except subprocess.TimeoutExpired as exc:
            raw = exc.stdout or b""
            out = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        done = -1
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("ok", "err") and parts[1].isdigit():
                idx = start + int(parts[1])
                results[idx] = "ok" if parts[0] == "ok" else "err " + " ".join(parts[2:])
                done = int(parts[1])
        if start + done + 1 >= len(paths):
            break
        results[start + done + 1] = "crash"
        start = start + done + 2
    return results


def scan_severities(
    root: Path, run_hex: Callable[..., object]
) -> tuple[dict[Path, str], dict[Path, list[str]]]:
    """Run hex once over ``root``; top-level file -> most severe finding, and its errors."""
    run = run_hex("scan", str(root), "--json", "--fail-on", "CRITICAL")
    report = json.loads(run.stdout)  # type: ignore[attr-defined]
    worst: dict[Path, str] = {}
    for finding in report["results"]:
        path = Path(finding["file_path"]).resolve()
        sev = finding["severity"].upper()
        if SEVERITY_RANK[sev] > SEVERITY_RANK.get(worst.get(path, ""), -1):
            worst[path] = sev
    errors: dict[Path, list[str]] = {}
    for err in report.get("errors", []):
        path = Path(err["path"]).resolve()
        errors.setdefault(path, []).append(str(err.get("message") or err))
    return worst, errors


def run_families(families: Iterable[Family], workdir: Path,
                 run_hex: Callable[..., object]) -> list[Outcome]:
    """Build, load, scan and compare every variant of ``families`` under ``workdir``."""
    root, canaries, cwd = workdir / "variants", workdir / "canaries", workdir / "cwd"
    for d in (root, canaries, cwd):
        d.mkdir(parents=True, exist_ok=True)
    payload = canary_source(canaries)
    variants = [v for family in families for v in family(payload)]
    names = [(v.family, v.name) for v in variants]
    assert len(names) == len(set(names)), "variant names must be unique within a family"
    for v in variants:
        path = _variant_path(root, v)
        path.parent.mkdir(parents=True, exist_ok=True)
        for extra in v.extras:
            _write_extra(path.parent, extra)
        path.write_bytes(v.data)
    by_loader: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        by_loader.setdefault(v.loader, []).append(i)
    loaded: dict[int, str] = {}
    for loader, indices in by_loader.items():
        res = run_loader(loader, [_variant_path(root, variants[i]) for i in indices], cwd)
        for j, i in enumerate(indices):
            loaded[i] = res.get(j, "crash")
    worst, errors = scan_severities(root, run_hex)
    outcomes = []
    for i, v in enumerate(variants):
        path = _variant_path(root, v).resolve()
        fired = (canaries / key_of(v.family, v.name)).exists()
        paths = [path, *((path.parent / e.path).resolve() for e in v.extras if e.judged)]
        severities = [worst[p] for p in paths if p in worst]
        severity = max(severities, key=SEVERITY_RANK.__getitem__) if severities else None
        outcomes.append(Outcome(v, fired, loaded[i], severity,
                                tuple(e for p in paths for e in errors.get(p, ()))))
    return outcomes


def _write_extra(directory: Path, extra: Extra) -> None:
    target = directory / extra.path
    target.parent.mkdir(parents=True, exist_ok=True)
    if extra.link_to is None:
        target.write_bytes(extra.data)
    elif extra.hard:
        os.link((directory / extra.link_to).resolve(), target)
    else:
        target.symlink_to((directory / extra.link_to).resolve())


def summarise(outcomes: Iterable[Outcome]) -> dict[str, dict[str, int]]:
    """family -> counts of tried / fired / caught (of fired) / benign / benign_quiet."""
    table: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = table.setdefault(o.variant.family, dict.fromkeys(
            ("tried", "fired", "caught", "benign", "benign_quiet"), 0))
        row["tried"] += 1
        if o.variant.malicious:
            row["fired"] += o.fired
            row["caught"] += o.fired and o.caught
        else:
            row["benign"] += 1
            row["benign_quiet"] += o.quiet
    return table
