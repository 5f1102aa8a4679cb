"""Package names one typo away from the ML stack's PyPI names (policy/ml_packages.toml).

A requirement on ``tourch`` or ``scikit-lern`` installs whatever someone registered under that
name. After PEP 503 normalisation (``Scikit_Learn`` is ``scikit-learn``, not a typo), a name is
reported when it is within Damerau-Levenshtein distance 1 of a listed name (2 for listed
names of 8 or more characters; names under 5 characters only by two swapped adjacent
letters), or is a listed name behind a ``python-`` / ``py-`` prefix.
Listed names and the allowlist of real near-names are never reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from hexscan.policy import lists
from hexscan.supply.versions import normalise

_MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class TyposquatPolicy:
    names: tuple[str, ...]
    allowlist: frozenset[str]
    short_distance: int
    long_distance: int
    long_length: int
    min_length: int
    prefixes: tuple[str, ...]


@cache
def load_policy() -> TyposquatPolicy:
    """policy/ml_packages.toml, normalised once per process."""
    data = lists.load("ml_packages")
    rule = data["typosquat"]
    return TyposquatPolicy(
        names=tuple(sorted({normalise("PyPI", n) for n in data["packages"]["names"]})),
        allowlist=frozenset(normalise("PyPI", n) for n in data["allowlist"]["names"]),
        short_distance=int(rule["short_distance"]),
        long_distance=int(rule["long_distance"]),
        long_length=int(rule["long_length"]),
        min_length=int(rule["min_length"]),
        prefixes=tuple(normalise("PyPI", p) for p in rule["squat_prefixes"]),
    )


def listed(name: str) -> bool:
    """Whether a name is one of the ML stack's listed PyPI names."""
    return normalise("PyPI", name) in load_policy().names


def typosquat_of(name: str) -> str | None:
    """The listed name that ``name`` imitates, or None for a listed, allowlisted or far name."""
    policy = load_policy()
    candidate = normalise("PyPI", name)
    if not candidate or len(candidate) > _MAX_NAME_CHARS:
        return None
    if candidate in policy.names or candidate in policy.allowlist:
        return None
    return nearest(candidate, policy)


def nearest(candidate: str, policy: TyposquatPolicy) -> str | None:
    """The listed name a normalised, unlisted name is within reach of (allowlist not applied)."""
    for prefix in policy.prefixes:
        if candidate.startswith(prefix) and candidate[len(prefix):] in policy.names:
            return candidate[len(prefix):]
    best: tuple[int, str] | None = None
    for target in policy.names:
        if len(target) < policy.min_length:
            if swapped(candidate, target):
                best = best or (1, target)
            continue
        cap = policy.long_distance if len(target) >= policy.long_length else policy.short_distance
        distance = damerau_levenshtein(candidate, target, cap)
        if distance <= cap and (best is None or distance < best[0]):
            best = (distance, target)
    return best[1] if best else None


def swapped(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with two adjacent, different letters swapped."""
    if len(a) != len(b):
        return False
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    return (len(diffs) == 2 and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]])


def damerau_levenshtein(a: str, b: str, cap: int) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment), or cap + 1
    as soon as the distance is known to exceed ``cap``."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > cap:
            return cap + 1
        before, previous = previous, current
    return min(previous[-1], cap + 1)
