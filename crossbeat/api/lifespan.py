"""What the web server does besides answering requests: sign audit checkpoints (issue #3).

When a worker starts it also fills the caches every read uses before it takes requests
(:mod:`crossbeat.sharing.warm`: sensitivity rules, plan inputs, anchors) and builds the
OpenAPI document the pages read their operations from (issue #12); a server's worker
then moves what it holds out of the garbage collector's way (:func:`freeze`).

The application always signs (issue #7, finding 4: without signed heads a database
writer can erase the log unseen): a new audit tree head
(:func:`crossbeat.audit.checkpoint_if_due`) when it starts and then every
``audit_checkpoint_interval`` seconds, in a background task that is cancelled when the
server shuts down. Every head is also appended to the heads file outside the database
(:func:`crossbeat.audit.witness.export_new_heads`), at start for heads signed before.
The checkpoint's database work runs in a worker thread, so the event loop keeps serving;
a checkpoint under way at shutdown finishes in its thread (or, if the process ends
first, its one transaction is rolled back). A failure (the log does not verify, the
database is away) is logged and the next interval tries again: the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from crossbeat.api.routes.pages import page_operations
from crossbeat.audit import AuditIntegrityError, checkpoint_if_due, public_reads
from crossbeat.audit.keys import SigningKey
from crossbeat.audit.witness import export_new_heads
from crossbeat.sharing.warm import warm
from crossbeat.store import Store

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Sign a due checkpoint at startup, then keep doing so until shutdown.

    Parameters
    ----------
    app
        The application; reads ``app.state.store``, ``app.state.audit_key``,
        ``app.state.audit_heads`` and the interval from ``app.state.settings``. The
        background task is kept as ``app.state.checkpoints``.
    """
    key: SigningKey = app.state.audit_key
    heads: Path = app.state.audit_heads
    store: Store = app.state.store
    interval = timedelta(seconds=app.state.settings.audit_checkpoint_interval)
    await checkpoint_now(store, key, interval, heads)
    task = asyncio.create_task(_every(store, key, interval, heads), name="audit-checkpoints")
    app.state.checkpoints = task
    broker = app.state.live_broker
    await asyncio.to_thread(broker.start)
    # Fill the caches every read of this process uses (sensitivity rules: lexicon and
    # narrative model, seconds; plan inputs; the anchors of the cells holding records)
    # before the worker takes requests, so that neither a live stream's first event
    # (issue #10) nor the first view of the map (issue #12) waits for them.
    await asyncio.to_thread(_warm, store)
    # The OpenAPI document, read by every page for its list of operations: a second
    # or more to build, once per process.
    await asyncio.to_thread(page_operations, app)
    if app.state.freeze_gc:
        log.info("%d objects of the started worker moved out of the collector's way", freeze())
    app.state.job_runner.start()
    public_reads.buffer_tallies(store)
    counts = asyncio.create_task(_write_counts(store), name="public-read-counts")
    try:
        yield
    finally:
        counts.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counts
        try:
            await asyncio.to_thread(public_reads.stop_buffering, store)
        except Exception:
            log.exception("writing the last counts of public reads failed")
        app.state.job_runner.stop()
        await asyncio.to_thread(broker.stop)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _write_counts(store: Store) -> None:
    """Write the buffered counts of anonymous reads every second (issue #10)."""
    while True:
        await asyncio.sleep(public_reads.BUFFER_SECONDS)
        try:
            await asyncio.to_thread(public_reads.write_buffered, store)
        except Exception:
            log.exception("writing the counts of public reads failed; trying again")


def freeze() -> int:
    """Move every object alive now into the collector's permanent generation; return how many.

    What a worker holds once it has started (the imported modules, the application, the
    caches warmed above, the OpenAPI document: about 150,000 objects) is kept until the
    process ends, yet each full collection walked all of it: 40–60 ms on the 2-core
    machine, paid by whichever read was running when one fell due (one `h3_9` count in
    seven at 1 M incidents took 130–170 ms instead of 80; issue #8). After
    :func:`gc.freeze` a full collection walks only the objects made since. Garbage is
    collected first, so nothing already unreachable is kept.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _warm(store: Store) -> None:
    """Warm this process's caches (:func:`crossbeat.sharing.warm.warm`); log, never raise."""
    try:
        warmed = warm(store)
    except Exception:
        log.exception("warming the caches at startup failed (the first reads will fill them)")
    else:
        log.info("caches warmed: %s", warmed.summary())


async def checkpoint_now(
    store: Store, key: SigningKey, interval: timedelta, heads: Path | None = None
) -> None:
    """Sign a tree head if one is due (older than ``interval``); log, never raise.

    Then append every head not yet in the ``heads`` file to it.

    Parameters
    ----------
    store
        The store holding the audit log.
    key
        The Ed25519 signing key.
    interval
        A new head is due when the newest is at least this old and events were added
        since (or 1000 events are unsigned).
    """
    try:
        await asyncio.to_thread(public_reads.flush, store, store.now())
        head = await asyncio.to_thread(checkpoint_if_due, store, key, max_age=interval)
    except AuditIntegrityError as exc:
        log.error("audit checkpoint refused: %s", exc)
    except Exception:
        log.exception("audit checkpoint failed; trying again in %s", interval)
    else:
        if head is not None:
            log.info("audit tree head #%d signed: %d events", head.id, head.tree_size)
    if heads is not None:
        try:
            await asyncio.to_thread(export_new_heads, store, heads)
        except Exception:
            log.exception("could not append audit tree heads to %s", heads)


async def _every(store: Store, key: SigningKey, interval: timedelta, heads: Path) -> None:
    while True:
        await asyncio.sleep(interval.total_seconds())
        await checkpoint_now(store, key, interval, heads)
