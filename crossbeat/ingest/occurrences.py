"""Occurrence counts of hash ids within one file, in bounded memory.

A hash id (``[id] fallback = "hash"``) is the hash of some columns plus the number of
times that hash occurred so far in the file, so identical rows stay distinct. The
counts must cover the whole file, so a dict of them would grow with the file; this
counter keeps at most :data:`MEMORY_KEYS` keys in memory and moves them to a
temporary SQLite database beyond that, so memory stays flat however large the file.
"""

from __future__ import annotations

import sqlite3

#: Keys held in memory before the counts move to a temporary file (≈ 100 bytes each).
MEMORY_KEYS = 200_000


class OccurrenceCounter:
    """Counts how often each key was seen, in memory up to a limit, then on disk.

    Examples
    --------
    >>> c = OccurrenceCounter(memory_keys=1)
    >>> [c.next(b"a"), c.next(b"b"), c.next(b"a"), c.next(b"b")]
    [1, 1, 2, 2]
    >>> c.clear(); c.next(b"a")
    1
    """

    def __init__(self, memory_keys: int | None = None) -> None:
        self.memory_keys = MEMORY_KEYS if memory_keys is None else memory_keys
        self._counts: dict[bytes, int] = {}
        self._disk: sqlite3.Connection | None = None

    def next(self, key: bytes) -> int:
        """Count one more occurrence of ``key`` and return its number (1, 2, ...)."""
        if self._disk is None:
            n = self._counts.get(key, 0) + 1
            self._counts[key] = n
            if len(self._counts) > self.memory_keys:
                self._spill()
            return n
        row = self._disk.execute(
            "INSERT INTO seen (key, n) VALUES (?, 1) "
            "ON CONFLICT (key) DO UPDATE SET n = n + 1 RETURNING n",
            (key,),
        ).fetchone()
        return int(row[0])

    def clear(self) -> None:
        """Forget every count (a new file starts)."""
        self._counts.clear()
        if self._disk is not None:
            self._disk.close()
            self._disk = None

    def _spill(self) -> None:
        # SQLite's private temporary database (empty file name): pages beyond its small
        # cache go to an already-unlinked file, gone when closed or when the process
        # dies, however it dies.
        disk = sqlite3.connect("", isolation_level=None)
        disk.execute("PRAGMA journal_mode = OFF")
        disk.execute("PRAGMA synchronous = OFF")
        disk.execute("CREATE TABLE seen (key BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
        disk.execute("BEGIN")
        disk.executemany("INSERT INTO seen (key, n) VALUES (?, ?)", self._counts.items())
        self._counts.clear()
        self._disk = disk
