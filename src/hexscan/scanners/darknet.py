"""The ``darknet`` scanner: .weights header and body, the weight count the .cfg beside the
file implies, and .cfg sanity.

The .cfg is a separate file. A scanner never walks directories, with one bounded exception
here: for a .weights file on disk (not a container member), the .cfg with the same stem (or
the only .cfg) in the *same* directory is read, at most 1 MiB, if it is a regular file whose
real path is inside that directory.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.errors import ParseError
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers import darknet as dk
from hexscan.rules import darknet as rules
from hexscan.rules._rule import Rule
from hexscan.scanners._io import read_bounded
from hexscan.scanners.base import ScanContext

CFG_LIMIT = 1024 * 1024
_SAMPLE = 64 * 1024
#: Below this share of ordinary float32 values, the body is not trained weights.
_PLAUSIBLE_SHARE = 0.9
_MAX_SEEN = 1 << 40
_MAX_LISTING = 10_000


class DarknetScanner:
    name: ClassVar[str] = "darknet"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.DARKNET_WEIGHTS,
                                                             Format.DARKNET_CFG})
    rules: ClassVar[tuple[Rule, ...]] = (rules.WEIGHT_COUNT_MISMATCH, rules.IMPLAUSIBLE_WEIGHTS,
                                         rules.CFG_IMPLAUSIBLE)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        if ctx.format is Format.DARKNET_CFG:
            text = read_bounded(artifact, CFG_LIMIT).decode("utf-8", "replace")
            yield from cfg_findings(dk.parse_cfg(text), artifact.basename)
            return
        header = dk.parse_header(artifact.head())
        size = artifact.size if artifact.size is not None else len(artifact.head())
        yield from _header_findings(header, size, artifact)
        cfg = sibling_cfg(artifact)
        if cfg is not None:
            yield from _count_findings(header, size, *cfg)


def cfg_findings(sections: list[dk.Section], name: str) -> Iterator[Finding]:
    for sec, key, value in dk.implausible_options(sections)[:20]:
        yield Finding(rules.CFG_IMPLAUSIBLE, f"{name}: [{sec.name}] line {sec.line}: "
                      f"{key}={value} is outside any real network", key=f"{sec.line}:{key}",
                      evidence={"section": sec.name, "line": sec.line, "option": key,
                                "value": value[:64]})
    unknown = sorted({s.name for s in sections if s.name not in dk.KNOWN_SECTIONS})
    if unknown:
        yield Finding(rules.CFG_IMPLAUSIBLE, f"{name}: unknown section(s) "
                      f"{', '.join(unknown[:10])}", key="unknown-sections",
                      severity=Severity.LOW, evidence={"sections": unknown[:50]})


def _header_findings(header: dk.WeightsHeader, size: int, artifact: Artifact
                     ) -> Iterator[Finding]:
    reasons: list[str] = []
    if size <= header.size:
        reasons.append("no weights follow the header")
    if header.seen > _MAX_SEEN or header.seen < 0:
        reasons.append(f"images-seen counter {header.seen} is implausible")
    share = _plausible_share(artifact.head()[header.size:header.size + _SAMPLE])
    if share is not None and share < _PLAUSIBLE_SHARE:
        reasons.append(f"only {share:.0%} of the first values are ordinary float32 weights")
    if reasons:
        yield Finding(rules.IMPLAUSIBLE_WEIGHTS, f"{artifact.basename}: {'; '.join(reasons)}",
                      key="header", evidence={"major": header.major, "minor": header.minor,
                                              "revision": header.revision,
                                              "seen": header.seen, "reasons": reasons})


def _plausible_share(body: bytes) -> float | None:
    n = len(body) // 4
    if n < 64:
        return None
    ok = 0
    for (value,) in struct.iter_unpack("<f", body[:n * 4]):
        if value == 0.0 or 1e-30 < abs(value) < 1e4:
            ok += 1
    return ok / n


def sibling_cfg(artifact: Artifact) -> tuple[list[dk.Section], str] | None:
    """The parsed .cfg beside a .weights file on disk, or None (see the module doc)."""
    if artifact.member is not None:
        return None
    folder = os.path.dirname(os.path.abspath(artifact.file_path))
    stem = os.path.splitext(os.path.basename(artifact.file_path))[0]
    path = _pick_cfg(folder, stem)
    if path is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(folder) or not os.path.isfile(real):
        return None
    try:
        with open(real, "rb") as stream:
            data = stream.read(CFG_LIMIT + 1)
    except OSError:
        return None
    if len(data) > CFG_LIMIT:
        return None
    try:
        return dk.parse_cfg(data.decode("utf-8", "replace")), os.path.basename(path)
    except (ParseError, ValueError):
        return None


def _pick_cfg(folder: str, stem: str) -> str | None:
    same = os.path.join(folder, stem + ".cfg")
    if os.path.isfile(same):
        return same
    found: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= _MAX_LISTING:
                    return None
                if entry.name.lower().endswith(".cfg"):
                    found.append(entry.path)
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def _count_findings(header: dk.WeightsHeader, size: int, sections: list[dk.Section],
                    cfg_name: str) -> Iterator[Finding]:
    try:
        count = dk.weight_count(sections)
    except ParseError:
        return
    if count.floats is None:
        return
    expected = header.size + 4 * count.floats
    if size == expected:
        return
    evidence = {"cfg": cfg_name, "expected_floats": count.floats, "expected_size": expected,
                "size": size}
    if size > expected:
        yield Finding(rules.WEIGHT_COUNT_MISMATCH, f"{size - expected} bytes follow the "
                      f"{count.floats} weights that {cfg_name} needs (from offset {expected}); "
                      "darknet never reads them", key="extra", offset=expected,
                      evidence={**evidence, "extra_bytes": size - expected})
    else:
        yield Finding(rules.WEIGHT_COUNT_MISMATCH, f"the file holds {(size - header.size) // 4} "
                      f"floats but {cfg_name} needs {count.floats}", key="short",
                      severity=Severity.LOW, evidence=evidence)
