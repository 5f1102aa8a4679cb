"""What a model needs, read from the manifests and configs found beside it."""
