"""A stand-in for a lesser-known gadget: a function in a module that no list names, which runs
what it is given. Published bypasses use such functions (something in an installed library that
ends in exec or a subprocess); naming one of them here keeps the test payload to a canary.

hex judges a global it does not know by its use: only imported it is LOW, called it is HIGH. A
variant that hides the call from the machine therefore shows up as a miss.
"""

from __future__ import annotations


def run(*args: object) -> None:
    """Execute every source string among ``args`` (``extend`` passes a list of them; a function
    planted on a class is called as a method, with the instance first)."""
    for arg in args:
        for source in arg if isinstance(arg, (list, tuple)) else [arg]:
            if isinstance(source, str):
                exec(source)  # noqa: S102 - the canary of a differential test, in its subprocess
