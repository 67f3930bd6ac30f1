"""Response bodies of the REST API: the public JSON shapes, kept apart from the SQL tables.

Amounts are wei as decimal strings (JSON numbers lose precision past 2**53); addresses are
EIP-55 checksummed; hashes are 0x-prefixed hex; times are Unix seconds of the block.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field, Json

from ..protocol.status import JobStatus


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True)


class Error(Schema):
    detail: str = Field(description="what was wrong with the request")


class Assignment(Schema):
    provider: str
    slot: int
    status: str = Field(description="claimed, committed or revealed")
    commitment: str | None
    result_hash: str | None
    outcome: str | None = Field(description="won, slashed, returned or cancelled, once the job settled")
    slashed_amount: str
    claimed_block: int
    ticket: str | None = Field(
        description="its ticket in the job's draw (64-bit, 0x-hex): the lower per unit of stake, the "
        "sooner it was eligible; null for jobs indexed before the draw existed"
    )
    committed_block: int | None
    revealed_block: int | None


class TimelineEvent(Schema):
    position: int = Field(description="block_number * 1,000,000 + log_index: the event's place in the chain")
    name: str
    block_number: int
    block_timestamp: int
    tx_hash: str
    gas_used: int | None = Field(
        description="gas used by the transaction that emitted the event (a batch shares it among its jobs)"
    )
    # Read from the database as JSON text and parsed by pydantic-core: much faster than json.loads.
    args: Json[dict[str, Any]] = Field(
        description="the event's arguments; uint256 amounts as decimal strings"
    )


class StreamEvent(TimelineEvent):
    seq: int = Field(description="the event stream id: the order events were indexed in")
    log_index: int
    job_id: int | None


class ReorgNotice(Schema):
    """Sent on the event stream when the indexer undid a reorg."""

    seq: int = Field(description="the event stream id")
    ancestor_block: int = Field(description="events of blocks above this one are void")
    ancestor_hash: str
    replaced_to_block: int = Field(description="the last block of the branch that was undone")
    events_removed: int = Field(description="how many indexed events the undone blocks held")


class Job(Schema):
    id: int
    status: JobStatus
    requester: str
    token: str = Field(description="payment token; 0x000…000 is native ETH")
    reward_per_replica: str
    collateral_per_replica: str
    replicas: int
    claims: int
    commits: int
    reveals: int
    spec_hash: str
    result_hash: str | None
    claim_deadline: int
    commit_deadline: int | None
    posted_block: int
    posted_at: int
    posted_tx: str
    seed: int | None = Field(
        description="the draw's seed (uint32): from the posting block's hash, or a later block's if the "
        "first claim came more than 256 blocks after it; null for jobs indexed before the draw existed"
    )
    started_block: int | None
    started_at: int | None
    finished_block: int | None
    finished_at: int | None
    assignments: list[Assignment] = Field(description="by slot")


class JobDetail(Job):
    timeline: list[TimelineEvent] = Field(description="the job's events in chain order")


class JobPage(Schema):
    jobs: list[Job] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last one")


class Provider(Schema):
    address: str
    metadata_uri: str
    registered_block: int
    staked: str = Field(description="free stake")
    locked: str = Field(description="stake locked as collateral of claimed jobs")
    unbonding: str
    jobs_claimed: int
    jobs_completed: int = Field(description="jobs it was paid for (in the majority)")
    jobs_slashed: int = Field(
        description="jobs it lost: a result outside the majority, or a commit or reveal missing "
        "(counted even when the job asked for no collateral, so nothing was taken)"
    )
    slashed_amount: str = Field(description="collateral taken from it in all")
    earned: dict[str, str] = Field(description="token -> total credited to this provider")


class Slash(Schema):
    job_id: int
    amount: str
    block_number: int
    block_timestamp: int
    tx_hash: str


class ProviderDetail(Provider):
    slashes: list[Slash]


class ProviderPage(Schema):
    providers: list[Provider] = Field(description="by address")
    next_cursor: str | None


class Stats(Schema):
    jobs_by_status: dict[JobStatus, int]
    jobs_total: int
    volume: dict[str, str] = Field(description="token -> total escrowed by posted jobs")
    median_completion_seconds: float | None = Field(description="posted to finalized, over completed jobs")
    providers: int
    total_staked: str = Field(description="free plus locked stake of all providers")


class IndexerHealth(Schema):
    state: Literal["starting", "following", "retrying", "halted"] = Field(
        description="retrying: the chain's node fails to answer; halted: the indexer stopped for good"
    )
    error: str | None = Field(description="why it is retrying or halted")
    seconds_since_contact: float | None = Field(description="since the node last answered a whole step")


class Health(Schema):
    status: Literal["ok", "indexing", "stalled", "not-initialized"] = Field(
        description="ok: within a few blocks of the head; indexing: catching up; "
        "stalled: the indexer of this process cannot reach the chain or halted"
    )
    indexer: IndexerHealth | None = Field(
        None, description="the indexer running in this process, if there is one"
    )
    chain_id: int | None
    market: str | None
    indexed_block: int | None
    head_block: int | None
    lag_blocks: int | None
    last_block_timestamp: int | None


class Blob(Schema):
    digest: str = Field(description="SHA-256, 64 lowercase hex characters")
    cid: str = Field(description="CIDv1 (raw, sha2-256, base32), to pin the blob on IPFS")
    size: int


BLOB_BATCH_ITEMS = 256


class BlobBatch(Schema):
    """Several small blobs to store in one request (a provider's results, a requester's inputs)."""

    blobs: list[Base64Bytes] = Field(
        min_length=1, max_length=BLOB_BATCH_ITEMS, description="the blobs' bytes, base64"
    )


class StoredBlobs(Schema):
    blobs: list[Blob] = Field(description="in the order they were sent")


class BlobQuery(Schema):
    """Several blobs to fetch in one request, by digest."""

    digests: list[str] = Field(
        min_length=1, max_length=BLOB_BATCH_ITEMS, description="SHA-256 digests, hex (0x optional)"
    )


class FoundBlobs(Schema):
    blobs: dict[str, str] = Field(description="digest -> the blob's bytes in base64, for the blobs returned")
    missing: list[str] = Field(description="digests the store does not hold")
    deferred: list[str] = Field(
        description="held, but too large for one answer: fetch them with GET /v1/blobs/{digest}"
    )
