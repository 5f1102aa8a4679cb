"""The whole peer corpus goes through the pipeline: every file accounted for, no crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_every_manifest_file_is_accounted_for(corpus: Path, manifest: list[dict[str, Any]],
                                              corpus_report: dict[str, Any]) -> None:
    top = {Path(f["path"]).resolve() for f in corpus_report["files"] if f["member"] is None}
    missing = [m["path"] for m in manifest if (corpus / m["path"]).resolve() not in top]
    assert not missing


def test_no_file_crashes_the_scanner(corpus_report: dict[str, Any]) -> None:
    bad = [e for e in corpus_report["errors"] if e["kind"] in ("crash", "scanner-error",
                                                                "timeout")]
    assert not bad


def test_invalid_samples_are_reported_not_crashed(corpus: Path, manifest: list[dict[str, Any]],
                                                  corpus_report: dict[str, Any]) -> None:
    for entry in (m for m in manifest if m["label"] == "invalid"):
        path = (corpus / entry["path"]).resolve()
        rows = [f for f in corpus_report["files"] if Path(f["path"]).resolve() == path]
        assert rows and all(r["status"] in ("scanned", "skipped", "error") for r in rows)
