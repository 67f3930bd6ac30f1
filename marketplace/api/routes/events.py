"""`GET /v1/events`: newly indexed events as Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse

from .. import queries
from ..deps import DatabaseDep, ServicesDep
from ..errors import BadRequest
from ..params import MAX_INT64
from ..schemas import Error
from ..stream import StreamLimits, event_stream

router = APIRouter(prefix="/v1", tags=["events"])


async def start_position(
    db: DatabaseDep,
    last_event_id: Annotated[
        str | None, Header(description="resume after this event id (set by EventSource on reconnect)")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="stream what follows this stream id; 0: all")
    ] = None,
) -> int:
    """Where the stream starts: Last-Event-ID, else `after`, else the newest message (only new ones)."""
    if last_event_id is not None:
        text = last_event_id.strip()
        if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) > MAX_INT64:
            raise BadRequest(f"Last-Event-ID {last_event_id[:60]!r} is not an event stream id")
        return int(text)
    if after is not None:
        return after
    return await db.run(queries.latest_seq)


async def stream_limits(
    max_events: Annotated[
        int | None, Query(ge=1, description="end the stream after this many events")
    ] = None,
    timeout: Annotated[
        float | None, Query(gt=0, le=86_400, description="end the stream after this many seconds")
    ] = None,
) -> StreamLimits:
    return StreamLimits(max_events=max_events, timeout=timeout)


@router.get(
    "/events",
    # Not FastAPI's generator SSE mode: the stream yields ready-made SSE bytes (see stream.py).
    response_class=StreamingResponse,
    summary="Live stream of indexed events (Server-Sent Events)",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        400: {"model": Error},
    },
)
async def stream_events(
    services: ServicesDep,
    start: Annotated[int, Depends(start_position)],
    limits: Annotated[StreamLimits, Depends(stream_limits)],
) -> EventSourceResponse:
    """Each event has `id` = its stream sequence number, `event` = its name and JSON `data` {seq,
    position, name, block_number, block_timestamp, tx_hash, gas_used, log_index, job_id, args}.
    After a reorg the stream sends `event: reorg` with `data` {seq, ancestor_block, ancestor_hash,
    replaced_to_block, events_removed}: events of blocks above `ancestor_block` are void, and the
    replacement events follow. Comments keep idle streams alive. `max_events` and `timeout` end a
    stream early (for scripts and tests); a reorg notice counts as an event."""
    settings = services.settings
    messages = event_stream(
        services.database, start, limits,
        poll_seconds=settings.stream_poll_seconds, keepalive_seconds=settings.stream_keepalive_seconds,
    )  # fmt: skip
    # Already SSE bytes, a poll's worth at a time (see stream.py); no proxy may buffer them.
    return EventSourceResponse(messages, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
