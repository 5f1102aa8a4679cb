"""The one severity scale of hex.

Every rule, finding, filter and exit-code decision uses this enum, so there is no lossy
mapping between scales (a habit we avoid from peers that had two).
"""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Ordered severities: a larger value is worse."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name, case-insensitively; raise ValueError with the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose from {choices})") from None

    @classmethod
    def parse_list(cls, text: str) -> frozenset[Severity]:
        """Parse a comma-separated list such as ``critical,high``."""
        return frozenset(cls.parse(part) for part in text.split(",") if part.strip())
