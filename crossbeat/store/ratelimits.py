"""Rate-limit counts in the database, shared by every worker and host (issue #10).

:class:`DatabaseLimitStorage` is a storage of the ``limits`` library that keeps its
counters in ``rate_limit_counters``, so that ``crossbeat serve --workers N`` (or several
hosts on one PostgreSQL) enforce one limit per client address, not one per process.
Each hit is one statement, ``INSERT … ON CONFLICT DO UPDATE … RETURNING count``, atomic
on SQLite and PostgreSQL alike: a window that has ended starts again at the hit. It
serves the fixed-window strategy (:class:`limits.strategies.FixedWindowRateLimiter`);
expired rows are deleted now and then by the hits themselves.
"""

from __future__ import annotations

import time

from limits.storage import Storage
from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crossbeat.store.base import Store
from crossbeat.store.schema import rate_limit_counters

#: Delete expired counters once every this many hits.
SWEEP_EVERY = 1000


class DatabaseLimitStorage(Storage):
    """A ``limits`` storage on the store's database (fixed windows).

    Parameters
    ----------
    store
        The store whose ``rate_limit_counters`` table holds the counts.
    """

    STORAGE_SCHEME = None  # built with a store, never from a URI

    def __init__(self, store: Store) -> None:
        super().__init__(uri="database://")
        self.store = store
        self._hits = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """Errors of the storage itself (the database's, raised as they are)."""
        return ()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to ``key``'s window (a new one if it ended); return the count."""
        now = time.time()
        t = rate_limit_counters.c
        insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        new = insert(rate_limit_counters).values(key=key, count=amount, expires_at=now + expiry)
        ended = t.expires_at <= now
        stmt = new.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "count": case((ended, amount), else_=t.count + amount),
                "expires_at": case((ended, now + expiry), else_=t.expires_at),
            },
        ).returning(rate_limit_counters.c.count)
        with self.store.begin() as conn:
            count = int(conn.execute(stmt).scalar_one())
            self._hits += 1
            if self._hits % SWEEP_EVERY == 0:
                conn.execute(delete(rate_limit_counters).where(t.expires_at < now))
        return count

    def _row(self, key: str) -> tuple[int, float] | None:
        t = rate_limit_counters.c
        with self.store.connect() as conn:
            row = conn.execute(select(t.count, t.expires_at).where(t.key == key)).first()
        if row is None or row.expires_at <= time.time():
            return None
        return int(row[0]), float(row[1])

    def get(self, key: str) -> int:
        """Return ``key``'s count in its current window (0 when it has none)."""
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        """Return when ``key``'s window ends (epoch seconds; now when it has none)."""
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        """Return whether the database answers."""
        try:
            with self.store.connect() as conn:
                conn.execute(select(1))
        except Exception:
            return False
        return True

    def reset(self) -> int | None:
        """Delete every counter; return how many."""
        with self.store.begin() as conn:
            return int(conn.execute(delete(rate_limit_counters)).rowcount)

    def clear(self, key: str) -> None:
        """Delete ``key``'s counter."""
        with self.store.begin() as conn:
            conn.execute(delete(rate_limit_counters).where(rate_limit_counters.c.key == key))
