"""H3 cells derived for every located incident."""

from __future__ import annotations

from collections.abc import Sequence

import h3

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
        ``{resolution: cell}``; the coarser cells are parents of the finest one.

    Examples
    --------
    >>> cells = h3_cells(51.5155, -0.0922)
    >>> sorted(cells) == sorted(H3_RESOLUTIONS)
    True
    """
    if lat is None or lon is None:
        return {}
    finest = max(resolutions)
    cell = h3.latlng_to_cell(lat, lon, finest)
    return {r: (cell if r == finest else h3.cell_to_parent(cell, r)) for r in resolutions}
