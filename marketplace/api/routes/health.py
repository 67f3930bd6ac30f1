"""`GET /health` and `GET /metrics`: is the index current, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...metrics import REGISTRY
from .. import queries
from ..deps import DatabaseDep, SettingsDep
from ..schemas import Health

router = APIRouter(tags=["service"])


@router.get("/health", summary="Indexer progress: ok, indexing (behind the chain) or not-initialized")
async def health(db: DatabaseDep, settings: SettingsDep) -> Health:
    """Always 200 while the service runs; `status` says whether the index is within
    a few blocks of the chain head."""
    return await db.run(queries.health, settings.healthy_lag_blocks)


@router.get(
    "/metrics",
    summary="Prometheus metrics of the indexer and the API",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
