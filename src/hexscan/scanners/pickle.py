"""The ``pickle`` scanner: what loading a pickle-bearing file would do.

It serves every format whose loader unpickles: raw pickles, joblib, legacy PyTorch files
(every stacked pickle), the pickles inside PyTorch/TorchScript zips (members identified as
pickle), and NumPy object arrays. The symbolic machine (parsers/pickle_vm) says what the
stream does; the policy (policy/pickle.toml) says which of it is acceptable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from hexscan.discover.artifact import MEMBER_SEP, Artifact
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.numpy import object_data_offset, read_npy_header
from hexscan.parsers.pickle_view import EmbeddedContainer, PickleView
from hexscan.parsers.pickle_vm import analyze_pickle
from hexscan.parsers.torch_legacy import RECORD_MEMBERS, RecordPickle, walk_records
from hexscan.policy.pickle_policy import PicklePolicy, Verdict, judge, load_policy
from hexscan.rules import pickle as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext
from hexscan.scanners.joblib_sidecars import SIDECAR_RULE, sidecar_findings


class PickleScanner:
    """Judges every pickle stream hex finds."""

    name: ClassVar[str] = "pickle"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({
        Format.PICKLE, Format.JOBLIB, Format.PYTORCH_LEGACY, Format.NUMPY,
    })
    rules: ClassVar[tuple[Rule, ...]] = (*rules.RULE_FOR_KIND.values(), SIDECAR_RULE)

    def __init__(self) -> None:
        self._policies: dict[str, PicklePolicy] = {}

    def policy(self, options: Mapping[str, Any]) -> PicklePolicy:
        """The built-in policy with the user's overrides, built once per worker."""
        extra = options.get("pickle_policy") or {}
        key = json.dumps(extra, sort_keys=True, default=str)
        if key not in self._policies:
            self._policies[key] = load_policy(extra)
        return self._policies[key]

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        start = 0
        if ctx.format is Format.NUMPY:
            found = _npy_pickle_start(artifact)
            if found is None:
                return
            start = found
        elif _is_legacy_records(artifact):
            yield from self._legacy_records(artifact, ctx)
            return
        with artifact.open() as stream:
            stream.seek(start)
            view = analyze_pickle(stream)
        for verdict in judge(view, self.policy(ctx.options)):
            yield _finding(verdict, start)
        for offset, container in _embedded(view):
            ctx.embedded.append((f"{container.kind}@{start + offset}", container.data))
        if _SIDECAR_WRAPPERS & view.global_names():
            yield from sidecar_findings(artifact, start)

    def _legacy_records(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        """Judge each pickle torch's legacy tar loader unpickles from this member; where the
        layout is lost, judge the rest as stacked pickles (and say so)."""
        policy = self.policy(ctx.options)
        with artifact.open() as stream:
            for record in walk_records(stream, artifact.basename):
                if isinstance(record, RecordPickle):
                    for verdict in judge(analyze_pickle(record.data), policy):
                        yield _finding(verdict, record.offset)
                    continue
                if record.layout:
                    yield Finding(rules.MALFORMED_PICKLE, f"{artifact.basename}: the legacy torch "
                                  f"record layout is lost at byte {record.offset} "
                                  f"({record.reason}); the rest is judged as stacked pickles",
                                  key="legacy-layout", offset=record.offset,
                                  evidence={"kind": "malformed"})
                stream.seek(record.offset)
                for verdict in judge(analyze_pickle(stream), policy):
                    yield _finding(verdict, record.offset)


#: joblib <= 0.9 array placeholders: ``read`` loads ``os.path.join(dir, filename)``.
_SIDECAR_WRAPPERS = frozenset({"joblib.numpy_pickle_compat.NDArrayWrapper",
                               "joblib.numpy_pickle_compat.ZNDArrayWrapper",
                               "sklearn.externals.joblib.numpy_pickle_compat.NDArrayWrapper"})


def _embedded(view: PickleView) -> Iterator[tuple[int, EmbeddedContainer]]:
    """Files inside the pickle (and its nested pickles) a loader reads whole, e.g. the torch
    zip given to ``torch.storage._load_from_bytes``: the engine walks them as members."""
    for container in view.containers:
        yield container.offset, container
    for nested in view.nested:
        for _, container in _embedded(nested.view):
            yield nested.offset, container


def _is_legacy_records(artifact: Artifact) -> bool:
    """A top-level ``storages`` / ``tensors`` member of a tar (torch's legacy tar layout)."""
    member = artifact.member or ""
    last = member.rsplit(MEMBER_SEP, 1)[-1]
    return artifact.parent_format is Format.TAR and last in RECORD_MEMBERS


def _npy_pickle_start(artifact: Artifact) -> int | None:
    """Where NumPy's loader (pickles allowed) starts unpickling, or None when it does not.

    An object dtype (any spelling, see parsers/numpy) is unpickled; a descr numpy would
    reject is judged only when pickle bytes follow it, so a spelling hex misreads still
    has its payload scanned.
    """
    with artifact.open() as stream:
        header = read_npy_header(stream)
        first = stream.read(1)
    if header.objects is False:
        return None
    if header.objects is None and not (first[:1] == b"\x80" or first in _PICKLE0_STARTS):
        return None
    if header.data_offset >= len(artifact.head()):
        return header.data_offset
    return object_data_offset(artifact.head(), header)


#: First bytes of protocol 0/1 pickles (MARK, GLOBAL, EMPTY_LIST/DICT/TUPLE ...).
_PICKLE0_STARTS = frozenset({b"(", b"c", b"]", b"}", b")", b"N", b"I", b"S", b"V"})


def _finding(verdict: Verdict, start: int) -> Finding:
    name = f"{verdict.module}.{verdict.name}" if verdict.module else ""
    evidence: dict[str, Any] = {"kind": verdict.kind}
    if name:
        evidence.update({"global": name, "use": verdict.use, "expression": verdict.expression})
    return Finding(
        rules.RULE_FOR_KIND[verdict.kind],
        verdict.message,
        key=f"{verdict.kind}:{name}:{verdict.use}",
        severity=Severity[verdict.severity],
        confidence=0.95 if verdict.kind in ("dangerous-global", "unsafe-call") else 0.8,
        evidence=evidence,
        offset=start + verdict.offset,
    )
