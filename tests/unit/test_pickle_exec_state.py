"""SciPy's argument-parser template: every template scipy itself builds is accepted, any
other code is not (``hexscan.parsers.pickle_exec_state``)."""

from __future__ import annotations

import pytest

from hexscan.parsers.pickle_exec_state import foreign_exec_state, scipy_template

st = pytest.importorskip("scipy.stats")


def _all_templates() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in dir(st):
        obj = getattr(st, name)
        if isinstance(obj, (st.rv_continuous, st.rv_discrete)):
            found[name] = obj._parse_arg_template
    return found


TEMPLATES = _all_templates()


def test_every_scipy_distribution_template_is_accepted() -> None:
    assert len(TEMPLATES) > 100, "scipy.stats lists its distributions"
    rejected = [name for name, text in TEMPLATES.items() if not scipy_template(text)]
    assert rejected == []


@pytest.mark.parametrize("change", [
    ("\n", "\nimport os\n"),
    ("moments='mv'", "moments=__import__('os').system('id')"),
    ("return (", "return __import__('os').system('id'), ("),
    ("def _parse_args(", "@staticmethod\ndef _parse_args("),
    ("size=None", "size=None, *, hook=print"),
])
def test_a_changed_template_is_code(change: tuple[str, str]) -> None:
    text = TEMPLATES["poisson"].replace(*change, 1)
    assert text != TEMPLATES["poisson"]
    assert not scipy_template(text)
    assert foreign_exec_state("scipy.stats._discrete_distns.poisson_gen",
                              [("_parse_arg_template", text)]) == text


def test_only_scipy_classes_and_only_that_attribute() -> None:
    evil = "import os"
    assert foreign_exec_state("mylib.Dist", [("_parse_arg_template", evil)]) is None
    assert foreign_exec_state("scipy.stats._continuous_distns.norm_gen",
                              [("other", evil)]) is None
    assert foreign_exec_state("scipy.stats._continuous_distns.norm_gen",
                              [("_parse_arg_template", 3)]) == 3
    assert scipy_template("x" * 10_000) is False
