"""Model versions over Git history: a pointer's past states, references to them
(``PATH@VERSION``, ``PATH@GITREV``), and what changed between two of them.

The pure building blocks (schemes, metadata, comparisons of metadata, tensors and tables)
live in :mod:`casstore.versioning`; this package connects them to Git and the store.
"""
