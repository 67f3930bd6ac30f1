"""`GET /v1/search?q=`: what a job id, an address or a digest (hex or CID) names in this market.

Kept out of the OpenAPI document with the other dashboard routes (see `routes/insights.py`).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query

from .. import insights
from ..deps import BlobsDep, DatabaseDep
from ..insight_schemas import QueryKind, SearchResults

router = APIRouter(prefix="/v1", tags=["dashboard"], include_in_schema=False)


@router.get("/search")
async def search(
    db: DatabaseDep,
    blobs: BlobsDep,
    q: Annotated[str, Query(max_length=200, description="a job id, an address, a SHA-256 digest or a CID")],
) -> SearchResults:
    """Jobs by id, spec hash, result hash or a revealed result; a provider or requester by address;
    a blob this service stores by digest."""
    kind, value = insights.parse_query(q)
    hits, truncated = await db.run(insights.search, kind, value)
    if kind is QueryKind.DIGEST:
        blob = await anyio.to_thread.run_sync(insights.blob_hit, blobs, str(value))
        if blob is not None:
            hits.append(blob)
    return SearchResults(query=q.strip(), kind=kind, hits=hits, truncated=truncated)
