"""Every rule is a complete catalogue entry, is claimed by code, and is tested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hexscan.rules._rule import Rule
from hexscan.rules.registry import all_rules, get
from hexscan.scanners.registry import scanner_classes

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src" / "hexscan"
RULES = all_rules()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_documented(rule) -> None:
    assert re.fullmatch(r"HEX-[A-Z]{3}-\d{3}", rule.id)
    assert rule.title and rule.summary and rule.remediation and rule.type
    assert len(rule.doc.split()) >= 25, "the doc is one real paragraph"
    assert all(re.fullmatch(r"CWE-\d+", cwe) for cwe in rule.cwe) and rule.cwe
    text = rule.explain()
    assert rule.id in text and rule.remediation in text


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_exercised_by_a_test(rule) -> None:
    """A rule id that no test names is a rule nobody proved fires."""
    test_text = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py")
                          if p.name != "test_rules.py")
    assert rule.id in test_text, f"no test mentions {rule.id}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_used_by_code(rule) -> None:
    constant_names = [name for name, value in _rule_constants().items()
                      if value is rule or (isinstance(value, dict) and rule in value.values())]
    code = "\n".join(p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")
                     if p.parent.name != "rules")
    assert any(re.search(rf"\b{name}\b", code) for name in constant_names), \
        f"{rule.id} is declared but nothing reports it"


def _rule_constants() -> dict[str, object]:
    """Names under which rules modules publish rules: constants, and tables of rules
    (a scanner that maps verdict kinds to rules uses the table's name)."""
    from hexscan.rules import registry

    return {name: value for module in registry._FAMILIES for name, value in vars(module).items()
            if isinstance(value, Rule | dict)}


def test_scanner_rules_are_in_the_catalogue() -> None:
    ids = {r.id for r in RULES}
    for cls in scanner_classes():
        assert cls.name and cls.version >= 1
        assert {r.id for r in cls.rules} <= ids, cls.name


def test_lookup_is_case_insensitive_and_strict() -> None:
    assert get(RULES[0].id.lower()) is RULES[0]
    with pytest.raises(KeyError):
        get("HEX-NOPE-999")


def test_readme_documents_every_rule_and_scanner() -> None:
    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    missing = [r.id for r in RULES if f"| {r.id} |" not in readme]
    missing += [cls.name for cls in scanner_classes() if f"`{cls.name}`" not in readme]
    assert not missing, f"README does not document: {missing}"


def test_readme_rules_table_is_generated_from_the_catalogue() -> None:
    """The README table is ``tools/readme_rules.py``'s output: regenerate it, never edit it."""
    import subprocess
    import sys

    script = TESTS.parent / "tools" / "readme_rules.py"
    run = subprocess.run([sys.executable, str(script), "--check"],  # noqa: S603 - our own tool
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
