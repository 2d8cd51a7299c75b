"""Store-independent building blocks for model versioning and review.

Everything here is pure: it works on strings, dicts, file-like objects and
``read(offset, length)`` callables, never on the store or the workspace, so the
CLI (``cas version/log/compare/diff``) can wire it to whatever holds the bytes.
Heavy dependencies (pyarrow, numpy) are imported inside the functions that need
them, to keep ``import casstore`` cheap for commands that never use them (yaml is not
one: the config and pointers load it on every start).
"""
