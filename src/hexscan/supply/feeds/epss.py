"""FIRST EPSS bulk scores: the daily ``epss_scores-current.csv.gz`` file.

The bulk file is one request a day with no paging, which is why hex uses it instead of the
per-CVE API. Its first line names the model and the score date
(``#model_version:v2025.03.14,score_date:2026-05-18T00:00:00Z``); scores from different
model versions are not comparable, so both are kept with every score. Then comes the
header ``cve,epss,percentile`` and ~300k rows whose numbers are decimal strings.

Reading is bounded (line length and row count) because the file is decompressed from the
network: a gzip bomb or a junk file ends in a FeedError, never in memory exhaustion.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from hexscan.supply.feeds.http import FeedError
from hexscan.supply.records import EpssScore

#: Far above the ~300k CVEs EPSS scores today; a file beyond it is not the EPSS feed.
MAX_ROWS = 2_000_000
#: A real row is ~40 bytes and the comment line under 100.
MAX_LINE = 4096
HEADER = ("cve", "epss", "percentile")

_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}\Z")


def parse_epss(path: str) -> tuple[list[EpssScore], str, str]:
    """Parse the gzipped EPSS CSV at ``path``: (scores, model_version, score_date).

    Raises FeedError on anything that is not the documented file: bad gzip, a missing
    ``#model_version`` line or header, a row that is not ``CVE-id,0..1,0..1``, a duplicate
    CVE, no rows at all, or more than MAX_ROWS rows.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
            return _parse(_lines(text))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise FeedError(f"EPSS file {path}: not a readable gzip CSV: {exc}") from exc
    except csv.Error as exc:
        raise FeedError(f"EPSS file {path}: malformed CSV: {exc}") from exc


def _lines(text: IO[str]) -> Iterator[str]:
    """Lines of at most MAX_LINE characters, so one endless line cannot fill memory."""
    while True:
        line = text.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise FeedError(f"EPSS file has a line longer than {MAX_LINE} characters")
        yield line


def _parse(lines: Iterator[str]) -> tuple[list[EpssScore], str, str]:
    model_version, score_date = _comment(next(lines, ""))
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise FeedError(f"EPSS file header is {header!r}, expected {','.join(HEADER)}")
    scores: list[EpssScore] = []
    seen: set[str] = set()
    for row in rows:
        if not row or row == [""]:
            continue
        if len(scores) >= MAX_ROWS:
            raise FeedError(f"EPSS file has more than {MAX_ROWS} rows")
        score = _row(row, rows.line_num, model_version, score_date)
        if score.cve in seen:
            raise FeedError(f"EPSS file line {rows.line_num}: {score.cve} appears twice")
        seen.add(score.cve)
        scores.append(score)
    if not scores:
        raise FeedError("EPSS file has no scores")
    return scores, model_version, score_date


def _comment(line: str) -> tuple[str, str]:
    """``#model_version:<v>,score_date:<iso>`` -> (model_version, score_date)."""
    if not line.startswith("#"):
        raise FeedError("EPSS file does not start with the #model_version,score_date line")
    fields = {}
    for part in line[1:].strip().split(","):
        key, sep, value = part.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    model_version = fields.get("model_version", "")
    score_date = fields.get("score_date", "")
    if not model_version or not score_date:
        raise FeedError(f"EPSS first line lacks model_version or score_date: {line.strip()!r}")
    try:
        datetime.fromisoformat(score_date)
    except ValueError as exc:
        raise FeedError(f"EPSS score_date {score_date!r} is not an ISO-8601 date") from exc
    return model_version, score_date


def _row(row: list[str], line: int, model_version: str, score_date: str) -> EpssScore:
    if len(row) != len(HEADER):
        raise FeedError(f"EPSS file line {line}: expected 3 fields, got {len(row)}")
    cve = row[0].strip()
    if not _CVE_ID.match(cve):
        raise FeedError(f"EPSS file line {line}: {cve[:40]!r} is not a CVE id")
    return EpssScore(cve, _probability(row[1], "epss", line),
                     _probability(row[2], "percentile", line), score_date, model_version)


def _probability(text: str, name: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FeedError(f"EPSS file line {line}: {name} {text[:40]!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise FeedError(f"EPSS file line {line}: {name} {value} is outside 0..1")
    return value
