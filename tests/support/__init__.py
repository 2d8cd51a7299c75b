"""Test support code: the local S3 server helpers (``s3``) and the fault-injecting proxy
(``faultproxy``). Nothing here imports s3fs at module import time.

``tests/`` has no ``__init__.py``, so pytest puts ``tests/`` itself on ``sys.path``: import these
as ``from support.s3 import fresh_bucket`` and ``from support.faultproxy import FaultProxy``
(from any test module under ``tests/``, with ``pytest`` or ``python -m pytest``).
"""
