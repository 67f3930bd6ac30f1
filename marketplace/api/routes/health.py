"""`GET /health` and `GET /metrics`: is the index current, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...metrics import REGISTRY
from .. import queries
from ..deps import DatabaseDep, ServicesDep
from ..schemas import Health, IndexerHealth

router = APIRouter(tags=["service"])


@router.get(
    "/health", summary="Indexer progress: ok, indexing (behind the chain), stalled or not-initialized"
)
async def health(db: DatabaseDep, services: ServicesDep) -> Health:
    """Always 200 while the service runs; `status` says whether the index is within a few blocks
    of the chain head, and `indexer` what the indexer of this process last did."""
    found = await db.run(queries.health, services.settings.healthy_lag_blocks)
    if services.indexer_status is None:
        return found
    report = services.indexer_status.report()
    indexer = IndexerHealth(
        state=report.state, error=report.error, seconds_since_contact=report.seconds_since_contact
    )
    stalled = report.state in ("retrying", "halted") and found.status != "not-initialized"
    return found.model_copy(update={"indexer": indexer, "status": "stalled" if stalled else found.status})


@router.get(
    "/metrics",
    summary="Prometheus metrics of the indexer and the API",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
