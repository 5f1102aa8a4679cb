"""The engine: runs scanners over discovered artifacts in isolated worker processes."""
