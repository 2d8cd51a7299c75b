"""Model versions and their review: everything ``cas version/log/compare/diff/report``,
``git diff`` (textconv) and the pointer merge show a reviewer.

Pure pieces work on strings, dicts, file-like objects and ``read(offset, length)``
callables, never on the store or the workspace:

- ``schemes``: version schemes (semantic, calendar, sequential, Git hash)
- ``metadata``: params, metrics and environment for a pointer's ``meta`` block
- ``compare``: two ``meta`` blocks side by side; ``rules``: which metric changes fail review
- ``tensors``: safetensors headers and changed tensors; ``tables``: Parquet/CSV schema and
  row counts; ``rowdiff``: row-level table differences in bounded memory
- ``plot``: metric history as a terminal chart or an HTML page; ``render``: text and
  Markdown reports of compare and diff results

Over Git and the store:

- ``history``: a pointer's states along Git history; ``refs``: ``PATH@VERSION``/``PATH@GITREV``
- ``content``: what changed in the content, read from the cache without a checkout
- ``settings``: the repository's ``review:`` settings; ``textconv``: the ``git diff`` driver

Git conflict markers in a pointer file are found under one rule in :mod:`casstore.conflicts`,
beside the pointer format, since parsing a pointer is where a conflict is first met.

The commands themselves (``cas version``, ``cas compare``, ``cas diff``, ``cas merge`` and
the merge driver) are operations in :mod:`casstore.ops`. Heavy dependencies (pyarrow, numpy)
are imported inside the functions that need them, to keep ``import casstore`` cheap for
commands that never use them.
"""
