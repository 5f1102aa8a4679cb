"""Rule: a catalogue entry with a stable id and the text users read.

A finding cannot be built without a Rule, so rule identity is never inferred from a
message string, and ``hex rules`` / ``hex explain`` / SARIF rule descriptors all come from
this one source.
"""

from __future__ import annotations

from dataclasses import dataclass

from hexscan.model.severity import Severity


@dataclass(frozen=True, slots=True)
class Rule:
    """One check. ``doc`` explains what it finds and why that is dangerous."""

    id: str
    title: str
    type: str
    severity: Severity
    cwe: tuple[str, ...]
    summary: str
    doc: str
    remediation: str
    references: tuple[str, ...] = ()

    def explain(self) -> str:
        """The full text of ``hex explain RULE_ID``."""
        lines = [
            f"{self.id}: {self.title}",
            f"Severity: {self.severity.name}    CWE: {', '.join(self.cwe) or '-'}"
            f"    Type: {self.type}",
            "",
            "What and why:",
            f"  {self.doc}",
            "",
            "How to fix:",
            f"  {self.remediation}",
        ]
        if self.references:
            lines += ["", "References:"] + [f"  {ref}" for ref in self.references]
        return "\n".join(lines) + "\n"
