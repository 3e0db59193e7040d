"""Cross-agency duplicates: the same event reported by two agencies (issue #11).

Transit police and the city police both write up the fight on the station platform;
the same crime then counts twice on a shared map. :func:`find_duplicates` scores every
plausible pair of incidents *from different agencies* with a Fellegi-Sunter model run
by `splink <https://moj-analytical-services.github.io/splink/>`_ on its DuckDB backend
(in memory: no CrossBeat database is touched), from three comparisons:

* time apart (midpoints of the known ranges): within 15 min, 1 h, 4 h, or more;
* distance apart (projected metres): within 50 m, 150 m, 400 m, or more;
* offence: the same NIBRS code, the same crime-against category, or neither.

Candidate pairs come from blocking rules that need the two records in the same 1-hour
time bucket and the same 1 km grid cell, each on two half-shifted partitions so that no
pair within 30 min and 500 m is missed at a bucket edge. The ``m`` probabilities (how
often a true duplicate falls in each level) are fixed priors below; the ``u``
probabilities (how often two unrelated incidents do) are estimated from the data by
splink's seeded random sampling, so the model adapts to how busy the region is.

Each pair comes back with its match probability and readable reasons. Nothing is
deleted: :mod:`crossbeat.analytics.links` stores the accepted pairs as links and the
analyses count a linked group once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from crossbeat.analysis.budget import check_time
from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analysis.points import to_metres
from crossbeat.analysis.timespread import midpoint

#: Fixed priors: share of true duplicates in each level (best level first, then "else").
M_TIME = (0.80, 0.15, 0.04, 0.01)
M_DISTANCE = (0.75, 0.20, 0.04, 0.01)
M_OFFENCE = (0.70, 0.25, 0.05)
#: Levels (upper bounds) of the time and distance comparisons.
MINUTES = (15, 60, 240)
METRES = (50, 150, 400)
#: Grid cell (m) and time bucket (s) of the blocking rules.
CELL_M = 1000.0
BUCKET_S = 3600.0


@dataclass(frozen=True)
class DuplicateParams:
    """Parameters of a duplicate search (enough to reproduce it)."""

    threshold: float
    prior: float
    seed: int
    crs: str
    minutes: tuple[int, ...] = MINUTES
    metres: tuple[int, ...] = METRES


@dataclass(frozen=True)
class DuplicatePairs:
    """Scored pairs of incidents from different agencies, best first.

    ``left``/``right`` index the input arrays; ``probability`` is splink's match
    probability; ``minutes``/``metres`` the time and distance apart; ``reasons`` one
    sentence per pair.
    """

    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    minutes: np.ndarray
    metres: np.ndarray
    same_offence: np.ndarray
    reasons: tuple[str, ...]
    n_used: int
    skipped: Skipped
    params: DuplicateParams

    def __len__(self) -> int:
        return int(self.left.shape[0])


def _levels(column: str, bounds: tuple[int, ...], m: tuple[float, ...], unit: str):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    levels = [cll.NullLevel(column)]
    for bound, prob in zip(bounds, m, strict=False):
        levels.append(
            cll.CustomLevel(  # type: ignore[arg-type]
                f"abs({column}_l - {column}_r) <= {bound}", f"within {bound} {unit}"
            ).configure(m_probability=prob)
        )
    levels.append(cll.ElseLevel().configure(m_probability=m[-1]))  # type: ignore[arg-type]
    return cl.CustomComparison(comparison_levels=levels, output_column_name=column)  # type: ignore[arg-type]


def _offence():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="offence",
        comparison_levels=[
            cll.NullLevel("nibrs"),
            cll.CustomLevel("nibrs_l = nibrs_r", "same offence").configure(
                m_probability=M_OFFENCE[0]
            ),
            cll.CustomLevel("against_l = against_r", "same category").configure(
                m_probability=M_OFFENCE[1]
            ),
            cll.ElseLevel().configure(m_probability=M_OFFENCE[2]),
        ],
    )


def _blocking() -> list[str]:
    rules = []
    for tb in ("tb0", "tb1"):
        for cx in ("cx0", "cx1"):
            for cy in ("cy0", "cy1"):
                rules.append(
                    f"l.{tb} = r.{tb} and l.{cx} = r.{cx} and l.{cy} = r.{cy} "
                    "and l.owner <> r.owner"
                )
    return rules


def find_duplicates(
    owner: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    nibrs_code: np.ndarray,
    crime_against: np.ndarray,
    *,
    threshold: float = 0.9,
    prior: float | None = None,
    seed: int = 0,
    crs: str | None = None,
) -> DuplicatePairs:
    """Find incidents of different agencies that are probably the same event.

    Parameters
    ----------
    owner, lon, lat, occurred_from, occurred_to, nibrs_code, crime_against
        The incidents as columns (as :class:`crossbeat.sharing.arrays.AnalysisArrays`).
    threshold
        Keep pairs whose match probability is at least this.
    prior
        Probability that two random records are the same event; by default one
        duplicate per 50 incidents spread over all candidate pairs of the data.
    seed
        Seed of splink's random sampling of ``u`` probabilities.
    crs
        Projected CRS for distances (default: the local UTM zone).

    Returns
    -------
    DuplicatePairs
        The pairs at or above ``threshold``, most probable first.

    Raises
    ------
    AnalysisError
        Fewer than two usable incidents, or all from one agency.
    """
    n_in = int(len(owner))
    mid, good_t, skipped = midpoint(occurred_from, occurred_to)
    proj = to_metres(lon, lat, crs)
    keep = proj.keep & good_t
    skipped = skipped.merged(proj.skipped)
    idx = np.flatnonzero(keep)
    if idx.size < 2:
        raise AnalysisError(
            f"duplicates need at least two incidents with a place and time ({idx.size} of {n_in})"
        )
    owners = np.asarray(owner, dtype=object)[idx]
    if len(set(owners.tolist())) < 2:
        raise AnalysisError(
            "duplicates are searched across agencies: the selection holds one agency only"
        )
    pos = np.searchsorted(np.flatnonzero(proj.keep), idx)
    x, y = proj.x[pos], proj.y[pos]
    t = mid[idx]
    frame = _frame(
        idx, owners, x, y, t, np.asarray(nibrs_code)[idx], np.asarray(crime_against)[idx]
    )
    if prior is None:
        prior = min(0.5, (idx.size / 50) / max(1.0, idx.size * (idx.size - 1) / 2))
    params = DuplicateParams(threshold=threshold, prior=prior, seed=seed, crs=proj.crs)
    scored = _predict(frame, params)
    return _pairs(scored, x, y, t, frame, idx, n_in - idx.size, skipped, params)


def _frame(idx, owners, x, y, t, code, against):
    import pandas as pd  # type: ignore[import-untyped]

    def cell(v: np.ndarray, size: float, shift: float) -> np.ndarray:
        return np.floor(v / size + shift).astype(np.int64)

    return pd.DataFrame(
        {
            "unique_id": np.arange(idx.size, dtype=np.int64),
            "owner": owners.astype(str),
            "x": x,
            "y": y,
            "t_min": t / 60.0,
            "dist": np.zeros(idx.size),
            "nibrs": [c or None for c in code],
            "against": [c or None for c in against],
            "tb0": cell(t, BUCKET_S, 0.0),
            "tb1": cell(t, BUCKET_S, 0.5),
            "cx0": cell(x, CELL_M, 0.0),
            "cx1": cell(x, CELL_M, 0.5),
            "cy0": cell(y, CELL_M, 0.0),
            "cy1": cell(y, CELL_M, 0.5),
        }
    )


def _predict(frame, params: DuplicateParams):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator

    dist = cl.CustomComparison(
        output_column_name="distance",
        comparison_levels=[
            cll.NullLevel("x"),
            *(
                cll.CustomLevel(
                    f"sqrt(power(x_l - x_r, 2) + power(y_l - y_r, 2)) <= {bound}",
                    f"within {bound} m",
                ).configure(m_probability=m)
                for bound, m in zip(params.metres, M_DISTANCE, strict=False)
            ),
            cll.ElseLevel().configure(m_probability=M_DISTANCE[-1]),
        ],
    )
    minutes = _levels("t_min", params.minutes, M_TIME, "min")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[minutes, dist, _offence()],
        blocking_rules_to_generate_predictions=_blocking(),  # type: ignore[arg-type]
        probability_two_random_records_match=params.prior,
        additional_columns_to_retain=["owner"],
        retain_intermediate_calculation_columns=False,
    )
    db = DuckDBAPI()
    linker = Linker(db.register(frame), settings, log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e5, seed=params.seed)
    check_time()
    out = linker.inference.predict(threshold_match_probability=params.threshold)
    return out.as_pandas_dataframe()


def _pairs(scored, x, y, t, frame, idx, n_skipped, skipped, params) -> DuplicatePairs:
    if len(scored):
        scored = scored.sort_values(["match_probability", "unique_id_l"], ascending=[False, True])
        a = scored.unique_id_l.to_numpy(dtype=np.int64)
        b = scored.unique_id_r.to_numpy(dtype=np.int64)
        prob = scored.match_probability.to_numpy(dtype=np.float64)
    else:
        a = b = np.empty(0, dtype=np.int64)
        prob = np.empty(0)
    minutes = np.abs(t[a] - t[b]) / 60.0
    metres = np.hypot(x[a] - x[b], y[a] - y[b])
    codes = frame.nibrs.to_numpy(dtype=object)
    same = np.array(
        [codes[i] is not None and codes[i] == codes[j] for i, j in zip(a, b, strict=True)],
        dtype=bool,
    )
    owners = frame.owner.to_numpy(dtype=object)
    reasons = tuple(
        f"{owners[i]} and {owners[j]}: {mi:.0f} min and {me:.0f} m apart, "
        + (f"same offence {codes[i]}" if s else "different offence codes")
        for i, j, mi, me, s in zip(a, b, minutes, metres, same, strict=True)
    )
    return DuplicatePairs(
        left=idx[a],
        right=idx[b],
        probability=prob,
        minutes=minutes,
        metres=metres,
        same_offence=same,
        reasons=reasons,
        n_used=int(idx.size),
        skipped=skipped,
        params=params,
    )


def linked_groups(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return a group label per incident: linked incidents share the label.

    Examples
    --------
    >>> linked_groups(4, np.array([0]), np.array([2])).tolist()
    [0, 1, 0, 3]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.empty(0, dtype=np.int64)
    g = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    # Label each group by its smallest member, so labels are stable and readable.
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]
