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
from .deps import CachedReads, Database, Services
from .errors import install_error_handlers
from .fast_path import JobDetailFastPath
from .middleware import LatencyMiddleware
from .routes import blobs as blob_routes
from .routes import events, health, jobs, providers, stats
from .routes import insights as insight_routes
from .routes import search as search_routes
from .settings import ApiSettings


def create_app(
    engine: Engine,
    blobs: BlobStore,
    settings: ApiSettings | None = None,
    *,
    indexer_status: IndexerStatus | None = None,
) -> FastAPI:
    """The API over the store behind `engine` and the blob store `blobs`, configured by
    `settings` (see ApiSettings; the defaults and CMARKET_API_* variables without one).
    `indexer_status` is that of an indexer running in the same process, which `/health` reports
    and the response cache follows.
    """
    settings = settings or ApiSettings()
    database = Database(engine, max_threads=settings.db_threads)

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
        cache=ResponseCache(settings.response_cache_entries),
        blobs=blobs,
        indexer_status=indexer_status,
        settings=settings,
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
