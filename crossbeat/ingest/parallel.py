"""Normalised parts of a file, read here or by a worker process while this one writes.

The ingest alternates two kinds of work: reading and normalising rows (pure Python,
no database) and writing them (classification, hashing, encryption, SQL). On a
machine with more than one core, :func:`worker_parts` moves the first kind to a
forked worker process that streams finished parts back through a pipe, so reading
the next part overlaps writing the previous one.

The worker never touches the database: it drops the parent's pooled connections
without closing them, reads the file itself and only sends parts. The pipe holds at
most about one part, so memory stays flat whatever the file size. When the parent
dies, even by SIGKILL, the worker's next send fails (nobody holds the read end) and
it exits; the parent stops the worker whenever it stops early.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import multiprocessing
import os
import pickle
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossbeat.ingest.csv_blocks import records
from crossbeat.ingest.items import derive
from crossbeat.ingest.readers import SourceError, SourceReader, open_source

if TYPE_CHECKING:
    from crossbeat.ingest.items import Item
    from crossbeat.ingest.pipeline import RowRouter
    from crossbeat.ingest.source import RawRecord
    from crossbeat.ingest.unchanged import Skipped, UnchangedProbe

#: Most rows normalised and written at a time, however many rows a transaction holds:
#: the memory held by one part.
PART_ROWS = 2000
#: Files smaller than this are normalised in the ingesting process: a worker costs
#: more to start than it saves.
PARALLEL_MIN_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class Part:
    """Normalised rows to write, in file order.

    ``last_row`` is the number of the last source row the part accounts for (the
    checkpoint), ``offset`` how many bytes of the file were read, and ``commit``
    whether the transaction is committed after this part. ``skipped`` are rows of the
    part found stored unchanged that are not among the items
    (:mod:`crossbeat.ingest.reingest`).
    """

    items: list[Item]
    last_row: int
    offset: int
    commit: bool
    skipped: Skipped | None = None


def parts(
    reader: SourceReader,
    router: RowRouter,
    file_hash: str,
    done: int,
    chunk_size: int,
    probe: UnchangedProbe | None = None,
    *,
    in_transaction: int = 0,
    last_row: int | None = None,
) -> Generator[Part, None, None]:
    """Normalise a file's rows after row ``done`` into parts.

    A plain CSV file is read in blocks, as columns (:func:`.csv_blocks.records`).

    Rows up to ``done`` (committed by an earlier, interrupted run) are replayed, not
    normalised again. The items are derived (:func:`crossbeat.ingest.items.derive`).
    A part closes the transaction every ``chunk_size`` rows; the last part (possibly
    empty) always does. With a ``probe`` (in the writing process only), rows stored
    unchanged are skipped instead of normalised (:mod:`crossbeat.ingest.unchanged`):
    a part's rows are read first, then probed in one query. ``in_transaction`` rows
    (through ``last_row``) are already in the open transaction when a caller read the
    file's beginning itself (:func:`crossbeat.ingest.reingest.column_parts`).
    """
    size = min(chunk_size, PART_ROWS)
    recs: list[RawRecord] = []
    if last_row is None:
        last_row = done

    def part(last: int, offset: int, commit: bool) -> Part:
        if probe is None:
            items = router.batch(recs, file_hash)
        else:
            items = router.items(recs, file_hash, probe)
        return Part(derive(items, router.index), last, offset, commit=commit)

    for rec in records(reader):
        if rec.row_number <= done:
            router.replay(rec)
            continue
        recs.append(rec)
        last_row = rec.row_number
        in_transaction += 1
        if in_transaction >= chunk_size:
            yield part(last_row, rec.offset, True)
            recs, in_transaction = [], 0
        elif len(recs) >= size:
            yield part(last_row, rec.offset, False)
            recs = []
    yield part(last_row, reader.size, True)


def use_worker(path: Path) -> bool:
    """Return whether a file is worth a worker process on this machine."""
    return (
        (os.cpu_count() or 1) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and path.stat().st_size >= PARALLEL_MIN_BYTES
    )


class WorkerParts:
    """The parts of :func:`parts`, normalised by a forked worker process.

    The worker starts when this is created (before any other thread, such as a
    progress bar's, exists) and is stopped by :meth:`close`; use it as a context
    manager and iterate it once.

    Raises
    ------
    SourceError
        While iterating, when the worker cannot read the file as the profile describes.
    """

    def __init__(
        self, path: Path, router: RowRouter, file_hash: str, done: int, chunk_size: int
    ) -> None:
        self.path = path
        ctx = multiprocessing.get_context("fork")
        self._receive, send = ctx.Pipe(duplex=False)
        self._worker = ctx.Process(
            target=_work,
            args=(send, self._receive, path, router, file_hash, done, chunk_size),
            name=f"crossbeat-normalise-{path.name}",
            daemon=True,
        )
        self._worker.start()
        send.close()

    def __enter__(self) -> WorkerParts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Part]:
        while True:
            try:
                kind, value = _receive(self._receive)
            except EOFError:
                self._worker.join(timeout=5)
                raise RuntimeError(
                    f"the worker normalising {self.path.name} stopped (exit code "
                    f"{self._worker.exitcode}); run the ingest again to resume"
                ) from None
            if kind == "part":
                yield value
            elif kind == "end":
                return
            elif kind == "source":
                raise SourceError(value)
            else:
                raise value

    def close(self) -> None:
        """Stop the worker (if it is still running) and wait for it."""
        self._receive.close()
        if self._worker.is_alive():
            self._worker.terminate()
        self._worker.join()


def _receive(conn: Connection) -> tuple[str, Any]:
    data = conn.recv_bytes()
    # A part is thousands of new objects, none of them garbage: do not let the
    # collector scan the heap again and again while they are created.
    enabled = gc.isenabled()
    gc.disable()
    try:
        message: tuple[str, Any] = pickle.loads(data)
    finally:
        if enabled:
            gc.enable()
    return message


def _work(
    send: Connection,
    receive: Connection,
    path: Path,
    router: RowRouter,
    file_hash: str,
    done: int,
    chunk_size: int,
) -> None:
    """Run in the worker: read and normalise the file, send each part to the parent."""
    receive.close()  # only the parent holds the read end: when it dies, sends fail
    # The parent's pooled connections are not ours to use or to close.
    router.store.engine.dispose(close=False)
    try:
        with open_source(
            path, router.profile.source, required_columns=router.profile.referenced_columns()
        ) as reader:
            for part in parts(reader, router, file_hash, done, chunk_size):
                _send(send, ("part", part))
        _send(send, ("end", None))
    except SourceError as exc:
        _send(send, ("source", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
        try:
            _send(send, ("error", exc))
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(send, ("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        router.close()
        send.close()


class _PartPickler(pickle.Pickler):
    """Pickle dataclass instances as a call of their class with their field values.

    Unpickling a part is the parent's share of the work; rebuilding a frozen dataclass
    through its ``__init__`` takes half the time of the generic ``__setstate__``.
    """

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        names = _INIT_FIELDS.get(cls, ())
        if names == ():
            names = _INIT_FIELDS[cls] = _init_fields(cls)
        if names is None:
            return NotImplemented
        return cls, tuple([getattr(obj, n) for n in names])


_INIT_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _init_fields(cls: type) -> tuple[str, ...] | None:
    """Return the fields of a dataclass built by ``cls(*values)``, else None."""
    if not dataclasses.is_dataclass(cls):
        return None
    fields = dataclasses.fields(cls)
    if not fields or any(not f.init or f.kw_only for f in fields):
        return None
    if hasattr(cls, "__post_init__"):
        return None
    return tuple(f.name for f in fields)


def _send(conn: Connection, message: tuple[str, Any]) -> None:
    buffer = io.BytesIO()
    _PartPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    try:
        conn.send_bytes(buffer.getbuffer())
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)  # the parent is gone (killed?): nobody to send to, nothing to clean
