"""Deterministic synthetic incidents for the forecasting tests (no real data)."""

from __future__ import annotations

import numpy as np

from crossbeat.forecast.history import Frame, History

#: A frame near Toronto (any would do; the NIJ scorer needs real lon/lat).
FRAME = Frame(-79.4, 43.7)


def synthetic(
    days: float = 730.0, seed: int = 42, hot: int = 12, extent: float = 6000.0
) -> History:
    """Return stable hot spots (90 % of incidents) over a uniform background, exact times.

    The same ``hot`` centres (120 m spread) carry most incidents in every period, so a
    good forecast flags them: PAI at 1 % of the area is far above 1.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-extent / 2, extent / 2, (hot, 2))
    n = int(days * 12)
    from_hot = rng.random(n) < 0.9
    which = rng.integers(0, hot, n)
    x = np.where(
        from_hot, centres[which, 0] + rng.normal(0, 120, n), rng.uniform(-extent / 2, extent / 2, n)
    )
    y = np.where(
        from_hot, centres[which, 1] + rng.normal(0, 120, n), rng.uniform(-extent / 2, extent / 2, n)
    )
    t = np.sort(rng.uniform(18000.0, 18000.0 + days, n))
    return History(
        FRAME,
        x,
        y,
        t,
        t.copy(),
        np.full(n, "burglary", dtype=object),
        np.full(n, "a", dtype=object),
    )
