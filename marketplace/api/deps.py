"""Typed dependencies of the routes: the database, the blob store, the settings.

Routes are `async def` and hand their SQL to `Database.run`, which runs one read function on its
own pooled connection in ONE worker thread. A sync route with a per-request session dependency
costs three thread hand-offs per request (session open, endpoint, close: about 0.3 ms on a small
VM, as much as all the queries of `GET /v1/jobs/{id}`); this costs one, and the event loop never
waits on a query over the network or a scan. The one exception is a point read (a few indexed
lookups) on SQLite: in process and never waiting on I/O, it takes less time on the event loop
than the hand-off to a thread and back (GET /v1/jobs/{id} uncached: 1.6 times as many a second).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Concatenate, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from ..indexer.status import IndexerStatus
from ..store.blobs import BlobStore
from . import queries
from .cache import ResponseCache, to_json
from .settings import ApiSettings

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """The store behind the API: `await db.run(read, *args)` calls `read(connection, *args)` with a
    pooled connection in a worker thread, and gives the connection back before returning."""

    def __init__(self, engine: Engine, max_threads: int = 2) -> None:
        self.engine = engine
        self.max_threads = max_threads
        self.in_process = engine.dialect.name == "sqlite"  # no network round trip to wait on
        self._limiter: anyio.CapacityLimiter | None = None
        self._inline: Connection | None = None

    def call(self, read: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` without the thread: for code already off the event loop."""
        with self.engine.connect() as connection:
            return read(connection, *args, **kwargs)

    def call_inline(
        self, read: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`call` for the point reads run on the event loop, on one connection kept for them: taking
        a connection from the pool and giving it back costs a quarter of such a read. Between
        reads it holds no transaction, so it pins no snapshot of the database."""
        connection = self._inline
        if connection is None:
            connection = self._inline = self.engine.connect()
        try:
            return read(connection, *args, **kwargs)
        except self.engine.dialect.loaded_dbapi.Error:
            self.close()  # whatever went wrong, the next read starts on a fresh connection
            raise
        finally:
            if connection.in_transaction():
                connection.rollback()

    def close(self) -> None:
        """Gives the event loop's connection back to the pool."""
        if self._inline is not None:
            connection, self._inline = self._inline, None
            connection.close()

    async def run(
        self, read: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._limiter is None:  # created lazily: it belongs to the running event loop
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return await anyio.to_thread.run_sync(
            partial(self.call, read, *args, **kwargs), limiter=self._limiter
        )


class CachedReads:
    """JSON answers through the response cache. With the indexer in this process, its revision
    says where the index is and whether a commit came during a read, so the cache needs no query:
    a cached answer is sent from the event loop, without a worker thread or SQL. Otherwise the
    cache reads the checkpoint from the database, before and after each read."""

    def __init__(self, database: Database, cache: ResponseCache, status: IndexerStatus | None) -> None:
        self.database = database
        self.cache = cache
        self.status = status

    async def json(
        self, key: Hashable, read: Callable[[Connection], BaseModel], *, point_read: bool = False
    ) -> bytes:
        """The JSON of `read(connection)`. A `point_read` is a few indexed lookups, whose cost does
        not grow with the store: on SQLite it runs on the event loop (see the module's note)."""
        status = self.status
        revision = status.revision() if status is not None else None
        if status is None or revision is None or (checkpoint := revision.checkpoint) is None:
            return await self._read(point_read, self.cache.fetch, key, read)
        if (body := self.cache.get(key, checkpoint)) is not None:
            return body
        body = await self._read(point_read, to_json, read)
        if status.revision() == revision:  # nothing was committed meanwhile
            self.cache.put(key, checkpoint, body)
        return body

    async def job(self, job_id: int) -> bytes:
        """The JSON of `GET /v1/jobs/{job_id}`; NotFound if no such job is stored."""
        return await self.json(("job", job_id), partial(queries.job_detail, job_id=job_id), point_read=True)

    async def _read(
        self,
        point_read: bool,
        read: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if point_read and self.database.in_process:
            return self.database.call_inline(read, *args, **kwargs)
        return await self.database.run(read, *args, **kwargs)


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


async def get_cached_reads(request: Request) -> CachedReads:
    reads: CachedReads = request.app.state.cached_reads  # one lookup: these routes are the hot ones
    return reads


async def get_database(services: ServicesDep) -> Database:
    return services.database


async def get_blobs(services: ServicesDep) -> BlobStore:
    return services.blobs


async def get_settings(services: ServicesDep) -> ApiSettings:
    return services.settings


DatabaseDep = Annotated[Database, Depends(get_database)]
CachedReadsDep = Annotated[CachedReads, Depends(get_cached_reads)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
