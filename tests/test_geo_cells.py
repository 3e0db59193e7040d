"""H3 cells of many points at once are those of each point (#9)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crossbeat.geo.cells import h3_cells, h3_cells_many

_POINT = st.one_of(
    st.none(),
    st.tuples(
        st.floats(-90, 90, allow_nan=False),
        st.floats(-180, 180, allow_nan=False),
    ),
)


@settings(max_examples=200, deadline=None)
@given(points=st.lists(_POINT, max_size=30))
def test_many_points_give_each_point_s_cells(
    points: list[tuple[float, float] | None],
) -> None:
    lats = [p[0] if p else None for p in points]
    lons = [p[1] if p else None for p in points]
    assert h3_cells_many(lats, lons) == [h3_cells(a, b) for a, b in zip(lats, lons, strict=True)]


def test_resolutions_and_edges() -> None:
    edges = [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (45.5, -122.6)]
    lats, lons = [p[0] for p in edges], [p[1] for p in edges]
    for res in ((9,), (0, 15), (5, 7, 11)):
        assert h3_cells_many(lats, lons, res) == [h3_cells(a, b, res) for a, b in edges]
    assert h3_cells_many([], []) == []
