"""Artifact: one thing to scan, a file on disk or a member of a container.

Scanners never open files themselves: they read through the artifact, which knows where
the bytes come from (disk, a zip member, a decompressed stream) and keeps reads bounded.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from hexscan.discover.streams import read_up_to
from hexscan.formats.identify import HEAD_SIZE, TAIL_SIZE
from hexscan.formats.kinds import Format

MEMBER_SEP = "!/"


@dataclass(eq=False)
class Artifact:
    """A readable artifact with a lazily read head and tail.

    ``file_path`` is the on-disk file as discovered; ``member`` the chain of container
    members inside it (joined by ``!/``) or None; ``rel_path`` the file's path relative to
    the scanned root, which fingerprints use.
    """

    file_path: str
    rel_path: str
    member: str | None
    size: int | None
    opener: Callable[[], BinaryIO]
    depth: int = 0
    parent_format: Format | None = None
    tail_cheap: bool = True
    _head: bytes | None = field(default=None, repr=False)
    _tail: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_file(cls, file_path: str, rel_path: str) -> Artifact:
        size = os.stat(file_path).st_size
        return cls(file_path, rel_path, None, size, lambda: open(file_path, "rb"))

    @property
    def name(self) -> str:
        """The artifact's own name: the innermost member, or the file name."""
        last = self.member.rsplit(MEMBER_SEP, 1)[-1] if self.member else self.file_path
        return last.replace("\\", "/")

    @property
    def basename(self) -> str:
        return posixpath.basename(self.name)

    @property
    def display(self) -> str:
        """``file!/member`` for people."""
        return f"{self.file_path}{MEMBER_SEP}{self.member}" if self.member else self.file_path

    def open(self) -> BinaryIO:
        """A fresh binary stream positioned at the start; the caller closes it."""
        return self.opener()

    def child(self, member: str, size: int | None, opener: Callable[[], BinaryIO],
              parent_format: Format, tail_cheap: bool) -> Artifact:
        """An artifact for a member of this (container) artifact."""
        chain = f"{self.member}{MEMBER_SEP}{member}" if self.member else member
        return Artifact(self.file_path, self.rel_path, chain, size, opener, self.depth + 1,
                        parent_format, tail_cheap)

    def head(self) -> bytes:
        """The first bytes, read once."""
        if self._head is None:
            with self.open() as stream:
                self._head = read_up_to(stream, HEAD_SIZE)
        return self._head

    def tail(self) -> bytes:
        """The last bytes, where reaching them is cheap (empty otherwise)."""
        if self._tail is None:
            self._tail = b""
            if self.size is not None and self.size <= len(self.head()):
                self._tail = self.head()[-TAIL_SIZE:]
            elif self.tail_cheap and self.size is not None:
                with self.open() as stream:
                    stream.seek(max(0, self.size - TAIL_SIZE))
                    self._tail = read_up_to(stream, TAIL_SIZE)
        return self._tail

    def buffered(self, limit: int) -> Artifact:
        """This artifact with its bytes held in memory (for nested containers)."""
        with self.open() as stream:
            data = read_up_to(stream, limit + 1)
        if len(data) > limit:
            raise OverflowError(limit)
        return Artifact(self.file_path, self.rel_path, self.member, len(data),
                        lambda: io.BytesIO(data), self.depth, self.parent_format, True,
                        data[:HEAD_SIZE], data[-TAIL_SIZE:])
