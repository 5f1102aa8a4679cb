#!/usr/bin/env python3
"""Write the README's rules table from the rule catalogue (the one home of every rule).

    python tools/readme_rules.py          # rewrite the table in README.md
    python tools/readme_rules.py --check  # exit 1 when README.md is out of date

The table sits between the ``<!-- rules:begin -->`` and ``<!-- rules:end -->`` markers. A
rule's scanner is the listed scanner that declares it; rules no scanner declares are reported
by discovery and the container walk, shown as "(pipeline)".
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"


def table() -> str:
    from hexscan.rules.registry import all_rules
    from hexscan.scanners.registry import scanner_classes

    owner: dict[str, str] = {}
    for cls in scanner_classes():
        for rule in cls.rules:
            owner.setdefault(rule.id, cls.name)
    rows = ["| id | severity | CWE | scanner | what |", "|---|---|---|---|---|"]
    rows += [f"| {rule.id} | {rule.severity.name} | {', '.join(rule.cwe)} | "
             f"{owner.get(rule.id, '(pipeline)')} | {rule.title} |"
             for rule in sorted(all_rules(), key=lambda r: r.id)]
    return "\n".join(rows)


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print("README.md rules table is out of date: run python tools/readme_rules.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
