"""Generate ``src/hexscan/policy/pickle_allowlist.toml`` from pickles of real objects.

The catalogue (``pickle_catalogue.py``) builds ordinary objects with the installed stdlib, NumPy,
pandas, SciPy, scikit-learn and PyTorch. Each is pickled in every protocol (0-5), and written with
``joblib.dump`` and ``torch.save`` where those apply. hex's own pickle machine reads the bytes and
reports every global with how the pickle uses it; those (name, use) pairs become allow entries,
each with the library versions that produced it as provenance. Nothing is typed by hand.

Two steps, so that older library versions can be merged without installing them next to the
current ones::

    # in each environment (the current one; a throw-away venv with older numpy/pandas ...)
    python tools/policy/gen_pickle_allowlist.py collect --out tools/policy/records/NAME.json
    # then, anywhere: merge every record file into the policy data file
    python tools/policy/gen_pickle_allowlist.py write tools/policy/records/*.json

``write`` refuses (exit status 1, nothing written) when a recorded name is one the policy lists
as dangerous: a generated entry must never allow what the dangerous list names, and such a
collision means either the catalogue holds a dangerous object or the dangerous list is wrong;
a human decides. Uses hex cannot allow (``mutated``) and non-global findings are reported too.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUTPUT = REPO / "src" / "hexscan" / "policy" / "pickle_allowlist.toml"
sys.path[:0] = [str(HERE), str(REPO / "src")]

from pickle_catalogue import BUILDERS, TORCH_SAVE_ONLY, library_versions  # noqa: E402

from hexscan.parsers.pickle_vm import PickleView, analyze_pickle  # noqa: E402
from hexscan.policy.pickle_policy import judge, load_policy  # noqa: E402

ALLOWABLE = ("attribute", "called", "constructed", "referenced")
LOOKUP_ONLY = {"resolved"}
"""A statically resolved getattr: its target is recorded; the lookup itself needs no entry."""
ALARM = ("CRITICAL", "HIGH", "MEDIUM")


@dataclass(frozen=True)
class Serialised:
    """One way of writing one catalogue object: what hex's machine reads."""

    library: str
    label: str
    writer: str
    data: bytes


def _pickles(library: str, label: str, obj: Any) -> Iterator[Serialised]:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        try:
            data = pickle.dumps(obj, protocol)
        except Exception as error:  # noqa: BLE001 - a protocol the object cannot use is skipped
            print(f"  skip {library}/{label} protocol {protocol}: {error}", file=sys.stderr)
            continue
        yield Serialised(library, label, f"pickle-p{protocol}", data)


def _joblib(library: str, label: str, obj: Any, workdir: Path) -> Iterator[Serialised]:
    import joblib

    path = workdir / f"{library}-{label}.joblib"
    joblib.dump(obj, path)
    yield Serialised(library, label, "joblib.dump", path.read_bytes())


def _torch(library: str, label: str, obj: Any) -> Iterator[Serialised]:
    import torch

    buffer = io.BytesIO()
    try:
        torch.save(obj, buffer)
    except Exception as error:  # noqa: BLE001 - reported, like a protocol an object cannot use
        print(f"  skip {library}/{label} torch.save: {error}", file=sys.stderr)
        return
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        for member in archive.namelist():
            if member.endswith(".pkl"):
                yield Serialised(library, label, f"torch.save:{member.split('/')[-1]}",
                                 archive.read(member))
    if label in TORCH_SAVE_ONLY:
        return
    legacy = io.BytesIO()
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    yield Serialised(library, label, "torch.save-legacy", legacy.getvalue())


def serialisations(libraries: list[str], workdir: Path) -> Iterator[Serialised]:
    """Every catalogue object in every writer that applies to it."""
    for library, build in BUILDERS.items():
        if libraries and library not in libraries:
            continue
        try:
            entries = list(build())
        except ImportError as error:
            print(f"skip {library}: {error}", file=sys.stderr)
            continue
        for label, obj in entries:
            if label not in TORCH_SAVE_ONLY:
                yield from _pickles(library, label, obj)
            if library in ("numpy", "pandas", "scipy", "sklearn", "lightgbm"):
                yield from _joblib(library, label, obj, workdir)
            if library == "torch":
                yield from _torch(library, label, obj)


def _views(view: PickleView) -> Iterator[PickleView]:
    yield view
    for nested in view.nested:
        yield from _views(nested.view)


def collect(libraries: list[str]) -> dict[str, Any]:
    """Run hex's machine over the catalogue: {name: {use: [writers]}} plus problems."""
    versions = library_versions()
    names: dict[str, dict[str, set[str]]] = {}
    problems: set[str] = set()
    dangerous: set[str] = set()
    """Names that reach a dangerous module through an attribute path (only the machine's split
    into module and qualified name shows that, so it is checked while collecting)."""
    policy = load_policy()
    count = 0
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in serialisations(libraries, Path(tmp)):
            count += 1
            view = analyze_pickle(item.data)
            source = "stdlib" if item.library == "stdlib" else item.library
            provenance = f"{source} {versions.get(source, versions['python'])}"
            for part in _views(view):
                for use in part.globals:
                    names.setdefault(use.canonical, {}).setdefault(use.use, set()).add(provenance)
                    through = policy.danger_through(use.qualname)
                    if through and use.use != "resolved":
                        dangerous.add(f"{use.canonical}: {through} ({provenance})")
            problems.update(
                f"{item.library}/{item.label} {item.writer}: {v.kind} {v.message}"
                for v in judge(view, policy)
                if v.severity in ALARM and not v.module
            )
    return {
        "versions": versions,
        "serialisations": count,
        "names": {n: {u: sorted(p) for u, p in uses.items()} for n, uses in names.items()},
        "problems": sorted(problems),
        "dangerous": sorted(dangerous),
    }


def _entries(records: list[dict[str, Any]]) -> tuple[dict[str, dict[str, set[str]]], list[str]]:
    """Merge record files: name -> {"uses": ..., "provenance": ...}; and what cannot be allowed."""
    merged: dict[str, dict[str, set[str]]] = {}
    refused: list[str] = []
    for record in records:
        for name, uses in record["names"].items():
            entry = merged.setdefault(name, {"uses": set(), "provenance": set(), "seen": set()})
            for use, provenance in uses.items():
                entry["seen"].add(use)
                entry["provenance"].update(provenance)
                if use in ALLOWABLE:
                    entry["uses"].add(use)
                elif use not in LOOKUP_ONLY:
                    refused.append(f"{name}: use {use!r} cannot be allowed ({sorted(provenance)})")
    for name, entry in list(merged.items()):
        if entry["seen"] <= LOOKUP_ONLY | {"referenced"} and "resolved" in entry["seen"]:
            del merged[name]  # a lookup whose targets are recorded on their own
    return merged, refused


def collisions(names: list[str]) -> list[str]:
    """Names the built-in policy calls dangerous: the generator must never allow them.

    The module/attribute split is not kept here, so this is ``danger`` on the full name (the
    judge also walks the qualified name for a dangerous module reached through an attribute,
    and that check runs before any allow entry is consulted).
    """
    policy = load_policy()
    found = []
    for name in names:
        reason = policy.danger(name)
        if reason:
            found.append(f"{name}: {reason}")
    return found


def render(records: list[dict[str, Any]], merged: dict[str, dict[str, set[str]]]) -> str:
    """The TOML text, sorted, with a header saying how to regenerate it."""
    lines = [
        "# GENERATED by tools/policy/gen_pickle_allowlist.py: do not edit by hand.",
        "# Every entry is a global that pickles of ordinary objects of the libraries below use,",
        "# with the uses hex's own pickle machine saw. Regenerate (see the script's docstring):",
        "#   python tools/policy/gen_pickle_allowlist.py collect \\",
        "#       --out tools/policy/records/NAME.json",
        "#   python tools/policy/gen_pickle_allowlist.py write tools/policy/records/*.json",
        "# Dangerous entries of pickle.toml always win; the generator refuses a collision.",
        "",
        "version = 1",
        "",
        "[sources]",
        "# record file -> library versions it was collected with",
    ]
    for record in sorted(records, key=lambda r: r["source"]):
        pairs = ", ".join(f'{k} = "{v}"' for k, v in sorted(record["versions"].items()))
        lines.append(f'"{record["source"]}" = {{ {pairs} }}')
    lines += ["", "[names]"]
    for name in sorted(merged):
        entry = merged[name]
        uses = ", ".join(f'"{u}"' for u in sorted(entry["uses"] - {"referenced"}))
        provenance = ", ".join(f'"{p}"' for p in sorted(entry["provenance"]))
        lines.append(f'"{name}" = {{ uses = [{uses}], provenance = [{provenance}] }}')
    return "\n".join(lines) + "\n"


def write(paths: list[Path], output: Path) -> int:
    records = []
    for path in sorted(paths):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["source"] = path.stem
        records.append(record)
    merged, refused = _entries(records)
    clashes = collisions(sorted(merged))
    clashes += [line for record in records for line in record.get("dangerous", [])]
    for record in records:
        for problem in record["problems"]:
            print(f"problem ({record['source']}): {problem}", file=sys.stderr)
    if clashes or refused:
        for line in clashes:
            print(f"REFUSED, dangerous name in benign pickles: {line}", file=sys.stderr)
        for line in refused:
            print(f"REFUSED: {line}", file=sys.stderr)
        return 1
    output.write_text(render(records, merged), encoding="utf-8")
    print(f"wrote {len(merged)} names to {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    collect_cmd = sub.add_parser("collect", help="pickle the catalogue with this environment")
    collect_cmd.add_argument("--out", type=Path, required=True)
    collect_cmd.add_argument("--library", action="append", default=[],
                             help=f"only these catalogue parts ({', '.join(BUILDERS)})")
    write_cmd = sub.add_parser("write", help="merge record files into the policy data file")
    write_cmd.add_argument("records", type=Path, nargs="+")
    write_cmd.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.command == "collect":
        record = collect(args.library)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{record['serialisations']} pickles, {len(record['names'])} names -> {args.out}")
        return 0
    return write(args.records, args.output)


if __name__ == "__main__":
    sys.exit(main())
