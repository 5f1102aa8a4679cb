"""Discovery: the files under the targets, and the members of containers."""
