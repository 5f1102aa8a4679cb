"""Shared test helpers: run hex as a real subprocess, find ../shared, validate JSON."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "peers"
SCHEMA = REPO / "src" / "hexscan" / "schemas" / "report.schema.json"

pytest_plugins = ["fixtures.formats", "fixtures.archives"]

#: HEX_HOME for every hex run that does not set its own: a fresh directory per test
#: session, so the history and vulnerability DB of a developer's machine are never touched.
SESSION_HOME = tempfile.mkdtemp(prefix="hex-test-home-")
atexit.register(shutil.rmtree, SESSION_HOME, True)


@dataclass
class HexRun:
    """The outcome of one ``hex`` subprocess."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        validate_report(data)
        return data


def run_hex(*args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None,
            timeout: float = 300) -> HexRun:
    """Run ``python -m hexscan ARGS`` in a subprocess with a clean HEX_* environment."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("HEX_") and k != "NO_COLOR"}
    full_env.setdefault("HEX_HOME", SESSION_HOME)
    full_env.update(env or {})
    # The argv is this interpreter running hexscan: no shell, nothing untrusted.
    proc = subprocess.run([sys.executable, "-m", "hexscan", *args], capture_output=True,  # noqa: S603
                          text=True, env=full_env, cwd=cwd, timeout=timeout, check=False)
    return HexRun(proc.returncode, proc.stdout, proc.stderr)


_validator = None


def validate_report(data: dict[str, Any]) -> None:
    """Validate a JSON report against the shipped schema (jsonschema)."""
    global _validator
    if _validator is None:
        import jsonschema

        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(schema)
    _validator.validate(data)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The peers' sample corpus beside the checkout (skips when it is absent)."""
    if not (CORPUS / "manifest.jsonl").is_file():
        pytest.skip(f"the peer corpus is not present at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in
            (corpus / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="session")
def corpus_report(corpus: Path) -> dict[str, Any]:
    """One JSON scan of the whole peer corpus, shared by every corpus test."""
    run = run_hex("scan", str(corpus), "--json", "--workers", "2", timeout=900)
    assert run.code in (0, 1, 3), run.stderr
    return run.json()
