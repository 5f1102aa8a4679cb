"""Scan one top-level file: identify it, run the scanners, walk it if it is a container.

This runs inside a worker process. Everything it produces is collected into a
TaskResult; nothing here prints, and nothing here writes to the scanned file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hexscan.discover import archives, members
from hexscan.discover.artifact import MEMBER_SEP, Artifact
from hexscan.discover.streams import Budget
from hexscan.engine.limits import ResourceLimits
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.appendix import declared_appendix
from hexscan.formats.identify import HEAD_SIZE, Identification, identify
from hexscan.formats.kinds import CONTAINERS, ZIP_BASED, Format
from hexscan.formats.signatures import classify_zip
from hexscan.model.finding import Finding
from hexscan.model.report import ErrorEntry, Fact, FileEntry, Status, TaskResult
from hexscan.rules import archive as arc_rules
from hexscan.rules import format as fmt_rules
from hexscan.scanners.base import ScanContext, Scanner, applies


@dataclass(frozen=True, slots=True)
class Task:
    """One top-level file to scan."""

    path: str
    rel_path: str


@dataclass(frozen=True)
class WorkerSettings:
    """The plain, picklable slice of the config a worker needs."""

    limits: ResourceLimits = field(default_factory=ResourceLimits)
    skip: frozenset[str] = frozenset()
    plugins: tuple[str, ...] = ()
    hash: bool = False
    options: dict[str, Any] = field(default_factory=dict)


#: What stdlib readers raise on hostile or broken bytes: all mean "malformed".
_MALFORMED_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, tarfile.TarError, ValueError,
    RuntimeError, struct.error, gzip.BadGzipFile, NotImplementedError, KeyError, IndexError,
)

_LIMIT_RULES = {"max_ratio": arc_rules.DECOMPRESSION_BOMB,
                "max_member_size": arc_rules.DECOMPRESSION_BOMB,
                "max_total_size": arc_rules.DECOMPRESSION_BOMB}


class _Collector:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.findings: list[Finding] = []
        self.files: list[FileEntry] = []
        self.errors: list[ErrorEntry] = []
        self.facts: list[Fact] = []

    def fact(self, kind: str, data: dict[str, Any], member: str | None) -> None:
        self.facts.append(Fact(kind, data, self.task.path, self.task.rel_path, member))

    def finding(self, finding: Finding, member: str | None, scanner: str) -> None:
        self.findings.append(finding.located(file_path=self.task.path,
                                             rel_path=self.task.rel_path, member=member,
                                             scanner=scanner))

    def error(self, member: str | None, kind: str, message: str) -> None:
        self.errors.append(ErrorEntry(self.task.path, member, kind, message))

    def result(self) -> TaskResult:
        return TaskResult(self.task.path, tuple(self.findings), tuple(self.files),
                          tuple(self.errors), tuple(self.facts))


class FileScan:
    """The walk of one top-level file and everything inside it."""

    def __init__(self, task: Task, settings: WorkerSettings, scanners: list[Scanner]) -> None:
        self.settings = settings
        self.scanners = scanners
        self.out = _Collector(task)
        self.walk = archives.Walk(settings.limits, Budget(settings.limits.max_total_size))
        self.file_state: dict[str, Any] = {}

    def run(self) -> TaskResult:
        task = self.out.task
        try:
            root = Artifact.from_file(task.path, task.rel_path)
        except OSError as exc:
            self.out.error(None, "unreadable", f"cannot read: {exc.strerror or exc}")
            self.out.files.append(FileEntry(task.path, None, Format.UNKNOWN.value, None,
                                            Status.ERROR, f"unreadable: {exc.strerror}",
                                            rel_path=task.rel_path))
            return self.out.result()
        self.visit(root)
        return self.out.result()

    def visit(self, art: Artifact) -> None:
        """Identify, scan and (for containers) walk one artifact; never raises."""
        status, reason, fmt = Status.SCANNED, None, Format.UNKNOWN
        ident: Identification | None = None
        try:
            ident = self._identify(art)
            fmt = ident.format
            ident = self._refine(art, ident)  # may fail on a broken zip: fmt stays "zip"
            fmt = ident.format
            if fmt is Format.UNKNOWN:
                status, reason = Status.SKIPPED, "unrecognised format: not analysed"
            embedded = self._run_scanners(art, ident)
            self._walk_embedded(art, fmt, embedded)
            if fmt in CONTAINERS:
                self._walk_container(art, fmt)
            else:
                self._walk_embedded_zip(art, fmt)
        except ParseError as exc:
            if ident is not None and ident.guessed:  # a structural guess that did not parse
                status, fmt = Status.SKIPPED, Format.UNKNOWN
                reason = f"unrecognised format: not {ident.format.value} after all ({exc})"
            else:
                status, reason = Status.ERROR, str(exc)
                self._malformed(art, str(exc))
        except LimitExceeded as exc:
            status, reason = Status.ERROR, f"limit {exc.limit} exceeded: {exc}"
            self._limit(art, exc)
        except _MALFORMED_ERRORS as exc:
            status, reason = Status.ERROR, f"malformed: {type(exc).__name__}: {exc}"
            self._malformed(art, f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            status, reason = Status.ERROR, f"unreadable: {exc}"
            self.out.error(art.member, "unreadable", str(exc))
        self.out.files.append(FileEntry(art.file_path, art.member, fmt.value, art.size, status,
                                        reason, self._sha256(art) if status is not
                                        Status.ERROR else None, art.rel_path))

    def _identify(self, art: Artifact) -> Identification:
        head = art.head()
        size = art.size if art.size is not None else (
            len(head) if len(head) < HEAD_SIZE else 1 << 62)
        return identify(art.name, head, size, art.tail(), art.parent_format)

    @staticmethod
    def _refine(art: Artifact, ident: Identification) -> Identification:
        """Tell zip layouts apart (torch, npz, keras) from the central directory."""
        if ident.format in ZIP_BASED:
            return ident.refined(classify_zip(archives.zip_names(art)))
        return ident

    def _run_scanners(self, art: Artifact, ident: Identification) -> list[tuple[str, bytes]]:
        """Run the scanners; return the embedded files they found (see ScanContext)."""
        ctx = ScanContext(ident, self.settings.limits, self.settings.options, self.file_state)
        for scanner in self.scanners:
            if not applies(scanner, ident.format):
                continue
            try:
                for finding in scanner.scan(art, ctx):
                    self.out.finding(finding, art.member, scanner.name)
            except (ParseError, LimitExceeded):
                raise
            except Exception as exc:  # noqa: BLE001 - one scanner's bug must not stop the scan
                self.out.error(art.member, "scanner-error",
                               f"scanner {scanner.name} failed: {type(exc).__name__}: {exc}")
        for kind, data in ctx.facts:
            self.out.fact(kind, data, art.member)
        return ctx.embedded

    def _walk_embedded(self, art: Artifact, fmt: Format, embedded: list[tuple[str, bytes]]
                       ) -> None:
        """Visit bytes a loader reads as a file of their own, as members of ``art``."""
        for name, data in embedded:
            if art.depth >= self.settings.limits.max_depth:
                self.out.error(art.member, "limit",
                               f"max_depth {self.settings.limits.max_depth} reached: "
                               f"embedded {name} not read")
                return
            self.walk.budget.spend(len(data))
            self.visit(art.child(name, len(data), _bytes_opener(data), fmt, True))

    def _walk_embedded_zip(self, art: Artifact, fmt: Format) -> None:
        """A polyglot (zip appended to another format, data before a zip): walk the zip too."""
        finding = members.embedded_zip(art, fmt, self.settings.limits.buffer_size)
        if finding is not None:
            appendix = declared_appendix(art, fmt, self.settings.limits)
            if appendix is None:
                self.out.finding(finding, art.member, "archive")
            else:  # the format's own documented appendix: a fact, and its members scanned
                self.out.fact("appended_archive", {
                    "format": appendix.format.value, "kind": appendix.kind,
                    "members": list(appendix.members), "zip_start": appendix.zip_start},
                    art.member)
            self._walk_container(art, Format.ZIP)

    def _walk_container(self, art: Artifact, fmt: Format) -> None:
        limits = self.settings.limits
        if art.depth >= limits.max_depth:
            self.out.finding(Finding(arc_rules.NESTING_TOO_DEEP,
                                     f"{art.basename} is nested {art.depth} containers deep; "
                                     "its members were not read", key="depth",
                                     evidence={"depth": art.depth, "limit": limits.max_depth}),
                             art.member, "archive")
            self.out.error(art.member, "limit", f"max_depth {limits.max_depth} reached")
            return
        if art.depth > 0 and (art.size is None or art.size <= limits.buffer_size):
            try:
                art = art.buffered(limits.buffer_size)
            except OverflowError:
                pass
        for event in archives.iter_members(art, fmt, self.walk):
            if self.walk.budget.used > self.walk.budget.limit:
                break
            if isinstance(event, Artifact):
                self.visit(event)
            elif isinstance(event, Finding):
                inner = event.key if event.key in _member_keys(event) else None
                self.out.finding(event, _join(art.member, inner), "archive")
            elif isinstance(event, archives.Unread):
                self.out.error(_join(art.member, event.member), event.kind, event.message)
            else:
                self.out.files.append(FileEntry(art.file_path, _join(art.member, event.name),
                                                Format.UNKNOWN.value, event.size,
                                                Status.SKIPPED, event.reason,
                                                rel_path=art.rel_path))

    def _malformed(self, art: Artifact, message: str) -> None:
        self.out.finding(Finding(fmt_rules.MALFORMED, f"{art.basename}: {message}",
                                 key="malformed", evidence={"error": message}),
                         art.member, "archive")
        self.out.error(art.member, "malformed", message)

    def _limit(self, art: Artifact, exc: LimitExceeded) -> None:
        rule = _LIMIT_RULES.get(exc.limit, fmt_rules.LIMIT_EXCEEDED)
        self.out.finding(Finding(rule, f"{art.basename}: {exc}", key=f"limit:{exc.limit}",
                                 evidence={"limit": exc.limit}), art.member, "archive")
        self.out.error(art.member, "limit", f"{exc.limit}: {exc}")

    def _sha256(self, art: Artifact) -> str | None:
        if not self.settings.hash:
            return None
        digest = hashlib.sha256()
        try:
            with art.open() as stream:
                for chunk in iter(lambda: stream.read(1024 * 1024), b""):
                    digest.update(chunk)
        except (OSError, LimitExceeded, ParseError):
            return None
        return digest.hexdigest()


def _bytes_opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _join(outer: str | None, inner: str | None) -> str | None:
    """The member chain ``outer!/inner``; either part may be absent."""
    if outer and inner:
        return f"{outer}{MEMBER_SEP}{inner}"
    return inner or outer


def _member_keys(finding: Finding) -> set[str]:
    member = finding.evidence.get("member")
    return {member} if isinstance(member, str) else set()


def scan_task(task: Task, settings: WorkerSettings, scanners: list[Scanner]) -> TaskResult:
    """Scan one top-level file; the worker's whole job."""
    if not os.path.isfile(task.path):
        out = _Collector(task)
        out.error(None, "unreadable", "not a regular file")
        return out.result()
    return FileScan(task, settings, scanners).run()
