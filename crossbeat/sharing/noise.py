"""Differentially private public counts, with a privacy budget per owner and month (issue #7).

An agency that sets ``noise_epsilon`` in its public release policy (``crossbeat
public-policy tighten AGENCY --noise-epsilon 0.5 --noise-budget 5``) publishes no
records, and its public counts are released through OpenDP:

* the counts of a request are a histogram over the request's group keys; adding or
  removing one incident changes one key by one. :func:`noisy_counts` releases it with
  OpenDP's ``make_count_by`` and ``make_laplace_threshold``: Laplace noise of scale
  ``1/ε`` on every count, and only keys whose noisy count reaches a threshold chosen
  (by OpenDP's ``binary_search_param``) so that the release is (ε, :data:`DELTA`)-
  differentially private although the set of keys comes from the data;
* every release spends ε from the owner's budget for the calendar month (UTC), kept in
  ``privacy_budget``; a release that would overspend it leaves the owner out of the
  answer (with the reason) until the month ends (:func:`spend`).

What this guarantees: within one calendar month, everything published about one owner's
incidents through noisy counts is (``noise_budget``, n·:data:`DELTA`)-differentially
private with respect to the presence or absence of any one incident (basic sequential
composition; n = the number of releases, at most ``noise_budget / noise_epsilon``). It
protects incidents, not people: someone involved in m incidents is protected at m times
that. Budgets of different months add up for an incident published in several months.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from crossbeat.sharing.tables import privacy_budget

if TYPE_CHECKING:
    from crossbeat.store import Store

#: δ of one release: the chance, at most, that a key held by one incident shows.
DELTA = 1e-7
#: Budgets are kept in millionths of ε (whole numbers add up exactly).
_MICRO = 1_000_000


def _make(epsilon: float, threshold: int) -> Any:
    """Return OpenDP's count-by-key, Laplace noise of scale 1/ε, release over a threshold."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()
    return (
        space
        >> dp.t.then_count_by(TV=int)
        >> dp.m.then_laplace_threshold(scale=1.0 / epsilon, threshold=threshold)
    )


@functools.lru_cache(maxsize=64)
def release_threshold(epsilon: float, delta: float = DELTA) -> int:
    """Return the smallest noisy count released for a key, so that a release is (ε, δ)-DP.

    Found by OpenDP's ``binary_search_param`` over the measurement's own privacy map.
    """
    import opendp.prelude as dp

    return int(
        dp.binary_search_param(
            lambda t: _make(epsilon, int(t)), d_in=1, d_out=(epsilon, delta), T=int
        )
    )


@functools.lru_cache(maxsize=64)
def _measurement(epsilon: float, delta: float) -> Any:
    return _make(epsilon, release_threshold(epsilon, delta))


def privacy_loss(epsilon: float, delta: float = DELTA) -> tuple[float, float]:
    """Return OpenDP's (ε, δ) of one release for one incident added or removed."""
    eps, dlt = _measurement(epsilon, delta).map(1)
    return float(eps), float(dlt)


def noisy_counts(keys: Sequence[str], epsilon: float) -> dict[str, int]:
    """Release counts of ``keys`` (one per incident) with (ε, :data:`DELTA`)-DP.

    Returns
    -------
    dict[str, int]
        Noisy counts of the keys whose noisy count reached the release threshold;
        other keys are absent (whether or not they occur in ``keys``).
    """
    released = _measurement(epsilon, DELTA)(list(keys))
    return {str(k): int(v) for k, v in released.items()}


def period_of(now: datetime) -> str:
    """Return the budget period (calendar month, UTC) of a moment, e.g. ``2026-06``."""
    return now.strftime("%Y-%m")


def spend(
    store: Store,
    conn: Connection,
    owner: str,
    epsilon: float,
    budget: float,
    now: datetime,
) -> bool:
    """Spend ``epsilon`` of ``owner``'s budget for the month of ``now``, if it is left.

    Atomic on both backends: one conditional ``UPDATE`` in the caller's transaction,
    so concurrent releases cannot overspend. Returns False (and spends nothing) when
    the release would take the month's spending above ``budget``.
    """
    period = period_of(now)
    cost = math.ceil(epsilon * _MICRO)
    cap = math.floor(budget * _MICRO)
    store.insert_ignore(
        conn,
        privacy_budget,
        [{"agency_id": owner, "period": period, "spent": 0, "releases": 0, "updated_at": now}],
    )
    t = privacy_budget.c
    done = conn.execute(
        update(privacy_budget)
        .where((t.agency_id == owner) & (t.period == period) & (t.spent + cost <= cap))
        .values(spent=t.spent + cost, releases=t.releases + 1, updated_at=now)
    )
    return bool(done.rowcount == 1)


def spent(conn: Connection, owner: str, now: datetime) -> tuple[float, int]:
    """Return the ε spent and the number of releases of ``owner`` in the month of ``now``."""
    t = privacy_budget.c
    row = conn.execute(
        select(t.spent, t.releases).where((t.agency_id == owner) & (t.period == period_of(now)))
    ).first()
    return (row.spent / _MICRO, row.releases) if row else (0.0, 0)


def noisy_part(keys: Counter[tuple[str, ...]], epsilon: float) -> dict[tuple[str, ...], int]:
    """Return a noisy release of group-key counts (keys as tuples)."""
    flat = [("\x1f".join(k), n) for k, n in keys.items()]
    texts = [text for text, n in flat for _ in range(n)]
    back = {text: key for (text, _), key in zip(flat, keys, strict=True)}
    return {back[t]: n for t, n in noisy_counts(texts, epsilon).items() if t in back}
