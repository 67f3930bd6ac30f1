"""`GET /v1/insights/...`: the series and figures the dashboard draws: activity, latency, job data.

Kept out of the OpenAPI document: they exist for the dashboard and change with it, while the
document describes the stable public API that DESIGN.md fixes.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Response

from .. import insights
from ..deps import BlobsDep, CachedReadsDep, DatabaseDep
from ..insight_schemas import Activity, JobData, Latency, ProviderHistory, Summary
from ..params import AddressPath, JobIdPath
from ..responses import JsonBytes

router = APIRouter(prefix="/v1/insights", tags=["dashboard"], include_in_schema=False)

BucketSeconds = Annotated[int, Query(ge=1, le=86_400, description="seconds per bucket")]
Buckets = Annotated[int, Query(ge=1, le=1_440, description="how many buckets, ending at chain time now")]


@router.get("/activity", response_model=Activity)
async def get_activity(reads: CachedReadsDep, bucket: BucketSeconds = 60, buckets: Buckets = 60) -> Response:
    """Jobs posted, started and finished per bucket, and the jobs in each state at each bucket's end."""
    body = await reads.json(
        ("activity", bucket, buckets),
        lambda connection: insights.activity(connection, bucket, buckets),
    )
    return JsonBytes(body)


@router.get("/latency", response_model=Latency)
async def get_latency(
    reads: CachedReadsDep,
    bins: Annotated[int, Query(ge=1, le=200, description="at most this many bins")] = 24,
) -> Response:
    """Posted-to-finalized seconds of completed jobs: percentiles and a histogram."""
    body = await reads.json(("latency", bins), lambda connection: insights.latency(connection, bins))
    return JsonBytes(body)


@router.get("/summary", response_model=Summary)
async def get_summary(reads: CachedReadsDep) -> Response:
    """Active providers, slashes and requesters: what /v1/stats does not count."""
    return JsonBytes(await reads.json(("summary",), insights.summary))


@router.get("/providers/{address}", response_model=ProviderHistory)
async def get_provider_history(
    reads: CachedReadsDep,
    address: AddressPath,
    buckets: Annotated[int, Query(ge=1, le=500, description="at most this many buckets")] = 60,
) -> Response:
    """Outcomes (won, slashed, returned), reputation and earnings over time, and latest assignments."""
    body = await reads.json(
        ("provider-history", address, buckets),
        lambda connection: insights.provider_history(connection, address, buckets),
    )
    return JsonBytes(body)


@router.get("/jobs/{job_id}/data")
async def get_job_data(db: DatabaseDep, blobs: BlobsDep, job_id: JobIdPath) -> JobData:
    """The job's spec, module, inputs and result: digests, CIDs, whether this service stores them.
    Not cached: blobs arrive without the index changing."""
    spec_hash, result_hash = await db.run(insights.job_hashes, job_id)
    return await anyio.to_thread.run_sync(insights.job_data, blobs, job_id, spec_hash, result_hash)
