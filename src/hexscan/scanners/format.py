"""The ``format`` scanner: content/extension disagreement."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import ClassVar

from hexscan.discover.artifact import Artifact
from hexscan.formats import pickle_probe
from hexscan.formats.identify import Identification
from hexscan.formats.kinds import CODE_CAPABLE, DESERIALISES_CODE, Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules import format as rules
from hexscan.rules._rule import Rule
from hexscan.scanners.base import ScanContext

#: The most bytes read to prove that a mismatched pickle holds plain data only.
PLAIN_DATA_LIMIT = 1024 * 1024
_PICKLES = frozenset({Format.PICKLE, Format.JOBLIB})


def _plain_data(artifact: Artifact, ident: Identification) -> bool:
    """A pickle that imports and calls nothing runs no code: its name hides nothing.

    gensim stores corpus offsets as ``*.index`` pickles of plain lists; such a file is
    still a mismatch (LOW), but not a disguised code-capable file (MEDIUM). Files larger
    than the limit, or not wholly made of plain pickle streams, stay MEDIUM.
    """
    if ident.by_content not in _PICKLES:
        return False
    with artifact.open() as stream:
        data = stream.read(PLAIN_DATA_LIMIT + 1)
    return len(data) <= PLAIN_DATA_LIMIT and pickle_probe.plain_data_pickle(data)


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
        disguised = ident.by_content in DESERIALISES_CODE and \
            not (ident.expected & CODE_CAPABLE) and not _plain_data(artifact, ident)
        yield Finding(
            rules.EXTENSION_MISMATCH,
            f"{artifact.basename}: the name suggests {claims} but the content is {content}",
            key=f"{ext}->{content}",
            severity=Severity.MEDIUM if disguised else Severity.LOW,
            confidence=0.9 if ident.by_content else 0.6,
            evidence={"extension": ext, "content_format": content,
                      "expected_formats": sorted(f.value for f in ident.expected)},
        )
