"""Bounded byte access for the scanners that need random access (flatbuffers, protobuf)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.errors import LimitExceeded
from hexscan.parsers.flatbuf import ByteSource, BytesSource, StreamSource


@contextlib.contextmanager
def random_access(artifact: Artifact, limits: ResourceLimits) -> Iterator[ByteSource]:
    """Files on disk are read in cached pages; members are held in memory up to the bound."""
    with artifact.open() as stream:
        if artifact.member is None and artifact.size is not None:
            yield StreamSource(stream, artifact.size)
            return
        data = stream.read(limits.buffer_size + 1)
        if len(data) > limits.buffer_size:
            raise LimitExceeded("buffer_size", f"member larger than {limits.buffer_size} bytes")
        yield BytesSource(data)


def read_bounded(artifact: Artifact, limit: int) -> bytes:
    """At most ``limit`` bytes from the start; LimitExceeded when there are more."""
    with artifact.open() as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise LimitExceeded("max_parse_size", f"more than {limit} bytes to parse")
    return data
