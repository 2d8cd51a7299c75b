"""One module per repository operation; each takes a Repo and returns a typed result."""
