"""The live event stream: polls the events table and turns new rows into Server-Sent Events.

Each message's SSE `id` is its stream sequence number, the order the indexer wrote it in, so a
client that reconnects with `Last-Event-ID` resumes exactly after the last message it received.
When the indexer undoes a reorg, the stream says so with a `reorg` message (events of blocks above
its `ancestor_block` are void) before the replacement events, which get higher numbers: a client
that was away during the reorg learns of it on resume. Memory is bounded: at most one batch of
rows is held, and a slow client pushes back on the stream. Each poll's messages go out as one
chunk, already in the wire format: one write per poll rather than one per event, which is what a
stream costs the service when several providers follow a busy market.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from fastapi.sse import format_sse_event

from . import queries
from .deps import Database
from .schemas import ReorgNotice, StreamEvent

BATCH = 200
RETRY_MILLISECONDS = 1_000


@dataclass(frozen=True)
class StreamLimits:
    """When a stream ends on its own: after `max_events` events or `timeout` seconds (None: never)."""

    max_events: int | None = None
    timeout: float | None = None


async def event_stream(
    database: Database,
    after: int,
    limits: StreamLimits,
    *,
    poll_seconds: float,
    keepalive_seconds: float,
) -> AsyncIterator[bytes]:
    """Events and reorg notices numbered above `after`, in order, as they are indexed: SSE bytes."""
    deadline = None if limits.timeout is None else anyio.current_time() + limits.timeout
    remaining = limits.max_events
    cursor = after
    # A first comment says where the stream starts and tells browsers how soon to reconnect.
    yield format_sse_event(comment=f"events after {after}", retry=RETRY_MILLISECONDS)
    last_sent = anyio.current_time()
    while remaining is None or remaining > 0:
        batch_size = BATCH if remaining is None else min(BATCH, remaining)
        batch = await database.run(queries.stream_after, cursor, batch_size)
        if batch:
            yield b"".join(_encode(message) for message in batch)
            cursor = batch[-1].seq
        if remaining is not None:
            remaining -= len(batch)
        now = anyio.current_time()
        if deadline is not None and now >= deadline:
            return
        if batch:
            last_sent = now
            if len(batch) == batch_size:
                continue  # more may be waiting: read on without sleeping
        elif now - last_sent >= keepalive_seconds:
            yield format_sse_event(comment="keep-alive")
            last_sent = now
        pause = poll_seconds if deadline is None else min(poll_seconds, deadline - now)
        await anyio.sleep(pause)


def _encode(message: StreamEvent | ReorgNotice) -> bytes:
    name = "reorg" if isinstance(message, ReorgNotice) else message.name
    data = message.__pydantic_serializer__.to_json(message).decode()
    return format_sse_event(data_str=data, event=name, id=str(message.seq))
