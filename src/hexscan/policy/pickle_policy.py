"""The pickle policy: allow-by-exception data and the judge that applies it.

The policy is data so that it can be reviewed, diffed and extended without touching code: which
globals are dangerous in any use, which are expected in benign model pickles and for which uses,
and the severity of everything else. :func:`judge` turns a
:class:`~hexscan.parsers.pickle_vm.PickleView` into verdicts; severity follows what the pickle would
*do* with a global (call it, construct it, only import it), never where a model claims to come from.
The data (``pickle.toml`` and the generated ``pickle_allowlist.toml``) is loaded and validated in
:mod:`hexscan.policy.pickle_policy_data`; this module re-exports what callers need from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from hexscan.parsers.pickle_values import PROTOCOL_METHODS
from hexscan.parsers.pickle_vm import GlobalUse, NestedPickle, PickleView, canonical_name
from hexscan.policy.capabilities import find_gadget
from hexscan.policy.pickle_policy_data import SEVERITIES, PicklePolicy, PolicyError, load_policy

__all__ = ["KINDS", "SEVERITIES", "PicklePolicy", "PolicyError", "Verdict", "judge", "load_policy"]

KINDS = (
    "dangerous-global",
    "unsafe-call",
    "unknown-class",
    "unknown-extension",
    "malformed",
    "limit",
    "nested-pickle",
)
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_USE_STRENGTH = {
    "called": 0, "constructed": 1, "mutated": 2, "attribute": 3, "referenced": 4, "resolved": 5
}
_LOOKUP_ONLY = frozenset({"referenced", "resolved"})
"""Uses of a lookup function (``getattr``) that only resolved known names (see _judge_lookups)."""
_USE_KIND = {
    "called": "unsafe-call",
    "mutated": "unsafe-call",
    "constructed": "unknown-class",
    "referenced": "unknown-class",
    "attribute": "unknown-class",
    "resolved": "unsafe-call",
}
_USE_PHRASE = {
    "called": "is called",
    "constructed": "is instantiated (cls.__new__ + its __setstate__): requires code you trust",
    "mutated": "is modified while loading",
    "attribute": "is reached dynamically",
    "referenced": "is imported (its module's import-time code runs)",
    "resolved": "looks up a name known statically",
}


@dataclass(frozen=True)
class Verdict:
    kind: str
    severity: str
    module: str
    name: str
    use: str
    expression: str
    offset: int
    message: str


# ---------------------------------------------------------------------------- judging


def judge(view: PickleView, policy: PicklePolicy) -> list[Verdict]:
    """Verdicts for everything in ``view`` (and its nested pickles), most severe first."""
    verdicts = [
        *_judge_globals(view.globals, policy),
        *_judge_stream(view, policy),
        *(v for nested in view.nested for v in _judge_nested(nested, policy)),
    ]
    return sorted(verdicts, key=lambda v: (_RANK[v.severity], v.offset))


def _judge_globals(uses: Iterable[GlobalUse], policy: PicklePolicy) -> list[Verdict]:
    by_name: dict[str, list[GlobalUse]] = {}
    for use in uses:
        by_name.setdefault(use.full, []).append(use)
    verdicts: list[Verdict] = []
    lookups: list[GlobalUse] = []
    for name, records in by_name.items():
        records.sort(key=lambda g: _USE_STRENGTH[g.use])
        if {r.use for r in records} <= _LOOKUP_ONLY and records[-1].use == "resolved":
            lookups.append(records[-1])  # judged below, against the rest of the pickle
            continue
        first = records[0]
        reason = (policy.danger(name) or policy.danger(first.canonical)
                  or policy.danger_through(first.qualname))
        if reason:
            verdicts.append(_dangerous(records[0], reason))
            continue
        gadget = find_gadget(records)  # library callables that reach a sink (capabilities.py)
        if gadget:
            severity = min(gadget.severity, policy.severity[gadget.use.use], key=_RANK.__getitem__)
            verdicts.append(_global_verdict("dangerous-global", severity, gadget.use,
                                            gadget.message))
            continue
        for record in records:
            if record.use == "referenced" and len(records) > 1:
                continue  # the stronger use of the same name carries the verdict
            verdict = _judge_use(record, policy)
            if verdict:
                verdicts.append(verdict)
    return verdicts + _judge_lookups(lookups, verdicts, policy)


def _judge_lookups(lookups: list[GlobalUse], verdicts: list[Verdict],
                   policy: PicklePolicy) -> list[Verdict]:
    """A getattr that only resolved constant names is silent in a pickle that does nothing
    alarming (CPython's own ``getattr(ZoneInfo, '_unpickle')``). Once any global raises an
    alarm, every lookup is reported with it: what it reached may be handed to the alarming
    call (``apply(getattr(dict, 'get'), ...)``), which the judge cannot rule out."""
    if not any(_RANK[v.severity] <= _RANK["MEDIUM"] for v in verdicts):
        return []
    return [_dangerous(use, policy.danger(use.full) or policy.danger(use.canonical)
                       or "looks up names dynamically") for use in lookups]


def _dangerous(use: GlobalUse, reason: str) -> Verdict:
    message = f"{use.full} {reason}; it {_USE_PHRASE[use.use]}: {use.expression}"
    return _global_verdict("dangerous-global", "CRITICAL", use, message)


def _judge_use(use: GlobalUse, policy: PicklePolicy) -> Verdict | None:
    if use.module == "?":
        kind = (
            "unsafe-call" if use.use in ("called", "constructed", "mutated") else "dangerous-global"
        )
        message = (
            f"a global computed at load time could not be resolved statically ({use.use}): "
            f"{use.expression}"
        )
        return _global_verdict(kind, policy.severity["unresolved"], use, message)
    if use.use == "resolved":
        return None  # the lookup's target carries the verdict
    if _is_protocol_call(use):  # the unpickler's own append/__setitem__/... on what it built
        owner_module, owner = use.module, use.qualname.rpartition(".")[0]
        use = dataclasses.replace(use, qualname=owner, use="constructed",
                                  canonical=canonical_name(owner_module, owner))
        if "called" in (policy.allowed_uses(use.full) or ()):
            return None
    allowed = policy.allowed_uses(use.full) or frozenset()
    if use.canonical != use.full:
        allowed |= policy.allowed_uses(use.canonical) or frozenset()
    if use.use in allowed:
        return None
    message = f"{use.full} is not on the allowlist and {_USE_PHRASE[use.use]}: {use.expression}"
    return _global_verdict(_USE_KIND[use.use], policy.severity[use.use], use, message)


def _is_protocol_call(use: GlobalUse) -> bool:
    """A method the unpickler calls on an object the pickle built, recorded as ``<type>.<method>``:
    it is the class's own code, trusted exactly as far as constructing the class is."""
    owner, _, method = use.qualname.rpartition(".")
    return (use.use == "called" and bool(owner) and method in PROTOCOL_METHODS
            and use.opcode in _PROTOCOL_OPCODES)


_PROTOCOL_OPCODES = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})


def _global_verdict(kind: str, severity: str, use: GlobalUse, message: str) -> Verdict:
    return Verdict(
        kind, severity, use.module, use.qualname, use.use, use.expression, use.offset, message
    )


def _plain(kind: str, severity: str, offset: int, message: str) -> Verdict:
    return Verdict(kind, severity, "", "", "", "", offset, message)


def _judge_stream(view: PickleView, policy: PicklePolicy) -> list[Verdict]:
    sev = policy.severity
    verdicts = [
        _plain(
            "unknown-extension",
            sev["unknown_extension"],
            e.offset,
            f"extension code {e.code} is not in the standard copyreg registry: "
            "a loader with a custom registry decides what it imports",
        )
        for e in view.extensions
        if e.module is None
    ]
    verdicts += [
        _plain(
            "malformed",
            sev["malformed"],
            m.offset,
            f"malformed pickle (stream {m.stream}): {m.message}; "
            "a loader may have run what came before",
        )
        for m in view.malformations
    ]
    verdicts += [
        _plain(
            "limit",
            sev["limit"],
            hit.offset,
            f"analysis stopped at limit {hit.limit}: {hit.message}",
        )
        for hit in view.limit_hits
    ]
    verdicts += [
        _plain(
            "malformed",
            sev["trailing_data"],
            t.offset,
            f"{t.length} bytes after the last pickle stream are not a pickle",
        )
        for t in view.trailing
    ]
    if view.truncated_values:
        verdicts.append(
            _plain(
                "limit",
                sev["truncated_values"],
                0,
                f"{view.truncated_values} oversized str/bytes values were skipped "
                "and not searched for embedded pickles",
            )
        )
    return verdicts


def _judge_nested(nested: NestedPickle, policy: PicklePolicy) -> list[Verdict]:
    inner = judge(nested.view, policy)
    worst = min((_RANK[v.severity] for v in inner), default=_RANK["INFO"])
    key = "nested_pickle_with_findings" if worst <= _RANK["MEDIUM"] else "nested_pickle"
    where = (
        f"{nested.encoding} pickle embedded in a str/bytes value at offset {nested.offset} "
        f"(depth {nested.depth})"
    )
    summary = _plain(
        "nested-pickle",
        policy.severity[key],
        nested.offset,
        f"{where}; {len(inner)} finding(s) inside; it only runs if something loads it",
    )
    relocated = [
        Verdict(
            v.kind,
            v.severity,
            v.module,
            v.name,
            v.use,
            v.expression,
            nested.offset,
            f"in {where}: {v.message}",
        )
        for v in inner
    ]
    return [summary, *relocated]
