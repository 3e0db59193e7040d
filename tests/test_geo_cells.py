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


#: A point whose res-11 cell's parent at resolution 9 is not the res-9 cell containing it
#: (H3 cells do not nest exactly: about one point in fifteen).
STRADDLING = (45.536996, -122.639608)


def test_each_cell_is_the_cell_containing_the_point() -> None:
    import h3
    from shapely.geometry import Point, Polygon

    lat, lon = STRADDLING
    assert h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 11), 9) != h3.latlng_to_cell(lat, lon, 9)
    for cells in (h3_cells(lat, lon), h3_cells_many([lat], [lon])[0]):
        for res, cell in cells.items():
            assert cell == h3.latlng_to_cell(lat, lon, res)
            hexagon = Polygon([(b, a) for a, b in h3.cell_to_boundary(cell)])
            assert hexagon.buffer(1e-9).contains(Point(lon, lat)), res


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(-60, 60), lon=st.floats(-179, 179))
def test_stored_cells_hold_their_point(lat: float, lon: float) -> None:
    """A stored cell's hexagon holds the point (up to H3's geodesic edges)."""
    import h3
    from shapely.geometry import Point, Polygon

    for res, cell in h3_cells(lat, lon).items():
        hexagon = Polygon([(b, a) for a, b in h3.cell_to_boundary(cell)])
        assert hexagon.buffer(1e-7).contains(Point(lon, lat)), (res, cell)
