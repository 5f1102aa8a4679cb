"""hex: a security scanner for AI/ML model artifacts.

hex reads model files as bytes and reports what loading them would do (run code, read or
write files, reach the network) without ever loading them. The public API is small:
``scan(targets, config)`` returns a :class:`~hexscan.model.report.ScanReport`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "scan"]


def scan(targets, config=None):  # type: ignore[no-untyped-def]
    """Scan ``targets`` (paths) and return a ScanReport; see :func:`hexscan.engine.pipeline.run`."""
    from hexscan.config import ScanConfig
    from hexscan.engine.pipeline import run

    return run([str(t) for t in targets], config or ScanConfig())
