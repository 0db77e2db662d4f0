"""One sqlite file of the data directory that only the owner reads (0600), shared by threads.

Why one base: the message and network databases open the same way (private
file, WAL journal, ``synchronous=FULL`` so a commit is on disk when it
returns, one connection under a lock) and change data the same way (one
``BEGIN IMMEDIATE`` transaction per change).  Each store says only how its
schema is brought up to date.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from servent.errors import StateError
from servent.node.private_files import private_directory, private_file

__all__ = ["PrivateDatabase"]


class PrivateDatabase:
    """A private sqlite database; subclasses create their schema in :meth:`_prepare`."""

    def __init__(self, data_dir: Path, name: str, kind: str) -> None:
        private_directory(data_dir)
        self.path = data_dir / name
        self._lock = threading.RLock()
        try:
            private_file(self.path)  # 0600 (sqlite gives its -wal/-shm the same mode)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._prepare()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{kind} database {self.path} is unusable: {exc}") from exc

    def _prepare(self) -> None:
        """Create or migrate the schema (runs once, inside the opening's error handling)."""
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
