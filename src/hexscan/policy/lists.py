"""Read-only access to the data lists in ``policy/*.toml`` (tflite, coreml, caffe, payloads)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed ``policy/<name>.toml`` (cached; callers must not mutate it)."""
    text = resources.files("hexscan.policy").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def names(name: str, *path: str) -> frozenset[str]:
    """A list of strings at ``path`` in ``policy/<name>.toml``, as a frozenset."""
    node: Any = load(name)
    for key in path:
        node = node[key]
    return frozenset(str(item) for item in node)
