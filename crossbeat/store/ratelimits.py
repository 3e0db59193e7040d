"""Rate-limit counts in the database, shared by every worker and host (issue #10).

:class:`DatabaseLimitStorage` is a storage of the ``limits`` library that keeps its
counters in ``rate_limit_counters``, so that ``crossbeat serve --workers N`` (or several
hosts on one PostgreSQL) enforce one limit per client address, not one per process.
Each hit is one statement, ``INSERT … ON CONFLICT DO UPDATE … RETURNING count``, atomic
on SQLite and PostgreSQL alike: a window that has ended starts again at the hit. It
serves the fixed-window strategy (:class:`limits.strategies.FixedWindowRateLimiter`);
expired rows are deleted now and then by the hits themselves.

**Leases (issue #10).** One database write per request would cap the public's reads at
the database's write rate. :class:`LeasedLimiter` therefore claims hits from the shared
counter in leases (:func:`lease_size`: 2 % of the limit, at least 1, at most 100) and
counts them down in the process's memory; only an exhausted lease writes again. The
shared count is the sum of the leases, so the limit is never exceeded, whatever the
number of workers; what a worker has claimed and not yet used is lost to the others,
so a client spread over W workers can be refused up to W × (lease − 1) requests early
(at most 2 % of the limit per worker). A limit under 100 per window leases one hit at
a time: exactly as without leases.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.storage import Storage
from limits.util import WindowStats
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
        return self.claim(key, expiry, amount)[0]

    def claim(self, key: str, expiry: int, amount: int = 1) -> tuple[int, float]:
        """Add ``amount`` to ``key``'s window (a new one if it ended).

        Returns
        -------
        tuple[int, float]
            The window's count after the addition and when it ends (epoch seconds).
        """
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
        ).returning(t.count, t.expires_at)
        with self.store.begin() as conn:
            row = conn.execute(stmt).one()
            self._hits += 1
            if self._hits % SWEEP_EVERY == 0:
                conn.execute(delete(rate_limit_counters).where(t.expires_at < now))
        return int(row[0]), float(row[1])

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


#: A lease is this fraction of the limit (rounded down), between 1 and MAX_LEASE hits.
LEASE_FRACTION = 50
MAX_LEASE = 100


def lease_size(item: RateLimitItem) -> int:
    """Return how many hits a process claims at once for a limit of ``item``."""
    return max(1, min(MAX_LEASE, item.amount // LEASE_FRACTION))


@dataclass(slots=True)
class _Lease:
    #: The shared count before this lease: its hits are numbered start + 1 … start + size.
    start: int
    size: int
    used: int
    #: When the shared window ends (the lease with it).
    expires_at: float


class LeasedLimiter:
    """Fixed-window limits shared through the database, claimed in leases.

    It answers like :class:`limits.strategies.FixedWindowRateLimiter` (``hit``,
    ``get_window_stats``) over a :class:`DatabaseLimitStorage`, but writes only when
    this process's lease of a key is used up (see the module's text for the tolerance).

    Parameters
    ----------
    storage
        The shared counters.
    """

    def __init__(self, storage: DatabaseLimitStorage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one hit; return whether it is within the limit."""
        key = item.key_for(*identifiers)
        now = time.time()
        with self._lock:
            lease = self._leases.get(key)
            if lease is not None and lease.expires_at > now:
                if lease.used < lease.size:
                    lease.used += 1
                    return lease.start + lease.used <= item.amount
                if lease.start + lease.size >= item.amount:
                    return False  # the window is full: no need to ask again until it ends
        size = lease_size(item)
        count, expires_at = self.storage.claim(key, item.get_expiry(), size)
        with self._lock:
            if len(self._leases) > 10_000:
                self._leases = {k: v for k, v in self._leases.items() if v.expires_at > now}
            self._leases[key] = _Lease(count - size, size, 1, expires_at)
        return count - size + 1 <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        """Return when the window of ``item`` ends and how many hits remain in it."""
        key = item.key_for(*identifiers)
        used = self.storage.get(key)
        return WindowStats(self.storage.get_expiry(key), max(0, item.amount - used))
