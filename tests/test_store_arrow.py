"""The Arrow reader: a SELECT on a SQLite file read by ADBC in a worker process."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from sqlalchemy import create_engine, text

from crossbeat.store.arrow import WORKER, arrow_applies, read_arrow, read_arrow_parts
from crossbeat.store.base import StoreError


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE t (k INTEGER, x REAL, s TEXT)"))
        # The fence of parallel reads: the data generation (crossbeat.store.generation).
        conn.execute(text("CREATE TABLE data_generation (id INTEGER PRIMARY KEY, generation INT)"))
        conn.execute(text("INSERT INTO data_generation VALUES (1, 0)"))
        # A REAL column NULL in its first few thousand rows, then values.
        rows = [{"k": i, "x": None if i < 3000 else i / 4, "s": f"v{i % 3}"} for i in range(3100)]
        conn.execute(text("INSERT INTO t VALUES (:k, :x, :s)"), rows)
    yield engine
    engine.dispose()


def test_reads_what_the_connection_reads(engine):
    q = text("SELECT k, x, s FROM t WHERE k >= :lo ORDER BY k").bindparams(lo=5)
    with engine.connect() as conn:
        want = [tuple(r) for r in conn.execute(q)]
        table = read_arrow(conn, q)
    assert table is not None and str(table.schema.field("x").type) == "double"
    got = list(zip(*(table.column(n).to_pylist() for n in ("k", "x", "s")), strict=True))
    assert got == want and len(got) == 3095


def test_errors_are_raised_and_the_worker_recovers(engine):
    with engine.connect() as conn:
        with pytest.raises(StoreError, match="no such column"):
            read_arrow(conn, text("SELECT nope FROM t"))
        assert read_arrow(conn, text("SELECT count(*) AS n FROM t")).column("n").to_pylist() == [
            3100
        ]
        pid = WORKER.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        WORKER._proc.wait(timeout=10)  # a worker that died is started again
        assert read_arrow(conn, text("SELECT 1 AS one")).column("one").to_pylist() == [1]
        assert WORKER.pid not in (None, pid)


def test_not_for_memory_databases_or_a_transaction_that_wrote(engine):
    memory = create_engine("sqlite://")
    with memory.connect() as conn:
        assert not arrow_applies(conn) and read_arrow(conn, text("SELECT 1")) is None
    with engine.begin() as conn:
        assert arrow_applies(conn)
        conn.execute(text("UPDATE t SET s = 'changed' WHERE k = 1"))
        assert not arrow_applies(conn)
        assert read_arrow(conn, text("SELECT s FROM t WHERE k = 1")) is None


def test_parts_are_read_side_by_side_and_each_equals_the_connections_read(engine):
    """Several statements, two worker connections: every table once, each one right."""
    queries = [
        text("SELECT k, x, s FROM t WHERE k % 4 = :r ORDER BY k").bindparams(r=r) for r in range(4)
    ]
    with engine.connect() as conn:
        want = [[tuple(row) for row in conn.execute(q)] for q in queries]
        parts = read_arrow_parts(conn, queries, threads=2)
        assert parts is not None
        got = dict(parts)
    assert sorted(got) == [0, 1, 2, 3]
    for k, table in got.items():
        rows = list(zip(*(table.column(n).to_pylist() for n in ("k", "x", "s")), strict=True))
        assert rows == want[k]
    with engine.connect() as conn:  # an error in one part is raised; the worker recovers
        bad = [queries[0], text("SELECT nope FROM t"), queries[1]]
        with pytest.raises(StoreError, match="no such column"):
            dict(read_arrow_parts(conn, bad, threads=2))
        assert dict(read_arrow_parts(conn, queries[:2], threads=2))[1].num_rows == len(want[1])


def test_parts_read_one_snapshot_while_a_writer_commits(engine):
    """Two parts read by two connections see the same commits (the generation fence).

    A writer thread adds a pair of rows (one even, one odd ``k``) per transaction and
    bumps the data generation in it, as every audited change does; each read counts the
    even rows in one part and the odd rows in the other: on one snapshot, always equal.
    """
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE pairs (k INTEGER)"))
    stop = threading.Event()

    def write() -> None:
        k = 0
        while not stop.is_set():
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO pairs VALUES (:a), (:b)"), {"a": k, "b": k + 1})
                conn.execute(text("UPDATE data_generation SET generation = generation + 1"))
            k += 2

    # A slow count (a cross join) widens the window between the two transactions' starts.
    slow = "SELECT count(*) AS n FROM pairs, (SELECT k FROM t LIMIT 300) WHERE pairs.k % 2 = {}"
    queries = [text(slow.format(0)), text(slow.format(1))]
    writer = threading.Thread(target=write)
    writer.start()
    try:
        seen = []
        with engine.connect() as conn:
            for _ in range(25):
                got = dict(read_arrow_parts(conn, queries, threads=2))
                seen.append((got[0].column("n")[0].as_py(), got[1].column("n")[0].as_py()))
    finally:
        stop.set()
        writer.join()
    assert all(even == odd for even, odd in seen), seen
    assert len({even for even, _odd in seen}) > 1  # the writer committed between reads
