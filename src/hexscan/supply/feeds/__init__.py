"""Vulnerability feed clients: OSV, NVD, EPSS, KEV and the compromised-model hash feed."""
