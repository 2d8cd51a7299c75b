"""Remotes: the store format at any fsspec URL, and transfers between it and the cache.

config    remote definitions in the repository config, secrets kept out of the shared file
fs        opening the fsspec file system; retries with backoff; one-line errors; the Backend
store     RemoteStore: the Store over that backend, cached index copies, a thread pool
ranges    range planning and verified download of many objects
transfer  push (with root records and the condemnation re-check) and fetch, store to store
backend   objects on demand for readers (casstore.open, cas://)

Nothing here knows the workspace or Git: the operations layer (casstore.ops) hands over
the roots to send or fetch. Collection and verification are the store's own
(casstore.store.collector, casstore.store.checker).
"""
