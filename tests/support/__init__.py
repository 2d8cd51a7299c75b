"""Test support code: the local S3 server helpers (``s3``) and the fault-injecting proxy
(``faultproxy``). Nothing here imports s3fs at module import time."""
