"""Reporters: pure renderers of a finished ScanReport into one output format."""
