"""Response bodies of the dashboard's read routes: time series, distributions, search results, job data.

Like `schemas.py`: amounts are decimal strings of base units, times are Unix seconds of chain time
(block timestamps, not the server's clock), hashes 0x-prefixed hex. Series are parallel arrays, one
value per bucket, the shape chart libraries take without reshaping.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from ..protocol.status import JobStatus
from .schemas import Schema


class Activity(Schema):
    """What happened to jobs per time bucket, and how many were in each state at each bucket's end."""

    bucket_seconds: int
    end: int | None = Field(description="chain time of the newest indexed block; null before indexing")
    times: list[int] = Field(description="the start of each bucket, oldest first")
    posted: list[int]
    started: list[int] = Field(description="jobs whose last replica slot was taken in the bucket")
    completed: list[int]
    failed: list[int]
    cancelled: list[int]
    open_jobs: list[int] = Field(description="jobs open at the end of each bucket")
    in_progress: list[int] = Field(description="jobs running or revealing at the end of each bucket")
    completed_total: list[int] = Field(description="jobs completed by the end of each bucket")
    failed_total: list[int]
    cancelled_total: list[int]


class LatencyBin(Schema):
    start: int = Field(description="seconds, inclusive")
    end: int = Field(description="seconds, exclusive")
    count: int


class Latency(Schema):
    """Distribution of posted-to-finalized seconds over completed jobs."""

    count: int
    min: int | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: int | None
    bin_seconds: int | None
    bins: list[LatencyBin] = Field(description="equal-width bins from the fastest to the slowest job")


class Summary(Schema):
    """Market-wide figures the dashboard shows next to `GET /v1/stats`."""

    providers_active: int = Field(description="providers with free or locked stake")
    slashes: int = Field(description="assignments slashed, over all providers")
    slashed_amount: str = Field(description="stake taken by slashing, in stake-token base units")
    requesters: int = Field(description="distinct addresses that posted a job")


class Outcome(StrEnum):
    WON = "won"
    SLASHED = "slashed"
    RETURNED = "returned"
    CANCELLED = "cancelled"


class ProviderJob(Schema):
    job_id: int
    status: JobStatus
    outcome: Outcome | None = Field(description="null while the job is not settled")
    slashed_amount: str
    finished_at: int | None


class ProviderHistory(Schema):
    """A provider's settled assignments and earnings over time, in equal buckets up to chain time now."""

    address: str
    bucket_seconds: int | None = Field(description="null when nothing has settled yet")
    times: list[int] = Field(description="the end of each bucket, oldest first")
    won: list[int]
    slashed: list[int]
    returned: list[int] = Field(description="no quorum: collateral returned without reward")
    reputation: list[float | None] = Field(
        description="won / (won + slashed) over every assignment settled by each bucket's end"
    )
    earned: dict[str, list[str]] = Field(
        description="token -> total credited by each bucket's end (rewards and slash shares)"
    )
    recent: list[ProviderJob] = Field(description="the provider's latest assignments, newest first")


class HitKind(StrEnum):
    JOB = "job"
    PROVIDER = "provider"
    REQUESTER = "requester"
    BLOB = "blob"


class SearchHit(Schema):
    kind: HitKind
    match: str = Field(
        description="what matched: id, spec_hash, result_hash, revealed_result, posted_tx, address, blob"
    )
    job_id: int | None = None
    status: JobStatus | None = None
    address: str | None = None
    digest: str | None = Field(None, description="SHA-256, 64 lowercase hex characters")
    jobs: int | None = Field(None, description="for a requester: how many jobs it posted")


class QueryKind(StrEnum):
    JOB_ID = "job_id"
    ADDRESS = "address"
    DIGEST = "digest"


class SearchResults(Schema):
    query: str
    kind: QueryKind = Field(description="how the query was read")
    hits: list[SearchHit]
    truncated: bool = Field(description="more jobs matched than were returned")


class DataRole(StrEnum):
    SPEC = "spec"
    MODULE = "module"
    INPUT = "input"
    RESULT = "result"


class DataItem(Schema):
    role: DataRole
    digest: str = Field(description="SHA-256, 64 lowercase hex characters")
    cid: str = Field(description="CIDv1 (raw, sha2-256), to pin it on IPFS")
    stored: bool = Field(description="this service's blob store holds it (download from `url`)")
    size: int | None
    url: str


class JobData(Schema):
    """A job's spec, inputs and result as blobs; the spec's content when the store holds it."""

    job_id: int
    items: list[DataItem] = Field(description="spec, then module and inputs it names, then the result")
    spec: dict[str, object] | None = Field(description="the spec document, if stored and valid JSON")
    spec_note: str | None = Field(description="why the spec is not shown, when it is not")
