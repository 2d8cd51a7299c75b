"""Remotes: the store format at any fsspec URL, and push / fetch / pull / gc / fsck over it.

config   remote definitions in the repository config, secrets kept out of the shared file
fs       opening the fsspec file system; retries with backoff; one-line errors
store    RemoteStore: listing, the cached merged index, range reads, pack-then-index uploads
push     planning (whole packs or repacked objects) and concurrent upload
fetch    staged, verified download of trees, recipes and chunks; pull = fetch + checkout
status   'not pushed' / 'not on remote' states for cas status --remote
gc       deletion of unreferenced remote packs past a grace period
fsck     verification of every remote pack and index
"""


def _register() -> None:
    from ..sources import register_backend_factory
    from .backend import backend_factory

    register_backend_factory(backend_factory)


_register()
