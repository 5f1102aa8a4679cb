"""Structural facts a header parser records instead of raising.

The GGUF and safetensors readers never raise on hostile input: they note what is wrong
and let the scanner judge it. Both share this record and its cap, so that a file built
to produce millions of faults costs a bounded amount of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Issues kept per parse; later ones are dropped (the first ones say enough).
MAX_ISSUES = 200


@dataclass(frozen=True, slots=True)
class Issue:
    """One structural fact: ``kind`` (see the parser's module doc), a message, and where."""

    kind: str
    message: str
    key: str = ""
    offset: int | None = None


def record(issues: list[Issue], issue: Issue) -> None:
    """Append ``issue`` unless ``issues`` already holds :data:`MAX_ISSUES`."""
    if len(issues) < MAX_ISSUES:
        issues.append(issue)
