"""Pure transforms and decisions over a finished ScanReport."""
