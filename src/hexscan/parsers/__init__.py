"""Bounded readers that turn bytes into typed views; no policy, no findings."""
