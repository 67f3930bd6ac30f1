"""Event handlers: each turns one ComputeMarket event into changes of the projection rows.

Handlers are pure functions of (rows so far, event): replaying the same events from the same
state always gives the same rows, which is what makes re-indexing after a crash or a reorg exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol.hashing import ZERO_HASH
from ..protocol.sortition import seed_block, seed_of, ticket
from ..protocol.status import AssignmentStatus, JobStatus, Outcome, seat_outcome
from ..store.projector import Projector, Row


@dataclass(frozen=True)
class EventContext:
    block: int
    block_hash: str
    timestamp: int
    tx_hash: str
    journal_block: int | None  # the block to journal changes under, None once it is final
    hash_of: Callable[[int], str]  # the hash of an earlier block of this chain


def _seed(block_hash: str) -> int:
    return seed_of(bytes.fromhex(block_hash.removeprefix("0x")))


def _add(row: Row, column: str, amount: int | str) -> None:
    row[column] = str(int(row[column]) + int(amount))


def _provider(p: Projector, address: str, ctx: EventContext) -> Row:
    row = p.get("providers", (address,))
    if row is None:
        row = {
            "address": address, "metadata_uri": "", "registered_block": ctx.block,
            "staked": "0", "locked": "0", "unbonding": "0",
            "jobs_claimed": 0, "jobs_completed": 0, "jobs_slashed": 0, "slashed_amount": "0",
        }  # fmt: skip
    return row


def _balance(p: Projector, account: str, token: str) -> Row:
    row = p.get("balances", (account, token))
    return row or {"account": account, "token": token, "credited": "0", "withdrawn": "0"}


def _job(p: Projector, job_id: int) -> Row:
    row = p.get("jobs", (job_id,))
    if row is None:
        raise LookupError(f"event for job {job_id}, which was never posted")
    return row


def _assignment(p: Projector, job_id: int, provider: str) -> Row:
    row = p.get("assignments", (job_id, provider))
    if row is None:
        raise LookupError(f"event for {provider} on job {job_id}, which it never claimed")
    return row


def _move_collateral(p: Projector, ctx: EventContext, provider: str, amount: int, *, unlock: bool) -> None:
    row = _provider(p, provider, ctx)
    _add(row, "locked", -amount if unlock else amount)
    _add(row, "staked", amount if unlock else -amount)
    p.put("providers", row, ctx.journal_block)


def provider_registered(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    row = _provider(p, args["provider"], ctx)
    row["metadata_uri"] = args["metadataURI"]
    p.put("providers", row, ctx.journal_block)


def staked(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    row = _provider(p, args["provider"], ctx)
    _add(row, "staked", args["amount"])
    p.put("providers", row, ctx.journal_block)


def unstake_requested(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    row = _provider(p, args["provider"], ctx)
    _add(row, "staked", -int(args["amount"]))
    _add(row, "unbonding", args["amount"])
    p.put("providers", row, ctx.journal_block)


def stake_withdrawn(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    row = _provider(p, args["provider"], ctx)
    _add(row, "unbonding", -int(args["amount"]))
    p.put("providers", row, ctx.journal_block)


def job_posted(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = {
        "id": args["jobId"], "requester": args["requester"], "token": args["token"],
        "spec_hash": args["specHash"], "reward_per_replica": args["rewardPerReplica"],
        "collateral_per_replica": args["collateralPerReplica"], "replicas": args["replicas"],
        "status": JobStatus.OPEN, "claims": 0, "commits": 0, "reveals": 0,
        "claim_deadline": args["claimDeadline"], "commit_deadline": None, "result_hash": None,
        "posted_block": ctx.block, "posted_at": ctx.timestamp, "posted_tx": ctx.tx_hash,
        "seed": _seed(ctx.block_hash),
        "started_block": None, "started_at": None, "finished_block": None, "finished_at": None,
    }  # fmt: skip
    p.put("jobs", job, ctx.journal_block)
    totals = p.get("token_totals", (args["token"],)) or {
        "token": args["token"],
        "jobs_posted": 0,
        "escrowed": "0",
    }
    totals["jobs_posted"] += 1
    _add(totals, "escrowed", int(args["rewardPerReplica"]) * int(args["replicas"]))
    p.put("token_totals", totals, ctx.journal_block)


def job_claimed(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = _job(p, args["jobId"])
    if job["claims"] == 0:  # the first claim fixed the seed: a later anchor's, past 256 blocks
        anchor = seed_block(job["posted_block"], ctx.block)
        if anchor is not None and anchor != job["posted_block"]:
            job["seed"] = _seed(ctx.hash_of(anchor))
    job["claims"] += 1
    p.put("jobs", job, ctx.journal_block)
    seed = job["seed"]
    assignment = {
        "job_id": job["id"], "provider": args["provider"], "slot": args["slot"],
        "status": AssignmentStatus.CLAIMED,
        "commitment": None, "result_hash": None, "outcome": None, "slashed_amount": "0",
        "claimed_block": ctx.block, "committed_block": None, "revealed_block": None,
        "ticket": None if seed is None else f"0x{ticket(seed, job['id'], args['provider']):016x}",
    }  # fmt: skip
    p.put("assignments", assignment, ctx.journal_block)
    provider = _provider(p, args["provider"], ctx)
    provider["jobs_claimed"] += 1
    p.put("providers", provider, ctx.journal_block)
    _move_collateral(p, ctx, args["provider"], int(job["collateral_per_replica"]), unlock=False)


def job_started(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = _job(p, args["jobId"])
    job.update(
        status=JobStatus.RUNNING,
        commit_deadline=args["commitDeadline"],
        started_block=ctx.block,
        started_at=ctx.timestamp,
    )
    p.put("jobs", job, ctx.journal_block)


def result_committed(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = _job(p, args["jobId"])
    job["commits"] += 1
    if job["commits"] == job["replicas"]:
        job["status"] = JobStatus.REVEALING
    p.put("jobs", job, ctx.journal_block)
    assignment = _assignment(p, job["id"], args["provider"])
    assignment.update(
        status=AssignmentStatus.COMMITTED, commitment=args["commitment"], committed_block=ctx.block
    )
    p.put("assignments", assignment, ctx.journal_block)


def result_revealed(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = _job(p, args["jobId"])
    assignment = _assignment(p, job["id"], args["provider"])
    if assignment["status"] == AssignmentStatus.CLAIMED:  # submitResult: commit and reveal in one step
        job["commits"] += 1
        assignment["committed_block"] = ctx.block
    job["reveals"] += 1
    if job["status"] == JobStatus.RUNNING:
        job["status"] = JobStatus.REVEALING
    p.put("jobs", job, ctx.journal_block)
    assignment.update(
        status=AssignmentStatus.REVEALED, result_hash=args["resultHash"], revealed_block=ctx.block
    )
    p.put("assignments", assignment, ctx.journal_block)


def slashed(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    amount = int(args["amount"])
    provider = _provider(p, args["provider"], ctx)
    _add(provider, "locked", -amount)
    _add(provider, "slashed_amount", amount)
    p.put("providers", provider, ctx.journal_block)
    assignment = _assignment(p, args["jobId"], args["provider"])
    assignment["slashed_amount"] = str(amount)
    p.put("assignments", assignment, ctx.journal_block)


def job_finalized(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = _job(p, args["jobId"])
    outcome = JobStatus.from_code(args["outcome"])
    job.update(
        status=outcome,
        result_hash=args["resultHash"] if args["resultHash"] != ZERO_HASH.hex0x else None,
        finished_block=ctx.block,
        finished_at=ctx.timestamp,
    )
    p.put("jobs", job, ctx.journal_block)
    winners = set(args["winners"])
    collateral = int(job["collateral_per_replica"])
    for assignment in p.rows_where("assignments", "job_id", job["id"]):
        provider = assignment["provider"]
        seat = seat_outcome(
            outcome, winner=provider in winners, revealed=assignment["status"] == AssignmentStatus.REVEALED
        )
        assignment["outcome"] = seat
        p.put("assignments", assignment, ctx.journal_block)
        row = _provider(p, provider, ctx)
        if seat is Outcome.SLASHED:
            row["jobs_slashed"] += 1  # Slashed already took the collateral (there is none when it is 0)
        else:
            _add(row, "locked", -collateral)
            _add(row, "staked", collateral)
            if seat is Outcome.WON:
                row["jobs_completed"] += 1
        p.put("providers", row, ctx.journal_block)


def job_cancelled(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    job = _job(p, args["jobId"])
    job.update(status=JobStatus.CANCELLED, finished_block=ctx.block, finished_at=ctx.timestamp)
    p.put("jobs", job, ctx.journal_block)
    for assignment in p.rows_where("assignments", "job_id", job["id"]):
        assignment["outcome"] = Outcome.CANCELLED
        p.put("assignments", assignment, ctx.journal_block)
        _move_collateral(p, ctx, assignment["provider"], int(job["collateral_per_replica"]), unlock=True)


def credited(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    row = _balance(p, args["account"], args["token"])
    _add(row, "credited", args["amount"])
    p.put("balances", row, ctx.journal_block)


def withdrawn(p: Projector, args: dict[str, Any], ctx: EventContext) -> None:
    row = _balance(p, args["account"], args["token"])
    _add(row, "withdrawn", args["amount"])
    p.put("balances", row, ctx.journal_block)


Handler = Callable[[Projector, dict[str, Any], EventContext], None]

HANDLERS: dict[str, Handler] = {
    "ProviderRegistered": provider_registered,
    "Staked": staked,
    "UnstakeRequested": unstake_requested,
    "StakeWithdrawn": stake_withdrawn,
    "JobPosted": job_posted,
    "JobClaimed": job_claimed,
    "JobStarted": job_started,
    "ResultCommitted": result_committed,
    "ResultRevealed": result_revealed,
    "Slashed": slashed,
    "JobFinalized": job_finalized,
    "JobCancelled": job_cancelled,
    "Credited": credited,
    "Withdrawn": withdrawn,
}


def prefetch(p: Projector, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Loads, in a few queries, every row the handlers of `events` will touch."""
    jobs: set[tuple[Any, ...]] = set()
    providers: set[tuple[Any, ...]] = set()
    balances: set[tuple[Any, ...]] = set()
    tokens: set[tuple[Any, ...]] = set()
    settled: set[int] = set()
    for name, args in events:
        if "jobId" in args:
            jobs.add((args["jobId"],))  # a JobPosted id too: known absent without a query per job
        if "provider" in args:
            providers.add((args["provider"],))
        if name in ("Credited", "Withdrawn"):
            balances.add((args["account"], args["token"]))
        if name == "JobPosted":
            tokens.add((args["token"],))
        if name in ("JobFinalized", "JobCancelled") or ("provider" in args and "jobId" in args):
            settled.add(args["jobId"])
    p.prefetch("jobs", jobs)
    p.prefetch("providers", providers)
    p.prefetch("balances", balances)
    p.prefetch("token_totals", tokens)
    p.prefetch_where_in("assignments", "job_id", settled)
