"""Small-count and complementary suppression of published count tables (issue #3).

A published table of counts (one or two dimensions, with its row, column and grand
totals) must not let anyone work out a count between 1 and ``k - 1``: neither read it
nor solve for it from the totals. :func:`suppress_table` hides those cells (primary
suppression) and then enough further values (complementary suppression) that every
hidden value has more than one solution.

Why the check is exact: write the table with its totals as an augmented table whose
total row and column carry the totals with a minus sign; then every row and every
column of the augmented table sums to zero. Two tables that agree on the published
values differ by a pattern on the hidden positions whose rows and columns all sum to
zero, i.e. a circulation on the bipartite graph whose nodes are the rows and columns
and whose edges are the hidden positions. A hidden value can differ between two such
tables exactly when its edge lies on a cycle; it is fixed exactly when its edge is a
*bridge*. And since every hidden value is at least 1, moving one unit around a cycle
keeps all counts whole and non-negative, so knowing that counts are whole numbers
does not help either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A table entry: ("cell", key) | ("row", r) | ("col", c) | ("total", None).
Entry = tuple[str, Any]
_TOP = "\x00total"


@dataclass(frozen=True)
class SuppressedTable:
    """A count table with margins, after threshold and complementary suppression.

    ``None`` marks a suppressed value. For one dimension the keys of ``cells`` are
    1-tuples and only ``total`` is a margin; for two dimensions ``rows`` and ``columns``
    hold the row and column totals.
    """

    cells: dict[tuple[str, ...], int | None]
    rows: dict[str, int | None]
    columns: dict[str, int | None]
    total: int | None
    threshold: int
    primary: int
    complementary: int


def lines(keys: Iterable[tuple[str, ...]], dims: int) -> list[list[Entry]]:
    """Return the table's equations: each line's other entries sum to its last entry."""
    keys = list(keys)
    if dims == 0:
        return [[("cell", k) for k in keys] + [("total", None)]]
    if dims == 1:
        return [[*(("cell", k) for k in keys), ("total", None)]]
    rows = sorted({k[0] for k in keys})
    cols = sorted({k[1] for k in keys})
    out: list[list[Entry]] = []
    for r in rows:
        out.append([*(("cell", k) for k in keys if k[0] == r), ("row", r)])
    for c in cols:
        out.append([*(("cell", k) for k in keys if k[1] == c), ("col", c)])
    out.append([*(("row", r) for r in rows), ("total", None)])
    out.append([*(("col", c) for c in cols), ("total", None)])
    return out


def suppress_table(counts: Mapping[tuple[str, ...], int], dims: int, k: int) -> SuppressedTable:
    """Suppress small counts, and enough other values that none can be worked out.

    1. *Primary*: every value (cell or total) with ``0 < n < k`` is hidden. Zeros and
       values of ``k`` or more are published.
    2. *Complementary*, repeated until nothing changes: every line (a row with its
       total, a column with its total, the row totals with the grand total, the column
       totals with the grand total) with exactly one hidden value also hides its
       smallest published non-zero cell, or its total when it has none. Then, for two
       dimensions, every hidden value whose edge is a bridge (see the module docstring)
       gets one more hidden value: the smallest published non-zero entry that closes a
       cycle through it.

    Parameters
    ----------
    counts
        Non-zero counts keyed by ``()`` (a total only), 1-tuples or 2-tuples.
    dims
        0, 1 or 2.
    k
        The threshold: the smallest publishable non-zero count.

    Returns
    -------
    SuppressedTable
        Cells, margins and the numbers of primary and complementary suppressions.
    """
    counts = {key: n for key, n in counts.items() if n}
    values: dict[Entry, int] = {("cell", key): n for key, n in counts.items()}
    values[("total", None)] = sum(counts.values())
    if dims == 2:
        for (r, c), n in counts.items():
            values[("row", r)] = values.get(("row", r), 0) + n
            values[("col", c)] = values.get(("col", c), 0) + n
    hidden: set[Entry] = {e for e, n in values.items() if 0 < n < k}
    primary = len(hidden)
    eqs = lines(counts, dims)
    while _line_rule(eqs, values, hidden) or (dims == 2 and _bridge_rule(values, hidden)):
        pass
    cells = {key: (None if ("cell", key) in hidden else n) for key, n in counts.items()}
    margins = [e for e in values if e[0] in ("row", "col")]
    rows = {e[1]: (None if e in hidden else values[e]) for e in margins if e[0] == "row"}
    cols = {e[1]: (None if e in hidden else values[e]) for e in margins if e[0] == "col"}
    total = None if ("total", None) in hidden else values[("total", None)]
    return SuppressedTable(cells, rows, cols, total, k, primary, len(hidden) - primary)


def _line_rule(
    eqs: Sequence[Sequence[Entry]], values: Mapping[Entry, int], hidden: set[Entry]
) -> bool:
    added = False
    for line in eqs:
        if sum(1 for e in line if e in hidden) != 1:
            continue
        open_cells = [e for e in line[:-1] if e not in hidden and values[e] > 0]
        pick = min(open_cells, key=lambda e: (values[e], str(e[1]))) if open_cells else line[-1]
        if pick not in hidden and values[pick] > 0:
            hidden.add(pick)
            added = True
    return added


def _ends(entry: Entry) -> tuple[tuple[str, str], tuple[str, str]]:
    kind, key = entry
    if kind == "cell":
        return ("r", key[0]), ("c", key[1])
    if kind == "row":
        return ("r", key), ("c", _TOP)
    if kind == "col":
        return ("r", _TOP), ("c", key)
    return ("r", _TOP), ("c", _TOP)


def bridges(edges: Sequence[Entry]) -> list[Entry]:
    """Return the entries whose edge is a bridge of the bipartite graph of ``edges``.

    These are exactly the hidden values that the published values determine.
    """
    adj: dict[Any, list[tuple[Any, int]]] = {}
    for i, e in enumerate(edges):
        u, v = _ends(e)
        adj.setdefault(u, []).append((v, i))
        adj.setdefault(v, []).append((u, i))
    order: dict[Any, int] = {}
    low: dict[Any, int] = {}
    found: list[Entry] = []
    for root in adj:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack = [(root, -1, iter(adj[root]))]
        while stack:
            node, via, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        found.append(edges[via])
                continue
            nxt, edge = step
            if edge == via:
                continue
            if nxt in order:
                low[node] = min(low[node], order[nxt])
            else:
                order[nxt] = low[nxt] = len(order)
                stack.append((nxt, edge, iter(adj[nxt])))
    return found


def _side(edges: Sequence[Entry], start: Any, cut: Entry) -> set[Any]:
    adj: dict[Any, list[Any]] = {}
    for e in edges:
        if e == cut:
            continue
        u, v = _ends(e)
        adj.setdefault(u, []).append(v)
        adj.setdefault(v, []).append(u)
    seen, todo = {start}, [start]
    while todo:
        for nxt in adj.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _crosses(entry: Entry, one: set[Any], other: set[Any]) -> bool:
    a, b = _ends(entry)
    return (a in one and b in other) or (a in other and b in one)


def _bridge_rule(values: Mapping[Entry, int], hidden: set[Entry]) -> bool:
    edges = sorted(hidden, key=str)
    added = False
    for bridge in bridges(edges):
        u, v = _ends(bridge)
        side_u, side_v = _side(edges, u, bridge), _side(edges, v, bridge)
        closing = [
            e
            for e, n in values.items()
            if n > 0 and e not in hidden and _crosses(e, side_u, side_v)
        ]
        rest = [e for e, n in values.items() if n > 0 and e not in hidden]
        pool = closing or rest
        if pool:
            hidden.add(min(pool, key=lambda e: (values[e], str(e))))
            added = True
    return added
