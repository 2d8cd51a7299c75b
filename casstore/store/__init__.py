"""Stores: packs of objects plus indexes, on local disk (the cache) or behind fsspec."""

from .objects import ObjectType

__all__ = ["ObjectType"]
