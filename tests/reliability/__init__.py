"""Reliability and security suite: crashes, concurrency, faulty storage, hostile input."""
