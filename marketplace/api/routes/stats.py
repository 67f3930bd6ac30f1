"""`GET /v1/stats`: market-wide counts, volume, stake and completion time."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .. import queries
from ..deps import CachedReadsDep
from ..responses import JsonBytes
from ..schemas import Stats

router = APIRouter(prefix="/v1", tags=["stats"])


@router.get(
    "/stats",
    summary="Jobs by effective status, volume per token, total stake, median completion",
    response_model=Stats,
)
async def get_stats(reads: CachedReadsDep) -> Response:
    return JsonBytes(await reads.json(("stats",), queries.stats))
