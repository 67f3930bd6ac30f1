"""Typed dependencies of the routes: the database, the blob store, the settings.

Routes are `async def` and hand their SQL to `Database.run`, which runs one read function on its
own pooled connection in ONE worker thread. A sync route with a per-request session dependency
costs three thread hand-offs per request (session open, endpoint, close: about 0.3 ms on a small
VM, as much as all the queries of `GET /v1/jobs/{id}`); this costs one, and the event loop never
waits on SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Concatenate, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from ..indexer.status import IndexerStatus
from ..store.blobs import BlobStore
from .cache import ResponseCache

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ApiSettings:
    max_blob_bytes: int
    healthy_lag_blocks: int
    stream_poll_seconds: float
    stream_keepalive_seconds: float


class Database:
    """The store behind the API: `await db.run(read, *args)` calls `read(connection, *args)` with a
    pooled connection in a worker thread, and gives the connection back before returning."""

    def __init__(self, engine: Engine, max_threads: int = 2) -> None:
        self.engine = engine
        self.max_threads = max_threads
        self._limiter: anyio.CapacityLimiter | None = None

    def call(self, read: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` without the thread: for code already off the event loop."""
        with self.engine.connect() as connection:
            return read(connection, *args, **kwargs)

    async def run(
        self, read: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._limiter is None:  # created lazily: it belongs to the running event loop
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return await anyio.to_thread.run_sync(
            partial(self.call, read, *args, **kwargs), limiter=self._limiter
        )


@dataclass(frozen=True)
class Services:
    """What `create_app` was given, kept on `app.state.services`."""

    database: Database
    cache: ResponseCache
    blobs: BlobStore
    settings: ApiSettings
    indexer_status: IndexerStatus | None = None


# The dependencies only look things up, so they are `async def`: run inline, not in a worker thread.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_database(services: ServicesDep) -> Database:
    return services.database


async def get_cache(services: ServicesDep) -> ResponseCache:
    return services.cache


async def get_blobs(services: ServicesDep) -> BlobStore:
    return services.blobs


async def get_settings(services: ServicesDep) -> ApiSettings:
    return services.settings


DatabaseDep = Annotated[Database, Depends(get_database)]
CacheDep = Annotated[ResponseCache, Depends(get_cache)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
