"""The pickle policy's data: ``pickle.toml`` plus the generated allowlist, validated and built.

Split from the judge (``pickle_policy``) so that each stays small: this module knows the shape of
the policy files and how user overrides and the generated allowlist (``pickle_allowlist.toml``)
are layered; the judge only asks a built :class:`PicklePolicy` what is dangerous or allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hexscan.policy.pickle_allowlist import GeneratedAllowlistError, load_generated

__all__ = ["SEVERITIES", "PicklePolicy", "PolicyError", "load_policy"]

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")

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


class PolicyError(ValueError):
    """The policy data (built-in or user-supplied) is not valid."""


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
    ``severity`` overrides (e.g. ``{"severity": {"unknown_class": "MEDIUM"}}``). The generated
    allowlist (``pickle_allowlist.toml``) is merged as allow entries. Dangerous entries always win
    over allow entries.
    """
    text = resources.files("hexscan.policy").joinpath("pickle.toml").read_text(encoding="utf-8")
    base = tomllib.loads(text)
    _validate(base, "pickle.toml")
    if extra:
        _validate(extra, "override")
    try:
        generated = load_generated()
    except (GeneratedAllowlistError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(str(error)) from error
    layer = {"allow": [{"names": [name], "uses": sorted(uses)}
                       for name, uses in generated.uses.items()]}
    return _build([base, layer, dict(extra or {})])


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
