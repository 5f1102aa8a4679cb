"""ResourceLimits: every bound a reader or container walk observes, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """Bounds on container walking and reading; exceeding one is a finding, never a crash."""

    max_depth: int = 5
    max_members: int = 10_000
    max_member_size: int = 8 * GiB
    max_total_size: int = 32 * GiB
    max_ratio: float = 200.0
    ratio_min_size: int = 16 * MiB
    buffer_size: int = 64 * MiB

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"limit {f.name} must be positive")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ResourceLimits:
        """Build from a config table; unknown keys are an error, not silently ignored."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        typed = {k: (float(v) if k == "max_ratio" else int(v)) for k, v in values.items()}
        return cls(**typed)
