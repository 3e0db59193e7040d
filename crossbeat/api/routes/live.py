"""The live stream: ``GET /live`` as Server-Sent Events (issue #10).

Each connection is filtered for its caller through the sharing policy at send time
(:mod:`crossbeat.sharing.live`); the process's broker (:mod:`crossbeat.live.broker`,
started with the application) wakes it when events are committed, by any worker.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from crossbeat.api.deps import SignedInDep, StoreDep, ViewerDep
from crossbeat.api.routes.incidents import _record, _record_model
from crossbeat.api.schemas import ERRORS
from crossbeat.live.bulletins import bulletin_deliveries
from crossbeat.live.stream import BulletinFilter, parse_last_event_id, sse_frames
from crossbeat.sharing.live import StreamReader
from crossbeat.sharing.request import Viewer
from crossbeat.store import Store

router = APIRouter(tags=["live"])


def _shape(viewer: Viewer, record: dict[str, Any]) -> dict[str, Any]:
    """Render a record exactly as ``GET /incidents`` renders it for this viewer."""
    shaped: dict[str, Any] = _record(_record_model(viewer), record).model_dump(mode="json")
    return shaped


@router.get(
    "/live",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    summary="Follow incident and bulletin changes as they are committed (SSE)",
)
async def live(
    request: Request,
    store: StoreDep,
    viewer: ViewerDep,
    _signed_in: SignedInDep,
    last_event_id: Annotated[
        str | None,
        Header(max_length=40, description="Resume after this event id (sent as `id:`)."),
    ] = None,
    after: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,18}$",
            description="Resume after this event id, for a client that opens a new stream "
            "(a browser back online); `Last-Event-ID`, when sent, wins.",
        ),
    ] = None,
) -> StreamingResponse:
    """Stream ``incident.created``, ``incident.updated``, ``incident.withdrawn``,
    ``bulletin.created`` and ``bulletin.acknowledged`` events as text/event-stream.

    Each incident is sent exactly as ``GET /api/v1/incidents`` would show it to you at
    that moment; a revoked agreement stops what flows at once. Reconnect with
    ``Last-Event-ID`` (or ``?after=``) to receive every event after it. The connection is
    audited as one read per owner agency when it ends (and every five minutes while it
    lasts).
    """
    reader = StreamReader(store, viewer, cache=request.app.state.live_cache, shape=_shape)
    frames = sse_frames(
        store,
        request.app.state.live_broker,
        reader,
        after=parse_last_event_id(last_event_id if last_event_id is not None else after),
        disconnected=request.is_disconnected,
        bulletins=_bulletins(store, viewer),
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


def _bulletins(store: Store, viewer: Viewer) -> BulletinFilter | None:
    """Return the bulletin filter of an agency's subscriber (the public gets none)."""
    agency = viewer.agency_id
    if agency is None:
        return None
    return functools.partial(bulletin_deliveries, store, agency)
