"""The ``tfcheckpoint`` scanner: a TF checkpoint's .index table against its data shards.

The index is read through the artifact (bounded, parsers/tfcheckpoint). When the index is
a file on disk, the sizes of its sibling ``<prefix>.data-NNNNN-of-MMMMM`` shards are read
with ``os.lstat`` (a shard that is a symbolic link is resolved, never opened) to check
that every entry lies inside its shard and that the entries account for every shard byte.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import read_up_to
from hexscan.errors import LimitExceeded
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.parsers.tfcheckpoint import (
    DTYPE_NAMES,
    MAX_INDEX_BYTES,
    BundleEntry,
    BundleIndex,
    parse_index,
)
from hexscan.rules import tfcheckpoint as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import KindQuota, ScanContext

_MAX_PER_KIND = 50
#: Gaps between (or after) tensors up to this size are alignment padding.
PADDING_TOLERANCE = 64
#: Shards checked on disk (num_shards comes from the file).
_MAX_SHARDS = 10_000


class TFCheckpointScanner:
    """Judges TF checkpoint bundles without restoring them."""

    name: ClassVar[str] = "tfcheckpoint"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = frozenset({Format.TF_CHECKPOINT_INDEX})
    rules: ClassVar[tuple[Rule, ...]] = (
        rules.MALFORMED_INDEX, rules.ENTRY_OUTSIDE_SHARD, rules.OVERLAPPING_ENTRIES,
        rules.SIZE_MISMATCH, rules.MISSING_SHARD, rules.UNACCOUNTED_BYTES,
        rules.UNINSPECTED_BLOCK, rules.SHARD_SYMLINK_ESCAPE,
    )

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        if artifact.size is not None and artifact.size > MAX_INDEX_BYTES:
            raise LimitExceeded("tf_index_size", f"TF checkpoint index of {artifact.size} "
                                f"bytes is larger than {MAX_INDEX_BYTES}")
        with artifact.open() as stream:
            data = read_up_to(stream, MAX_INDEX_BYTES + 1)
        if len(data) > MAX_INDEX_BYTES:
            raise LimitExceeded("tf_index_size", "TF checkpoint index is larger than "
                                f"{MAX_INDEX_BYTES} bytes")
        index = parse_index(data)
        quota = KindQuota(_MAX_PER_KIND)
        yield from _structure(index, quota)
        yield from _entries(index, quota)
        prefix = _disk_prefix(artifact)
        if prefix is not None and index.num_shards is not None:
            yield from _shards(index, prefix, quota)


def _structure(index: BundleIndex, quota: KindQuota) -> Iterator[Finding]:
    for issue in index.issues:
        if quota.allow("malformed"):
            yield Finding(rules.MALFORMED_INDEX, f"TF checkpoint index: {issue.message}",
                          key=issue.kind, evidence={"problem": issue.kind},
                          offset=issue.offset)
    for off, kind in index.uninspected_blocks[:_MAX_PER_KIND]:
        yield Finding(rules.UNINSPECTED_BLOCK,
                      f"table block at offset {off} uses compression type {kind}; "
                      "compressed block not inspected",
                      key=f"compression:{kind}", evidence={"compression": kind}, offset=off)


def _entries(index: BundleIndex, quota: KindQuota) -> Iterator[Finding]:
    shards = index.num_shards
    for e in index.entries:
        if e.shard_id < 0 or (shards is not None and e.shard_id >= shards) or \
                e.offset < 0 or e.size < 0:
            if quota.allow("outside"):
                why = (f"offset {e.offset} / size {e.size} is negative"
                       if e.offset < 0 or e.size < 0 else
                       f"shard_id {e.shard_id} is not below num_shards {shards}")
                yield _outside(e, why)
            continue
        expected = e.expected_size
        if expected is not None and expected != e.size and quota.allow("size"):
            dtype = DTYPE_NAMES.get(e.dtype, f"dtype {e.dtype}")
            yield Finding(
                rules.SIZE_MISMATCH,
                f"tensor {e.key!r} ({dtype}, shape {list(e.shape[:16])}) stores {e.size} "
                f"bytes; dtype and shape need {expected}",
                key=f"{e.key}:size", evidence={"tensor": e.key, "dtype": e.dtype,
                                               "shape": list(e.shape[:16]), "size": e.size,
                                               "expected": expected},
                offset=e.block_offset)


def _outside(e: BundleEntry, why: str) -> Finding:
    return Finding(rules.ENTRY_OUTSIDE_SHARD, f"tensor {e.key!r}: {why}", key=f"{e.key}:outside",
                   evidence={"tensor": e.key, "shard_id": e.shard_id, "offset": e.offset,
                             "size": e.size}, offset=e.block_offset)


def _disk_prefix(artifact: Artifact) -> str | None:
    """``<dir>/<prefix>`` for an index file on disk named ``<prefix>.index``."""
    if artifact.member is not None or not artifact.file_path.endswith(".index"):
        return None
    return os.path.abspath(artifact.file_path)[:-len(".index")]


def _shard_size(path: str, directory: str) -> tuple[int | None, str | None]:
    """(size, None) for a regular shard; (None, target) for a link leaving ``directory``;
    (None, None) when missing or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None, None
    if os.path.islink(path):
        target = os.path.realpath(path)
        base = os.path.realpath(directory)
        try:
            inside = os.path.commonpath([base, target]) == base
        except ValueError:
            inside = False
        if not inside:
            return None, target
        try:
            st = os.stat(target)
        except OSError:
            return None, None
    return (st.st_size, None) if stat.S_ISREG(st.st_mode) else (None, None)


def _shards(index: BundleIndex, prefix: str, quota: KindQuota) -> Iterator[Finding]:
    shards = index.num_shards or 0
    directory = os.path.dirname(prefix)
    by_shard: dict[int, list[BundleEntry]] = {}
    for e in index.entries:
        if 0 <= e.shard_id < shards and e.offset >= 0 and e.size >= 0 and not e.sliced:
            by_shard.setdefault(e.shard_id, []).append(e)
    if shards > _MAX_SHARDS:
        if quota.allow("outside"):
            yield Finding(rules.ENTRY_OUTSIDE_SHARD,
                          f"the index declares {shards} shards; only the first {_MAX_SHARDS} "
                          "are checked", key="num_shards", evidence={"num_shards": shards})
        shards = _MAX_SHARDS
    for shard in range(shards):
        name = f"{prefix}.data-{shard:05d}-of-{index.num_shards:05d}"
        base = os.path.basename(name)
        size, escape = _shard_size(name, directory)
        if escape is not None:
            if quota.allow("symlink"):
                yield Finding(rules.SHARD_SYMLINK_ESCAPE,
                              f"data shard {base} is a symbolic link to {escape}, outside "
                              "the checkpoint directory", key=base,
                              evidence={"shard": base, "target": escape})
            continue
        entries = by_shard.get(shard, [])
        if size is None:
            if quota.allow("missing"):
                yield Finding(rules.MISSING_SHARD,
                              f"data shard {base} is missing; {len(entries)} entr"
                              f"{'y' if len(entries) == 1 else 'ies'} not checked against it",
                              key=base, evidence={"shard": base, "entries": len(entries)})
            continue
        yield from _layout(base, size, entries, quota)


def _layout(base: str, size: int, entries: list[BundleEntry],
            quota: KindQuota) -> Iterator[Finding]:
    covered = 0
    unaccounted: list[tuple[int, int]] = []
    end = 0  # end of the furthest range so far
    prev: BundleEntry | None = None
    for e in sorted(entries, key=lambda x: (x.offset, x.size)):
        if e.offset + e.size > size:
            if quota.allow("outside"):
                yield _outside(e, f"bytes [{e.offset}, {e.offset + e.size}) run past the end "
                               f"of {base} ({size} bytes)")
            continue
        if e.size == 0:
            continue
        if prev is not None and e.offset < end:
            if quota.allow("overlap"):
                yield Finding(
                    rules.OVERLAPPING_ENTRIES,
                    f"tensors {prev.key!r} and {e.key!r} overlap in {base} "
                    f"(bytes [{e.offset}, {min(end, e.offset + e.size)}))",
                    key=f"{prev.key}:{e.key}",
                    evidence={"shard": base, "first": prev.key, "second": e.key,
                              "offset": e.offset}, offset=e.block_offset)
        elif e.offset - end > PADDING_TOLERANCE:
            unaccounted.append((end, e.offset))
        if e.offset + e.size > end:
            covered += e.offset + e.size - max(end, e.offset)
            end = e.offset + e.size
            prev = e
    if size - end > PADDING_TOLERANCE:
        unaccounted.append((end, size))
    if unaccounted and quota.allow("unaccounted"):
        total = sum(b - a for a, b in unaccounted)
        yield Finding(
            rules.UNACCOUNTED_BYTES,
            f"{base} holds {total} bytes in {len(unaccounted)} range(s) that no index entry "
            f"accounts for (first at [{unaccounted[0][0]}, {unaccounted[0][1]}))",
            key=base, evidence={"shard": base, "shard_size": size, "covered": covered,
                                "unaccounted": total,
                                "ranges": [list(r) for r in unaccounted[:16]]})
