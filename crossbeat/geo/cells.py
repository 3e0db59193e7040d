"""H3 cells derived for every located incident.

:func:`h3_cells` is one point; :func:`h3_cells_many` a whole part's points in a few
vectorised calls of h3ronpy (the same H3 library underneath, the same cells).

The cell of a point at a resolution is the cell that contains it, at every resolution:
``latlng_to_cell(lat, lon, r)``, never the parent of a finer cell. H3 cells do not nest
exactly (a cell's children stick out of it), so the parent of a point's res-11 cell is,
for about one point in fifteen, a neighbour of the res-9 cell containing the point. One
rule everywhere (stored cells, the anchors of :class:`crossbeat.sharing.public.AnchorIndex`,
the analyses) keeps a point, its published anchor and its counted hexagon together.
"""

from __future__ import annotations

from collections.abc import Sequence

import h3
import numpy as np
import pyarrow as pa
from h3ronpy import cells_parse, cells_to_string, vector

from crossbeat.model import H3_RESOLUTIONS


def h3_cells(
    lat: float | None, lon: float | None, resolutions: Sequence[int] = H3_RESOLUTIONS
) -> dict[int, str]:
    """Return the H3 cell (hex string) of a point at each resolution.

    Parameters
    ----------
    lat, lon
        WGS84 coordinates; ``None`` gives an empty mapping.
    resolutions
        H3 resolutions (0–15).

    Returns
    -------
    dict[int, str]
        ``{resolution: cell}``: at each resolution the cell containing the point.

    Examples
    --------
    >>> cells = h3_cells(51.5155, -0.0922)
    >>> sorted(cells) == sorted(H3_RESOLUTIONS)
    True
    """
    if lat is None or lon is None:
        return {}
    return {r: h3.latlng_to_cell(lat, lon, r) for r in resolutions}


def h3_cell_ints(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """Return the H3 cells of many valid points as 64-bit integers, in one vectorised call.

    ``lat`` and ``lon`` are WGS84 arrays without NaN; each cell equals
    ``h3.api.numpy_int.latlng_to_cell`` of its point.

    Examples
    --------
    >>> int(h3_cell_ints(np.array([51.5155]), np.array([-0.0922]), 9)[0]) == h3.str_to_int(
    ...     h3.latlng_to_cell(51.5155, -0.0922, 9))
    True
    """
    cells = vector.coordinates_to_cells(lat.astype(float), lon.astype(float), resolution)
    return np.asarray(cells.to_numpy(), dtype=np.uint64)


def h3_cell_ints_from_text(values: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    """Return stored H3 cells (hex text) as 64-bit integers in one call; 0 where missing.

    ``values`` is an Arrow column (an all-NULL column of any type gives zeros) or an
    array of strings and None; text that is not a valid cell also gives 0.

    Examples
    --------
    >>> h3_cell_ints_from_text(np.array(["8928f0036a7ffff", None, "x"], dtype=object)).tolist()
    [617713329982930943, 0, 0]
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.string(), from_pandas=True)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        if values.null_count != len(values):
            raise ValueError(f"H3 cells as text expected, not {values.type}")
        return np.zeros(len(values), dtype=np.uint64)
    cells = pa.array(cells_parse(values, set_failing_to_invalid=True))
    return np.asarray(cells.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.uint64)


def h3_cells_many(
    lats: Sequence[float | None],
    lons: Sequence[float | None],
    resolutions: Sequence[int] = H3_RESOLUTIONS,
) -> list[dict[int, str]]:
    """Return :func:`h3_cells` of many points, computed column by column.

    Parameters
    ----------
    lats, lons
        WGS84 coordinates of valid points (latitude within ±90, longitude within
        ±180); ``None`` gives an empty mapping for that point.
    resolutions
        H3 resolutions (0–15).

    Returns
    -------
    list[dict[int, str]]
        ``{resolution: cell}`` for each point, equal to :func:`h3_cells`'s.

    Examples
    --------
    >>> h3_cells_many([51.5155, None], [-0.0922, None]) == [h3_cells(51.5155, -0.0922), {}]
    True
    """
    located = [
        i
        for i, (a, b) in enumerate(zip(lats, lons, strict=True))
        if a is not None and b is not None
    ]
    out: list[dict[int, str]] = [{} for _ in lats]
    if not located:
        return out
    lat = np.array([lats[i] for i in located], dtype=float)
    lon = np.array([lons[i] for i in located], dtype=float)
    columns = {
        r: cells_to_string(vector.coordinates_to_cells(lat, lon, r)).to_pylist()
        for r in resolutions
    }
    for k, i in enumerate(located):
        out[i] = {r: columns[r][k] for r in resolutions}
    return out
