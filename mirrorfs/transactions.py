"""SQLite transactions for the per-device stores (vectors, known files), on connections opened
with `isolation_level=None` so that each one is explicit.

    with write(con):   # BEGIN IMMEDIATE: the write lock first, then read; COMMIT, or ROLLBACK on any exception
        ...
    with read(con):    # BEGIN: one consistent snapshot
        ...
"""

from __future__ import annotations

import sqlite3


class write:
    """A write transaction (BEGIN IMMEDIATE: take the write lock first, then read)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False


class read(write):
    """A read transaction: one consistent snapshot."""

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN")
        return self.db
