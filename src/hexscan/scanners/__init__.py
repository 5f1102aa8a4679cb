"""Scanners: one module per risk family; each yields Findings for the artifacts it applies to."""
