"""Stored H3 cells become the cells containing each point (issue #8).

Until this revision ``h3_7`` and ``h3_9`` held the parents of the point's ``h3_11``
cell. H3 cells do not nest exactly, so for about one point in fifteen that parent is a
neighbour of the cell containing the point: the point was counted in a hexagon it is not
in, a tile read by cell could miss it at the tile's edge, and its published anchor (the
anchor of the cell containing it) lay outside its shown cell. Each stored cell is now
``latlng_to_cell(lat, lon, r)`` (:mod:`crossbeat.geo.cells`); this revision recomputes
``h3_7`` and ``h3_9`` of every located row, writes the rows that change and, when any
did, bumps the data generation so that every cache keyed by it (plan inputs, encoded
tiles, ETags) is dropped.

Revision ID: 0027a
Revises: 0026b
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op
from h3ronpy import cells_to_string, vector

revision: str = "0027a"
down_revision: str | None = "0026b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Rows read per batch (keyset on the primary key).
_BATCH = 50_000

_READ = sa.text(
    "SELECT id, lat, lon, h3_7, h3_9 FROM incidents "
    "WHERE id > :last AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY id LIMIT :n"
)
_WRITE = sa.text("UPDATE incidents SET h3_7 = :h7, h3_9 = :h9 WHERE id = :id")


def _cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> list[str | None]:
    return cells_to_string(vector.coordinates_to_cells(lat, lon, resolution)).to_pylist()


def upgrade() -> None:
    conn = op.get_bind()
    last, changed = "", 0
    while rows := conn.execute(_READ, {"last": last, "n": _BATCH}).all():
        last = rows[-1][0]
        valid = [r for r in rows if -90 <= r[1] <= 90 and -180 <= r[2] <= 180]
        if not valid:
            continue
        lat = np.array([r[1] for r in valid], dtype=float)
        lon = np.array([r[2] for r in valid], dtype=float)
        h7, h9 = _cells(lat, lon, 7), _cells(lat, lon, 9)
        fix = [
            {"id": r[0], "h7": a, "h9": b}
            for r, a, b in zip(valid, h7, h9, strict=True)
            if (r[3], r[4]) != (a, b)
        ]
        if fix:
            conn.execute(_WRITE, fix)
            changed += len(fix)
    if changed:
        conn.execute(sa.text("UPDATE data_generation SET generation = generation + 1 WHERE id = 1"))


def downgrade() -> None:
    # The parents of the res-11 cells, as stored before this revision.
    conn = op.get_bind()
    last = ""
    read = sa.text(
        "SELECT id, h3_11 FROM incidents WHERE id > :last AND h3_11 IS NOT NULL "
        "ORDER BY id LIMIT :n"
    )
    import h3

    while rows := conn.execute(read, {"last": last, "n": _BATCH}).all():
        last = rows[-1][0]
        conn.execute(
            _WRITE,
            [
                {"id": i, "h7": h3.cell_to_parent(c, 7), "h9": h3.cell_to_parent(c, 9)}
                for i, c in rows
            ],
        )
