"""`GET /v1/stats`: market-wide counts, volume, stake and completion time."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .. import queries
from ..deps import CacheDep, DatabaseDep
from ..responses import JsonBytes
from ..schemas import Stats

router = APIRouter(prefix="/v1", tags=["stats"])


@router.get(
    "/stats",
    summary="Jobs by effective status, volume per token, total stake, median completion",
    response_model=Stats,
)
async def get_stats(db: DatabaseDep, cache: CacheDep) -> Response:
    return JsonBytes(await db.run(cache.fetch, ("stats",), queries.stats))
