"""The pickle policy: allow-by-exception data (``pickle.toml``) and the judge that applies it.

The policy is data so that it can be reviewed, diffed and extended without touching code: which
globals are dangerous in any use, which are expected in benign model pickles and for which uses,
and the severity of everything else. :func:`judge` turns a
:class:`~hexscan.parsers.pickle_vm.PickleView` into verdicts; severity follows what the pickle would
*do* with a global (call it, construct it, only import it), never where a model claims to come from.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hexscan.parsers.pickle_vm import GlobalUse, NestedPickle, PickleView
from hexscan.policy.capabilities import find_gadget

__all__ = ["KINDS", "SEVERITIES", "PicklePolicy", "PolicyError", "Verdict", "judge", "load_policy"]

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
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
_ALLOWABLE_USES = frozenset({"called", "constructed", "attribute", "referenced"})
_IMPLIED_USES = frozenset({"referenced", "attribute"})
"""Any allow entry also allows importing and reaching the name (the reaching is judged itself)."""
_SEVERITY_KEYS = frozenset(
    {
        "called",
        "mutated",
        "constructed",
        "referenced",
        "attribute",
        "unresolved",
        "unknown_extension",
        "malformed",
        "limit",
        "trailing_data",
        "truncated_values",
        "nested_pickle",
        "nested_pickle_with_findings",
    }
)
_SEVERITY_ALIASES = {"unknown_class": "constructed"}
_USE_STRENGTH = {"called": 0, "constructed": 1, "mutated": 2, "attribute": 3, "referenced": 4}
_USE_KIND = {
    "called": "unsafe-call",
    "mutated": "unsafe-call",
    "constructed": "unknown-class",
    "referenced": "unknown-class",
    "attribute": "unknown-class",
}
_USE_PHRASE = {
    "called": "is called",
    "constructed": "is instantiated (cls.__new__ + its __setstate__): requires code you trust",
    "mutated": "is modified while loading",
    "attribute": "is reached dynamically",
    "referenced": "is imported (its module's import-time code runs)",
}


class PolicyError(ValueError):
    """The policy data (built-in or user-supplied) is not valid."""


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


@dataclass(frozen=True)
class PicklePolicy:
    """Validated policy. Build it with :func:`load_policy`."""

    allow_exact: Mapping[str, frozenset[str]]
    allow_prefix: Mapping[str, frozenset[str]]
    dangerous: Mapping[str, str]
    """Name (or prefix: everything below it) -> reason."""
    dangerous_attributes: frozenset[str]
    severity: Mapping[str, str] = field(default_factory=dict)

    def danger(self, name: str) -> str | None:
        """Why ``name`` (or a module/object above it) is dangerous, or None."""
        for prefix in _prefixes(name):
            if prefix in self.dangerous:
                return self.dangerous[prefix]
        segments = name.split(".")
        hit = next((s for s in segments[1:] if s in self.dangerous_attributes), None)
        return f"reaches interpreter internals through {hit}" if hit else None

    def danger_through(self, qualname: str) -> str | None:
        """Why a dotted qualname walks *through* a dangerous module, or None.

        ``find_class('pathlib', 'os.system')`` or ``torch.serialization.os.system`` reach
        ``os.system`` as an attribute of an innocent module that imported it (fickling
        GHSA-5j3x-jp52-966f). Every segment of the qualname that is followed by another
        one is a namespace, so the rest of the name is judged as if it were imported from
        there. A last segment alone is a plain function or class name (``numpy.trace``) and
        is not re-read as a module.
        """
        segments = qualname.split(".")
        for start in range(len(segments) - 1):
            for prefix in _prefixes(".".join(segments[start:])):
                if prefix in self.dangerous:
                    return f"reaches {prefix} through an attribute path: {self.dangerous[prefix]}"
        return None

    def allowed_uses(self, name: str) -> frozenset[str] | None:
        """Uses an allow entry grants for ``name``; None when no entry matches at all."""
        uses = self.allow_exact.get(name)
        for prefix in _prefixes(name)[1:]:
            extra = self.allow_prefix.get(prefix)
            if extra is not None:
                uses = extra if uses is None else uses | extra
        return None if uses is None else uses | _IMPLIED_USES


def _prefixes(name: str) -> list[str]:
    """``a.b.c`` -> ``['a.b.c', 'a.b', 'a']``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


# ---------------------------------------------------------------------------- loading


def load_policy(extra: Mapping[str, Any] | None = None) -> PicklePolicy:
    """The built-in policy, plus user overrides in the same shape as ``pickle.toml``.

    ``extra`` may add ``allow`` and ``dangerous`` entries, ``dangerous_attributes`` names and
    ``severity`` overrides (e.g. ``{"severity": {"unknown_class": "MEDIUM"}}``). Dangerous entries
    always win over allow entries.
    """
    text = resources.files("hexscan.policy").joinpath("pickle.toml").read_text(encoding="utf-8")
    base = tomllib.loads(text)
    _validate(base, "pickle.toml")
    if extra:
        _validate(extra, "override")
    return _build([base, dict(extra or {})])


def _validate(data: Mapping[str, Any], source: str) -> None:
    unknown = set(data) - {"version", "severity", "dangerous_attributes", "dangerous", "allow"}
    if unknown:
        raise PolicyError(f"{source}: unknown keys {sorted(unknown)}")
    for key, value in data.get("severity", {}).items():
        if _SEVERITY_ALIASES.get(key, key) not in _SEVERITY_KEYS:
            raise PolicyError(f"{source}: unknown severity key {key!r}")
        if value not in SEVERITIES:
            raise PolicyError(f"{source}: severity {key} = {value!r} is not one of {SEVERITIES}")
    _check_names(
        data.get("dangerous_attributes", {}).get("names", []), f"{source}: dangerous_attributes"
    )
    for section in ("dangerous", "allow"):
        for index, rule in enumerate(data.get(section, [])):
            _validate_rule(rule, f"{source}: {section}[{index}]", with_uses=section == "allow")


def _validate_rule(rule: Mapping[str, Any], where: str, *, with_uses: bool) -> None:
    allowed_keys = {"names", "reason", "uses"} if with_uses else {"names", "reason"}
    if not isinstance(rule, Mapping) or set(rule) - allowed_keys or "names" not in rule:
        raise PolicyError(
            f"{where}: expected a table with keys {sorted(allowed_keys)} including 'names'"
        )
    _check_names(rule["names"], where)
    if with_uses:
        uses = rule.get("uses")
        if not isinstance(uses, list) or not set(uses) <= _ALLOWABLE_USES:
            raise PolicyError(
                f"{where}: 'uses' must be a list drawn from {sorted(_ALLOWABLE_USES)}"
            )


def _check_names(names: Any, where: str) -> None:
    if not isinstance(names, list):
        raise PolicyError(f"{where}: 'names' must be a list")
    for name in names:
        if (
            not isinstance(name, str)
            or not name
            or " " in name
            or (name.endswith("*") and not name.endswith(".*"))
        ):
            raise PolicyError(f"{where}: invalid name {name!r}")


def _build(layers: Iterable[Mapping[str, Any]]) -> PicklePolicy:
    allow_exact: dict[str, frozenset[str]] = {}
    allow_prefix: dict[str, frozenset[str]] = {}
    dangerous: dict[str, str] = {}
    attributes: set[str] = set()
    severity: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.get("severity", {}).items():
            severity[_SEVERITY_ALIASES.get(key, key)] = value
        attributes.update(layer.get("dangerous_attributes", {}).get("names", []))
        for rule in layer.get("dangerous", []):
            for name in rule["names"]:
                dangerous.setdefault(
                    name.removesuffix(".*"), rule.get("reason", "listed as dangerous")
                )
        for rule in layer.get("allow", []):
            uses = frozenset(rule["uses"])
            for name in rule["names"]:
                target, key = (
                    (allow_prefix, name[:-2]) if name.endswith(".*") else (allow_exact, name)
                )
                target[key] = target.get(key, frozenset()) | uses
    missing = _SEVERITY_KEYS - set(severity)
    if missing:
        raise PolicyError(f"severity keys missing: {sorted(missing)}")
    return PicklePolicy(allow_exact, allow_prefix, dangerous, frozenset(attributes), severity)


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
    for name, records in by_name.items():
        records.sort(key=lambda g: _USE_STRENGTH[g.use])
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
    return verdicts


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
    allowed = policy.allowed_uses(use.full) or frozenset()
    if use.canonical != use.full:
        allowed |= policy.allowed_uses(use.canonical) or frozenset()
    if use.use in allowed:
        return None
    message = f"{use.full} is not on the allowlist and {_USE_PHRASE[use.use]}: {use.expression}"
    return _global_verdict(_USE_KIND[use.use], policy.severity[use.use], use, message)


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
