"""The ``format`` scanner: content/extension disagreement."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats.kinds import CODE_CAPABLE, DESERIALISES_CODE, Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import format as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext


class FormatScanner:
    """Reports a file whose bytes are another format than its name claims."""

    name: ClassVar[str] = "format"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = None
    rules: ClassVar[tuple[Rule, ...]] = (rules.EXTENSION_MISMATCH,)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        ident = ctx.identification
        if not ident.mismatch or ident.expected is None:
            return
        ext = posixpath.splitext(artifact.basename)[1].lower() or artifact.basename
        content = ident.by_content.value if ident.by_content else "unrecognised content"
        claims = ", ".join(sorted(f.value for f in ident.expected)) or "a non-model file"
        disguised = ident.by_content in DESERIALISES_CODE and not (ident.expected & CODE_CAPABLE)
        yield Finding(
            rules.EXTENSION_MISMATCH,
            f"{artifact.basename}: the name suggests {claims} but the content is {content}",
            key=f"{ext}->{content}",
            severity=Severity.MEDIUM if disguised else Severity.LOW,
            confidence=0.9 if ident.by_content else 0.6,
            evidence={"extension": ext, "content_format": content,
                      "expected_formats": sorted(f.value for f in ident.expected)},
        )
