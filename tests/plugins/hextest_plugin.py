"""A TEST-ONLY scanner plugin that misbehaves on purpose, to prove engine isolation.

Loaded by e2e tests through the config key ``plugins = ["hextest_plugin:MisbehavingScanner"]``
with PYTHONPATH pointing at this directory. It decides by the artifact's name, so it works
the same on files on disk and on container members:

* ``*.hang``  sleeps far past any test's --file-timeout (the worker must be killed);
* ``*.crash`` ends the worker process at once with ``os._exit(70)`` (no cleanup, no reply);
* ``*.abort`` kills the worker with SIGABRT (``os.abort()``), like a native reader crash;
* ``*.boom``  raises a Python exception (the scanner's bug must not stop the scan);
* ``*.pid``   reports an INFO finding with the pid and parent pid of the process that
  scanned it (tests use it to tell worker processes from in-process scans);
* ``*.critical|high|medium|low|info`` reports one finding of that severity.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

PLANTED = Rule(
    id="TEST-PLANTED-001",
    title="Planted test finding",
    type="test_planted",
    severity=Severity.INFO,
    cwe=("CWE-20",),
    summary="A finding the test plugin plants by file name.",
    doc="Used only by hex's own tests.",
    remediation="None: test fixture.",
)

_SEVERITIES = {s.name.lower(): s for s in Severity}


class MisbehavingScanner:
    """See the module docstring."""

    name: ClassVar[str] = "misbehave"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Any] | None] = None
    rules: ClassVar[tuple[Rule, ...]] = (PLANTED,)

    def scan(self, artifact: Any, ctx: Any) -> Iterator[Finding]:
        base = artifact.basename
        ext = base.rsplit(".", 1)[-1] if "." in base else ""
        if ext == "hang":
            time.sleep(3600)
        elif ext == "crash":
            os._exit(70)
        elif ext == "abort":
            os.abort()
        elif ext == "boom":
            raise RuntimeError("planted scanner failure")
        elif ext == "pid":
            yield Finding(PLANTED, f"{base} scanned by pid {os.getpid()}", key="pid",
                          evidence={"pid": os.getpid(), "ppid": os.getppid()})
        elif ext in _SEVERITIES:
            yield Finding(PLANTED, f"{base} planted {ext}", key=ext,
                          severity=_SEVERITIES[ext])
