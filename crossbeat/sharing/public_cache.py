"""Answers to the public kept for reuse while nothing they depend on changed (issue #10).

The public's aggregates and tiles are the service's busiest reads, and every anonymous
caller sees the same thing. :class:`PublicCache` keeps each answer under a key of
everything it depends on:

* what was asked (the route and its whole query, given by the caller);
* the data generation (:mod:`crossbeat.store.generation`), bumped in the same
  transaction by every audited change: ingest, field report, withdrawal, expunge, an
  agreement or the public release policy changing;
* the key of the sensitivity rules in force (:func:`crossbeat.sharing.flags.current_rules`:
  a crosswalk or keyword list can change without an audited write);
* the minute (a publication delay or a time window releases records as time passes);
* the viewer's class: only the anonymous public's answers are kept (every signed-in
  reader has a policy view of their own and is audited by record).

A write or a policy change thus makes every kept answer unreachable at once; nothing
has to be told to forget. The two look-ups are one small read each request.

**Audit.** A kept answer is audited exactly as a computed one: the audit events of its
first computation are captured (:func:`crossbeat.audit.public_reads.captured`) and
counted again, for the new caller's address, each time it is served
(:func:`crossbeat.audit.public_reads.count_again`) — the same owners, requests and
record counts as if it had been computed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from crossbeat.audit import public_reads
from crossbeat.audit.events import AuditEvent
from crossbeat.sharing.flags import current_rules
from crossbeat.sharing.request import Viewer, ViewerKind
from crossbeat.store import Store, generation

T = TypeVar("T")

#: Answers kept per process (the least recently used go first); as many as the public
#: tiles :mod:`crossbeat.sharing.tiles` keeps, so memory stays bounded by tile sizes.
CACHE_SIZE = 512


class PublicCache:
    """A process's kept answers to the public, keyed by what they depend on.

    Parameters
    ----------
    size
        How many answers to keep.

    Examples
    --------
    ``cache.read(store, viewer, ("aggregates", query), lambda: aggregate(...))`` returns
    the kept answer when nothing changed since it was computed, else computes it.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, tuple[AuditEvent, ...]]] = OrderedDict()

    def state(self, store: Store) -> tuple[int, str, str]:
        """Return what every public answer depends on besides the question.

        The data generation, the key of the sensitivity rules and the current minute.
        """
        with store.connect() as conn:
            gen = generation.current(conn)
            rules = current_rules(conn).key
        minute = store.now().replace(second=0, microsecond=0).isoformat()
        return gen, rules, minute

    def lookup(self, store: Store, question: Hashable, source_ip: str | None) -> Any | None:
        """Return the public's kept answer to ``question`` if nothing changed, else None.

        A kept answer is counted as a public read from ``source_ip`` (audited exactly as
        computed, see the module's text); a miss counts nothing (the caller computes).

        Parameters
        ----------
        store
            The store read.
        question
            Everything of the request the answer depends on (route, path, query).
        source_ip
            The caller's address, for the audit counts.
        """
        key = (store.url, question, self.state(store))
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        answer, events = found
        public_reads.count_again(store, events, source_ip, store.now())
        return answer

    def read(self, store: Store, viewer: Viewer, question: Hashable, compute: Callable[[], T]) -> T:
        """Return ``compute()``'s answer, kept for the public while nothing changed.

        Parameters
        ----------
        store
            The store read.
        viewer
            Who asks: only the public's answers are kept; others always compute.
        question
            Everything of the request the answer depends on (route, path, query).
        compute
            Computes the answer through :mod:`crossbeat.sharing.reads` (audited there).

        Returns
        -------
        T
            The answer (shared between callers: do not modify it).
        """
        if viewer.kind is not ViewerKind.PUBLIC:
            return compute()
        state = self.state(store)
        key = (store.url, question, state)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if found is not None:
            answer, events = found
            public_reads.count_again(store, events, viewer.source_ip, store.now())
            kept: T = answer
            return kept
        with public_reads.captured() as captured:
            answer = compute()
        with self._lock:
            self.misses += 1
            self._entries[key] = (answer, tuple(captured))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return answer

    def clear(self) -> None:
        """Forget every kept answer (never needed for correctness: keys move on)."""
        with self._lock:
            self._entries.clear()
