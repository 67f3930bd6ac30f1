"""The protocol's value types: what a requester posts, and jobs, seats and providers as the
contract's views and events report them, each decoded from the ABI in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from .events import Event, checksum_address
from .hashing import ZERO_HASH, Hash32
from .status import AssignmentStatus, JobStatus

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ETH = ZERO_ADDRESS
"""The payment (or stake) token address that means native ETH."""


@dataclass(frozen=True)
class JobParams:
    """What a requester posts; mirrors IComputeMarket.JobParams."""

    spec_hash: bytes
    reward_per_replica: int
    replicas: int = 1
    token: str = ETH
    collateral_per_replica: int | None = None  # None: the least the market accepts
    claim_window: int = 3600
    run_timeout: int = 3600
    reveal_window: int = 3600

    @property
    def escrow(self) -> int:
        return self.reward_per_replica * self.replicas

    def as_tuple(self) -> tuple[Any, ...]:
        if self.collateral_per_replica is None:
            raise ValueError(
                "JobParams.collateral_per_replica is not set: use Market.calls, which fills it in"
            )
        return (
            bytes(self.spec_hash),
            to_checksum_address(self.token),
            self.reward_per_replica,
            self.replicas,
            self.collateral_per_replica,
            self.claim_window,
            self.run_timeout,
            self.reveal_window,
        )


@dataclass(frozen=True)
class JobView:
    """A job as `getJob` reports it (its effective status at the block read)."""

    job_id: int
    requester: str
    token: str
    status: JobStatus
    replicas: int
    claims: int
    commits: int
    reveals: int
    deadline: int
    reward_per_replica: int
    collateral_per_replica: int
    run_timeout: int
    reveal_window: int
    fee_bps: int

    @classmethod
    def from_abi(cls, job_id: int, fields: Sequence[Any]) -> JobView:
        """From `getJob`'s decoded output tuple."""
        (requester, token, status, replicas, claims, commits, reveals, deadline,
         reward, collateral, run_timeout, reveal_window, fee_bps) = fields  # fmt: skip
        return cls(
            job_id=job_id, requester=checksum_address(requester), token=checksum_address(token),
            status=JobStatus.from_code(status), replicas=replicas, claims=claims, commits=commits,
            reveals=reveals, deadline=deadline, reward_per_replica=reward, collateral_per_replica=collateral,
            run_timeout=run_timeout, reveal_window=reveal_window, fee_bps=fee_bps,
        )  # fmt: skip


@dataclass(frozen=True)
class AssignmentView:
    """One provider's seat on a job as `getAssignment` reports it (status NONE: it holds none)."""

    status: AssignmentStatus
    slot: int
    commitment: Hash32
    result_hash: Hash32

    @classmethod
    def from_abi(cls, fields: Sequence[Any]) -> AssignmentView:
        status, slot, commitment, result_hash = fields
        return cls(AssignmentStatus.from_code(status), slot, Hash32(commitment), Hash32(result_hash))


@dataclass(frozen=True)
class ProviderView:
    """A provider's registration and stake as `providerInfo` reports it."""

    registered: bool
    free_stake: int
    locked_stake: int
    unbonding: int
    unbonding_ready_at: int

    @classmethod
    def from_abi(cls, fields: Sequence[Any]) -> ProviderView:
        registered, free, locked, unbonding, ready_at = fields
        return cls(bool(registered), free, locked, unbonding, ready_at)


@dataclass(frozen=True)
class SortitionView:
    """A job's sortition as `getSortition` reports it."""

    post_block: int
    claim_window: int
    seed: int  # fixed by the first claim; before it, the one a claim would fix now (0: not yet)
    total_bonded: int  # all providers' bonded stake at the end of the posting block

    @classmethod
    def from_abi(cls, fields: Sequence[Any]) -> SortitionView:
        post_block, claim_window, seed, total = fields
        return cls(int(post_block), int(claim_window), int(seed), int(total))


@dataclass(frozen=True)
class Bounds:
    """The market's limits on jobs (`bounds`, `setBounds`): the longest windows, seconds, and the
    minimum collateral per replica in basis points of the reward (for jobs paid in the stake token)."""

    max_claim_window: int
    max_run_timeout: int
    max_reveal_window: int
    min_collateral_bps: int

    def min_collateral(self, reward: int, *, same_token: bool) -> int:
        """The least collateral per replica a job paying `reward` per replica may ask for."""
        return -(-reward * self.min_collateral_bps // 10_000) if same_token else 1


@dataclass(frozen=True)
class PostedJob:
    """A job as its JobPosted event recorded it."""

    job_id: int
    requester: str
    spec_hash: Hash32
    token: str
    reward_per_replica: int
    replicas: int
    collateral_per_replica: int
    claim_deadline: int
    block_number: int

    @classmethod
    def from_event(cls, event: Event) -> PostedJob:
        """From a JobPosted event (JSON-ready or native values)."""
        args = event.args
        spec = args["specHash"]
        return cls(
            job_id=int(args["jobId"]), requester=args["requester"],
            spec_hash=Hash32.from_hex(spec) if isinstance(spec, str) else Hash32(spec),
            token=args["token"], reward_per_replica=int(args["rewardPerReplica"]),
            replicas=int(args["replicas"]), collateral_per_replica=int(args["collateralPerReplica"]),
            claim_deadline=int(args["claimDeadline"]), block_number=event.block_number,
        )  # fmt: skip


@dataclass(frozen=True)
class Settlement:
    """How a job ended, as its JobFinalized or JobCancelled event recorded it."""

    job_id: int
    status: JobStatus  # COMPLETED, FAILED or CANCELLED
    result_hash: Hash32 | None  # the majority's, for a completed job
    winners: tuple[str, ...]
    block_number: int = 0  # where the event is
    block_hash: str = ""

    @classmethod
    def from_event(cls, event: Event) -> Settlement:
        """From a JobFinalized or JobCancelled event (JSON-ready or native values)."""
        job_id = int(event.args["jobId"])
        where = (event.block_number, event.block_hash)
        if event.name == "JobCancelled":
            return cls(job_id, JobStatus.CANCELLED, None, (), *where)
        raw = event.args["resultHash"]
        result = Hash32.from_hex(raw) if isinstance(raw, str) else Hash32(raw)
        return cls(
            job_id,
            JobStatus.from_code(event.args["outcome"]),
            None if result == ZERO_HASH else result,
            tuple(event.args["winners"]),
            *where,
        )
