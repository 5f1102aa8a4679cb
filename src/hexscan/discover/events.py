"""What walking a container yields, and the bounds every container reader shares.

``iter_*`` readers (archives.py, zipwalk.py) yield, per member, a child Artifact to scan, a
Finding (a bound was exceeded, a member is encrypted), a Skipped entry, or an Unread entry
when content that should have been inspected was not (the scan is then incomplete).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import BoundedStream, Budget
from hexscan.engine.limits import ResourceLimits
from hexscan.model.finding import Finding
from hexscan.rules import archive as rules


@dataclass(frozen=True, slots=True)
class Skipped:
    """A member that is listed but not scanned, with the reason."""

    name: str
    reason: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Unread:
    """Content that was not inspected (a bound, encryption): the scan is incomplete.

    ``member`` is the member's name inside this container, or None when the rest of the
    container itself was not read. ``kind`` is the error kind (``limit`` or ``unreadable``).
    """

    member: str | None
    kind: str
    message: str


Event = Artifact | Finding | Skipped | Unread


@dataclass
class Walk:
    """The bounds and the shared decompression budget of one top-level file's walk."""

    limits: ResourceLimits
    budget: Budget

    def bounded(self, opener: Callable[[], BinaryIO], what: str = "max_member_size"
                ) -> Callable[[], BinaryIO]:
        def open_bounded() -> BinaryIO:
            raw = BoundedStream(opener(), self.limits.max_member_size, self.budget, what)
            return io.BufferedReader(raw, _READ_BUFFER)
        return open_bounded


#: Read buffer of member streams: identification reads 64 KiB heads, so a larger buffer
#: would read more of every member than is ever looked at.
_READ_BUFFER = 64 * 1024


def too_many(container: Artifact, count: int, walk: Walk) -> Iterator[Event]:
    """The finding and the incomplete mark for a container past ``max_members``."""
    limit = walk.limits.max_members
    if count > limit:
        yield Finding(rules.TOO_MANY_MEMBERS,
                      f"{container.basename} has more than {limit} members; "
                      "the rest were not read", key="members", evidence={"limit": limit})
        yield Unread(None, "limit", f"max_members {limit} reached: later members not read")


def bomb(name: str, size: int, packed: int, walk: Walk) -> Finding | None:
    ratio = size / max(packed, 1)
    too_big = size > walk.limits.max_member_size
    if too_big or (size >= walk.limits.ratio_min_size and ratio > walk.limits.max_ratio):
        why = (f"declares {size} bytes (limit {walk.limits.max_member_size})" if too_big else
               f"expands {ratio:.0f}x ({packed} -> {size} bytes)")
        return Finding(rules.DECOMPRESSION_BOMB, f"member {name} {why}", key=name,
                       evidence={"member": name, "size": size, "compressed_size": packed,
                                 "ratio": round(ratio, 1)})
    return None


def encrypted(name: str, size: int | None) -> Iterator[Event]:
    yield Finding(rules.ENCRYPTED_MEMBER, f"member {name} is encrypted", key=name,
                  evidence={"member": name})
    yield Skipped(name, "encrypted member", size)
    yield Unread(name, "unreadable", "encrypted member: content not inspected")


def oversized(finding: Finding, name: str, size: int | None) -> Iterator[Event]:
    yield finding
    yield Skipped(name, "exceeds size limits", size)
    yield Unread(name, "limit", f"not read: {finding.message}")
