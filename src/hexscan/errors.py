"""The exceptions hex raises internally; each maps to a finding, an error entry or exit 2."""

from __future__ import annotations


class HexError(Exception):
    """Base of hex's own errors."""


class ConfigError(HexError):
    """A bad flag, environment value or config file: exit code 2."""


class ParseError(HexError):
    """The bytes do not have the structure their format requires."""


class LimitExceeded(HexError):
    """A resource bound was reached; ``limit`` names it."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class VulnDBError(HexError):
    """The vulnerability DB cannot be read, updated, imported or exported."""
