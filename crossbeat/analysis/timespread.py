"""Time uncertainty: spreading an incident known only as a range over time bins.

An incident "between Friday 18:00 and Monday 08:00" has ``occurred_from`` Friday 18:00
and ``occurred_to`` Monday 08:00. Pinning it to Friday (the start) inflates Fridays and
evenings; the helpers here give it a weight in each bin proportional to how much of the
range falls in that bin (a uniform distribution over the range), so it counts as one
incident in total, shared across the bins it may have happened in.

Times are ``numpy.datetime64`` arrays (any unit); ``NaT`` in ``occurred_to`` (or an end
equal to the start) means the time is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbeat.analysis.errors import AnalysisError, Skipped


@dataclass(frozen=True)
class BinWeights:
    """Sparse incident-by-bin weights: ``weight[k]`` of incident ``incident[k]`` in ``bin[k]``.

    The weights of an incident sum to 1 when its whole range lies inside the bins, and to
    the fraction inside otherwise (the rest is reported in ``outside``, not dropped silently).
    """

    incident: np.ndarray
    bin: np.ndarray
    weight: np.ndarray
    n_bins: int
    outside: float
    skipped: Skipped

    def counts(self) -> np.ndarray:
        """Return the (fractional) number of incidents in each bin."""
        return np.bincount(self.bin, weights=self.weight, minlength=self.n_bins)

    def counts_by(self, group: np.ndarray, n_groups: int) -> np.ndarray:
        """Return a ``(n_groups, n_bins)`` table of counts; ``group`` indexes incidents."""
        flat = np.asarray(group)[self.incident] * self.n_bins + self.bin
        return np.bincount(flat, weights=self.weight, minlength=n_groups * self.n_bins).reshape(
            n_groups, self.n_bins
        )


def _seconds(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t)
    if not np.issubdtype(t.dtype, np.datetime64):
        raise AnalysisError(f"times must be numpy datetime64 arrays, got dtype {t.dtype}")
    out = t.astype("datetime64[s]").astype("int64").astype(float)
    out[np.isnat(t)] = np.nan
    return out


def check_times(
    occurred_from: np.ndarray, occurred_to: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Skipped]:
    """Return start and end (seconds since the epoch), the mask of usable rows and a report.

    A row is unusable when its start is missing, or its end is before its start.
    """
    start = _seconds(occurred_from)
    end = start.copy() if occurred_to is None else _seconds(occurred_to)
    if end.shape != start.shape:
        raise AnalysisError("occurred_from and occurred_to must have the same length")
    end = np.where(np.isnan(end), start, end)
    missing = np.isnan(start)
    reversed_ = ~missing & (end < start)
    keep = ~(missing | reversed_)
    reasons = {"missing time": int(missing.sum()), "end before start": int(reversed_.sum())}
    return start, end, keep, Skipped({k: v for k, v in reasons.items() if v})


def spread_over_bins(
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    edges: np.ndarray,
    *,
    max_range: np.timedelta64 | None = None,
) -> BinWeights:
    """Spread each incident uniformly over its time range across bins ``edges[i]..edges[i+1]``.

    Parameters
    ----------
    occurred_from, occurred_to
        Start and end of each incident's time (datetime64; ``occurred_to`` may be None or NaT).
    edges
        Increasing bin edges (datetime64), ``len(edges) - 1`` bins, each half-open ``[lo, hi)``.
    max_range
        Skip incidents whose range is wider than this (reported as "time range too wide").

    Returns
    -------
    BinWeights
        The sparse weights; exact times give weight 1 to the bin containing them.
    """
    e = _seconds(np.asarray(edges))
    if e.ndim != 1 or len(e) < 2 or np.isnan(e).any() or np.any(np.diff(e) <= 0):
        raise AnalysisError("edges must be at least two increasing, non-missing times")
    start, end, keep, skipped = check_times(occurred_from, occurred_to)
    if max_range is not None:
        limit = float(np.timedelta64(max_range, "s").astype("int64"))
        wide = keep & (end - start > limit)
        keep &= ~wide
        if wide.any():
            skipped = skipped.merged(Skipped({"time range too wide": int(wide.sum())}))
    idx = np.flatnonzero(keep)
    s, t = start[idx], end[idx]
    n_bins = len(e) - 1
    # Exact times: one bin each.
    point = s == t
    pb = np.searchsorted(e, s[point], side="right") - 1
    inside = (pb >= 0) & (pb < n_bins)
    inc = [idx[point][inside]]
    bins = [pb[inside]]
    wts = [np.ones(int(inside.sum()))]
    outside = float((~inside).sum())
    # Ranges: the overlap of [s, t) with every bin they touch.
    rs, rt, ri = s[~point], t[~point], idx[~point]
    if len(ri):
        first = np.clip(np.searchsorted(e, rs, side="right") - 1, 0, n_bins - 1)
        last = np.clip(np.searchsorted(e, rt, side="left") - 1, 0, n_bins - 1)
        span = last - first + 1
        span = np.maximum(span, 0)
        rep = np.repeat(np.arange(len(ri)), span)
        offs = np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span)
        b = first[rep] + offs
        lo = np.maximum(e[b], rs[rep])
        hi = np.minimum(e[b + 1], rt[rep])
        w = np.clip(hi - lo, 0, None) / (rt - rs)[rep]
        nz = w > 0
        inc.append(ri[rep[nz]])
        bins.append(b[nz])
        wts.append(w[nz])
        inside_w = np.bincount(rep[nz], weights=w[nz], minlength=len(ri))
        outside += float(np.sum(1.0 - inside_w))
    return BinWeights(
        incident=np.concatenate(inc).astype(np.int64),
        bin=np.concatenate(bins).astype(np.int64),
        weight=np.concatenate(wts),
        n_bins=n_bins,
        outside=outside,
        skipped=skipped,
    )


def midpoint(
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None = None,
    *,
    max_range: np.timedelta64 | None = None,
) -> tuple[np.ndarray, np.ndarray, Skipped]:
    """Return each usable incident's mid time (seconds since the epoch), the mask and a report.

    For analyses that need one time per incident (near-repeat), the midpoint of the range
    is the least-biased single value; ``max_range`` skips ranges too wide to place.
    """
    start, end, keep, skipped = check_times(occurred_from, occurred_to)
    if max_range is not None:
        limit = float(np.timedelta64(max_range, "s").astype("int64"))
        wide = keep & (end - start > limit)
        keep &= ~wide
        if wide.any():
            skipped = skipped.merged(Skipped({"time range too wide": int(wide.sum())}))
    return (start + end) / 2.0, keep, skipped
