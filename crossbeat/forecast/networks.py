"""Road networks stored per agency; patrol routes on them with pgRouting or in Python (#13).

:func:`store_road_network` reads an agency's OpenStreetMap extract
(:func:`crossbeat.forecast.roads.load_osm`) and stores its nodes and directed segments,
replacing the agency's earlier network, with an audit event in the same transaction.
:func:`stored_road_network` reads it back in a forecast's metric frame: on PostgreSQL
with the pgRouting extension it is a :class:`PgRoutingNetwork`, whose driving distances
come from ``pgr_dijkstraCostMatrix`` over the stored segments; elsewhere (SQLite, or a
server without pgRouting) it is the in-Python graph of :class:`RoadNetwork` (Dijkstra
in SciPy). Both snap points to their nearest road node the same way and give the same
distances; the plan's routing label says which computed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sqlalchemy import delete, insert, select, text

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.forecast.history import Frame
from crossbeat.forecast.roads import RoadNetwork, RoadNetworkError, load_osm
from crossbeat.store import Store
from crossbeat.store.schema import road_edges, road_networks, road_nodes

_BATCH = 5000


@dataclass(frozen=True)
class PgRoutingNetwork(RoadNetwork):
    """A stored network whose shortest paths pgRouting computes on PostgreSQL."""

    store: Any = None
    agency_id: str = ""

    def travel_matrix(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
        """Return driving distances (m) like :meth:`RoadNetwork.travel_matrix`, by pgRouting.

        Each point is snapped to its nearest road node (the snap legs are straight
        lines); ``pgr_dijkstraCostMatrix`` gives the shortest directed paths between the
        snapped nodes; pairs with no path get the straight line and are counted.
        """
        x, y = np.asarray(x, float), np.asarray(y, float)
        node, leg = self.snap(x, y)
        unique, back = np.unique(node, return_inverse=True)
        paths = np.full((unique.size, unique.size), np.inf)
        np.fill_diagonal(paths, 0.0)
        if unique.size > 1:
            at = {int(n): i for i, n in enumerate(unique)}
            sql = text(
                "SELECT start_vid, end_vid, agg_cost FROM pgr_dijkstraCostMatrix("
                "format('SELECT id, source, target, cost, reverse_cost FROM road_edges "
                "WHERE agency_id = %L', CAST(:agency AS text)), CAST(:vids AS bigint[]), "
                "directed => true)"
            )
            with self.store.connect() as conn:
                rows = conn.execute(
                    sql, {"agency": self.agency_id, "vids": [int(n) for n in unique]}
                ).all()
            for a, b, cost in rows:
                paths[at[int(a)], at[int(b)]] = float(cost)
        road = paths[back][:, back] + leg[:, None] + leg[None, :]
        np.fill_diagonal(road, 0.0)
        straight = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        missing = ~np.isfinite(road)
        return np.where(missing, straight, road), int(missing.sum())


def has_pgrouting(store: Store) -> bool:
    """Return whether the store is PostgreSQL with the pgRouting extension installed."""
    if store.engine.dialect.name != "postgresql":
        return False
    with store.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pgrouting'"))
        return found.scalar() is not None


def store_road_network(
    store: Store, agency_id: str, path: str | Path, *, by: str = "system"
) -> dict[str, Any]:
    """Store ``agency_id``'s road network from its OpenStreetMap extract (replacing any).

    Returns the stored network's source file name and counts. Raises
    :class:`crossbeat.forecast.roads.RoadNetworkError` for an unreadable extract.
    """
    net = load_osm(path)  # lengths in a frame centred on the extract
    lon, lat = net.frame.inverse(net.x, net.y)
    coo = net.graph.tocoo()
    summary = {"agency_id": agency_id, "source": net.source, "nodes": net.nodes, "edges": net.edges}
    with store.begin() as conn:
        conn.execute(delete(road_edges).where(road_edges.c.agency_id == agency_id))
        conn.execute(delete(road_nodes).where(road_nodes.c.agency_id == agency_id))
        conn.execute(delete(road_networks).where(road_networks.c.agency_id == agency_id))
        conn.execute(
            insert(road_networks).values(**summary, created_at=store.clock.now(), created_by=by)
        )
        nodes = [
            {"agency_id": agency_id, "node": i, "lon": float(a), "lat": float(b)}
            for i, (a, b) in enumerate(zip(lon, lat, strict=True))
        ]
        for k in range(0, len(nodes), _BATCH):
            conn.execute(insert(road_nodes), nodes[k : k + _BATCH])
        edges = [
            {"agency_id": agency_id, "source": int(s), "target": int(t), "cost": float(c),
             "reverse_cost": -1.0}
            for s, t, c in zip(coo.row, coo.col, coo.data, strict=True)
        ]  # fmt: skip
        for k in range(0, len(edges), _BATCH):
            conn.execute(insert(road_edges), edges[k : k + _BATCH])
        append(
            store,
            AuditEvent(
                action=Action.CHANGE,
                actor=by,
                actor_agency=agency_id,
                resource_type="road_network",
                owner_agencies=(agency_id,),
                record_count=net.edges,
                details={"operation": "store", **summary},
            ),
            conn=conn,
        )
    return summary


def stored_road_network(store: Store, agency_id: str, frame: Frame) -> RoadNetwork | None:
    """Return ``agency_id``'s stored road network in ``frame``, or None if it has none.

    On PostgreSQL with pgRouting the answer is a :class:`PgRoutingNetwork` (paths by
    ``pgr_dijkstraCostMatrix``); otherwise the in-Python graph.
    """
    with store.connect() as conn:
        head = conn.execute(
            select(road_networks.c.source).where(road_networks.c.agency_id == agency_id)
        ).first()
        if head is None:
            return None
        nodes = conn.execute(
            select(road_nodes.c.node, road_nodes.c.lon, road_nodes.c.lat)
            .where(road_nodes.c.agency_id == agency_id)
            .order_by(road_nodes.c.node)
        ).all()
        edges = conn.execute(
            select(road_edges.c.source, road_edges.c.target, road_edges.c.cost).where(
                road_edges.c.agency_id == agency_id
            )
        ).all()
    if not nodes:
        raise RoadNetworkError(f"the stored road network of {agency_id} has no node")
    n = len(nodes)
    arr = np.asarray([(r[1], r[2]) for r in nodes], float)
    x, y = frame.forward(arr[:, 0], arr[:, 1])
    e = np.asarray(edges, float).reshape(-1, 3)
    graph = csr_matrix(
        (e[:, 2], (e[:, 0].astype(np.int64), e[:, 1].astype(np.int64))), shape=(n, n)
    )
    x, y = np.asarray(x, float), np.asarray(y, float)
    if has_pgrouting(store):
        return PgRoutingNetwork(
            frame, x, y, graph, f"pgRouting: {head[0]}", store=store, agency_id=agency_id
        )
    return RoadNetwork(frame, x, y, graph, f"stored: {head[0]}")
