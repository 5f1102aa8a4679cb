"""Format identification: what a file is, by content first and name second."""
