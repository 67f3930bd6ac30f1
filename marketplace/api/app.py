"""The marketplace's read-only REST API: jobs, providers, stats, blobs, a live event stream.

It serves what the indexer stored and never signs or sends a transaction. Routes live in
`routes/`, response shapes in `schemas.py`, the SQL behind them in `queries.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from ..dashboard.mount import install_dashboard
from ..indexer.status import IndexerStatus
from ..store.blobs import BlobStore
from .cache import ResponseCache
from .deps import ApiSettings, CachedReads, Database, Services
from .errors import install_error_handlers
from .fast_path import JobDetailFastPath
from .middleware import LatencyMiddleware
from .routes import blobs as blob_routes
from .routes import events, health, jobs, providers, stats
from .routes import insights as insight_routes
from .routes import search as search_routes

MIB = 1024 * 1024


def create_app(
    engine: Engine,
    blobs: BlobStore,
    *,
    max_blob_bytes: int = 64 * MIB,
    healthy_lag_blocks: int = 3,
    stream_poll_seconds: float = 0.2,
    stream_keepalive_seconds: float = 15.0,
    response_cache_entries: int = 4096,
    db_threads: int = 2,
    indexer_status: IndexerStatus | None = None,
) -> FastAPI:
    """The API over the store behind `engine` and the blob store `blobs`.

    `/health` says "ok" while the index is at most `healthy_lag_blocks` behind the chain head;
    `/v1/events` polls for new events every `stream_poll_seconds` and sends a keep-alive comment
    after `stream_keepalive_seconds` of silence. Up to `response_cache_entries` answers of the
    single-job, single-provider and stats routes are cached until the index changes. At most
    `db_threads` worker threads run SQL at once: with SQLite, more only contend for the GIL.
    `indexer_status` is that of an indexer running in the same process, which `/health` reports.
    """
    if max_blob_bytes < 1:
        raise ValueError("max_blob_bytes must be positive")
    database = Database(engine, max_threads=db_threads)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        database.close()

    app = FastAPI(
        lifespan=lifespan,
        title="ComputeMarket marketplace",
        summary="Read-only view of a ComputeMarket contract's jobs, providers and events; blob storage.",
        version="1",
    )
    services = Services(
        database=database,
        cache=ResponseCache(response_cache_entries),
        blobs=blobs,
        indexer_status=indexer_status,
        settings=ApiSettings(
            max_blob_bytes=max_blob_bytes,
            healthy_lag_blocks=healthy_lag_blocks,
            stream_poll_seconds=stream_poll_seconds,
            stream_keepalive_seconds=stream_keepalive_seconds,
        ),
    )
    app.state.services = services
    app.state.cached_reads = CachedReads(services.database, services.cache, indexer_status)
    for module in (health, jobs, providers, stats, blob_routes, events):
        app.include_router(module.router)
    for dashboard_module in (insight_routes, search_routes):
        app.include_router(dashboard_module.router)
    install_dashboard(app)
    install_error_handlers(app)
    app.add_middleware(JobDetailFastPath, reads=app.state.cached_reads)
    app.add_middleware(LatencyMiddleware)  # added last: the outer one, it times the fast path too
    return app
