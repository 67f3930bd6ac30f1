"""`GET /v1/jobs` (filters, cursor paging) and `GET /v1/jobs/{job_id}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ...protocol.status import JobStatus
from .. import queries
from ..deps import CachedReadsDep, DatabaseDep
from ..params import Address, Cursor, JobIdPath, Limit, decode_job_cursor, encode_cursor
from ..responses import JsonBytes
from ..schemas import Error, JobDetail, JobPage

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", summary="Jobs, newest first, filtered and paged", responses={400: {"model": Error}})
async def list_jobs(
    db: DatabaseDep,
    status: Annotated[JobStatus | None, Query(description="effective status")] = None,
    requester: Annotated[Address | None, Query(description="posted by this address")] = None,
    provider: Annotated[Address | None, Query(description="this provider holds a slot")] = None,
    token: Annotated[Address | None, Query(description="paid in this token (0x0…0: ETH)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JobPage:
    """Each job comes with its assignments, not its timeline (see `GET /v1/jobs/{job_id}`)."""
    before = decode_job_cursor(cursor) if cursor is not None else None
    jobs, more = await db.run(
        queries.job_page,
        limit=limit,
        before_id=before,
        status=status,
        requester=requester,
        provider=provider,
        token=token,
    )
    return JobPage(jobs=jobs, next_cursor=encode_cursor("jobs", jobs[-1].id) if more else None)


@router.get(
    "/{job_id}",
    summary="One job: assignments and event timeline",
    response_model=JobDetail,
    responses={404: {"model": Error}},
)
async def get_job(reads: CachedReadsDep, job_id: JobIdPath) -> Response:
    # Stored jobs are answered before the framework by `fast_path.JobDetailFastPath`, with the
    # same `reads.job`; this route documents them and answers everything else (404s, refusals).
    return JsonBytes(await reads.job(job_id))
