"""The settlement planner, without a chain: what a provider sends for each on-chain job state, who
finalizes, how a row is set back to what the chain shows, and the chain's clock."""

from __future__ import annotations

import pytest

from marketplace.protocol.hashing import Hash32
from marketplace.protocol.status import AssignmentStatus, JobStatus
from marketplace.protocol.views import ETH, AssignmentView, JobView, Settlement
from provider import planner
from provider.gateway import ChainClock
from provider.planner import ChainTime, Conduct
from provider.state import Stage, WorkRecord

ME, OTHER = "0x" + "aa" * 20, "0x" + "bb" * 20
RESULT = Hash32(b"\x01" * 32)


def record(stage: Stage, replicas: int = 3, *, job_id: int = 1, slot: int | None = None) -> WorkRecord:
    return WorkRecord(job_id, stage, replicas, Hash32(b"\xab" * 32), ETH, 10**16, 10**17, slot=slot)


def view(
    status: JobStatus,
    *,
    replicas: int = 3,
    commits: int = 0,
    reveals: int = 0,
    deadline: int = 1_000,
    job_id: int = 1,
) -> JobView:
    return JobView(
        job_id=job_id, requester="0x" + "33" * 20, token=ETH, status=status, replicas=replicas,
        claims=replicas, commits=commits, reveals=reveals, deadline=deadline, reward_per_replica=10**16,
        collateral_per_replica=10**17, run_timeout=60, reveal_window=60, fee_bps=100,
    )  # fmt: skip


def seat(status: AssignmentStatus, slot: int = 0) -> AssignmentView:
    return AssignmentView(status, slot, Hash32(bytes(32)), Hash32(bytes(32)))


def decide(
    stage: Stage, job: JobView, latest: int = 900, *, reveals: bool = True, copies: bool = False
) -> str:
    action = planner.next_action(
        record(stage, job.replicas), job, ChainTime(latest, 1.0), Conduct(reveals, copies)
    )
    return action or "wait"


@pytest.mark.parametrize(
    ("stage", "job", "latest", "expected"),
    [
        (Stage.COMPUTED, view(JobStatus.RUNNING, replicas=1), 900, "submit"),
        (Stage.COMPUTED, view(JobStatus.RUNNING), 900, "commit"),
        (Stage.CLAIMED, view(JobStatus.RUNNING), 900, "wait"),  # still computing
        (Stage.COMPUTED, view(JobStatus.OPEN), 900, "wait"),  # the other slots are not claimed yet
        (Stage.COMPUTED, view(JobStatus.OPEN, deadline=900), 900, "cancel"),  # ... and never will be
        (Stage.COMMITTED, view(JobStatus.RUNNING, commits=2), 900, "wait"),  # others still to commit
        (Stage.COMMITTED, view(JobStatus.REVEALING, commits=3), 900, "reveal"),
        # `latest` is the latest block's time: a transaction sent now is mined at the earliest a second later.
        (Stage.COMMITTED, view(JobStatus.REVEALING, commits=3, deadline=999), 998, "reveal"),
        (Stage.COMMITTED, view(JobStatus.REVEALING, commits=3, deadline=999), 999, "finalize"),
        (Stage.REVEALED, view(JobStatus.REVEALING, commits=3, reveals=2), 900, "wait"),
        (Stage.REVEALED, view(JobStatus.REVEALING, commits=3, reveals=3), 900, "finalize"),
        (Stage.REVEALED, view(JobStatus.REVEALING, commits=3, reveals=2, deadline=950), 950, "finalize"),
        (Stage.COMPUTED, view(JobStatus.REVEALING, commits=2, deadline=950), 900, "wait"),  # missed commit
        (Stage.COMPUTED, view(JobStatus.REVEALING, commits=2, reveals=2), 900, "finalize"),
        (Stage.COMPUTED, view(JobStatus.RUNNING, deadline=900), 900, "wait"),  # too late to commit
    ],
)
def test_each_job_state_gets_what_it_needs(stage: Stage, job: JobView, latest: int, expected: str) -> None:
    assert decide(stage, job, latest) == expected


def test_a_silent_provider_never_reveals_and_a_copier_commits_without_computing() -> None:
    assert decide(Stage.COMMITTED, view(JobStatus.REVEALING, commits=3), reveals=False) == "wait"
    assert decide(Stage.CLAIMED, view(JobStatus.RUNNING), copies=True) == "commit"
    assert decide(Stage.CLAIMED, view(JobStatus.RUNNING, replicas=1), copies=True) == "wait"


def test_deadlines_are_planned_from_the_observed_block_interval() -> None:
    """With 12-second blocks, a reveal due at 1,000 is pointless once the latest block is at 989:
    the next block comes at 1,001. The job is finalized from the next block instead."""
    job = view(JobStatus.REVEALING, commits=3, deadline=1_000)
    conduct = Conduct()
    assert planner.next_action(record(Stage.COMMITTED), job, ChainTime(988, 12.0), conduct) == "reveal"
    assert planner.next_action(record(Stage.COMMITTED), job, ChainTime(989, 12.0), conduct) == "finalize"
    assert ChainTime(989, 12.0).next_block == 1_001 and ChainTime(989, 0.2).next_block == 990


def test_one_seat_holder_finalizes_at_once_the_others_after_a_grace() -> None:
    ready = view(JobStatus.REVEALING, commits=3, reveals=3, job_id=7)
    designated = planner.designated_finalizer(7, 3)
    seats = [record(Stage.REVEALED, job_id=7, slot=slot) for slot in range(3)]
    time = ChainTime(900, 1.0)
    at_once = planner.plan(seats, {7: ready}, time, Conduct(), waited=lambda _: 0.0, finalize_grace=4.0)
    assert [r.slot for r in at_once.finalize] == [designated]
    later = planner.plan(seats, {7: ready}, time, Conduct(), waited=lambda _: 4.0, finalize_grace=4.0)
    assert sorted(r.slot or 0 for r in later.finalize) == [0, 1, 2]  # the designated one went away


@pytest.mark.parametrize(
    ("stage", "seat_status", "result", "expected"),
    [
        (Stage.CLAIMING, AssignmentStatus.CLAIMED, None, Stage.CLAIMED),
        (Stage.COMMITTING, AssignmentStatus.CLAIMED, RESULT, Stage.COMPUTED),  # the commit did not take
        (Stage.COMMITTING, AssignmentStatus.COMMITTED, RESULT, Stage.COMMITTED),
        (Stage.REVEALING, AssignmentStatus.REVEALED, RESULT, Stage.REVEALED),
        (Stage.COMMITTED, AssignmentStatus.CLAIMED, RESULT, Stage.COMPUTED),  # a reorg undid the commit
        (Stage.CLAIMED, AssignmentStatus.NONE, None, Stage.ENDED),  # a reorg undid the claim
    ],
)
def test_a_row_is_set_to_what_the_chain_shows(
    stage: Stage, seat_status: AssignmentStatus, result: Hash32 | None, expected: Stage
) -> None:
    fixed = planner.reconciled(
        record(stage).with_(result_hash=result), view(JobStatus.RUNNING), seat(seat_status, slot=2)
    )
    assert fixed is not None and fixed.stage is expected
    if expected is Stage.ENDED:
        assert fixed.outcome == "lost" and fixed.slot is None
    else:
        assert fixed.slot == 2


def test_a_row_of_a_job_that_ended_is_settled_from_its_event() -> None:
    row = record(Stage.REVEALED, slot=0)
    assert planner.reconciled(row, view(JobStatus.COMPLETED), seat(AssignmentStatus.REVEALED)) is None
    won = planner.settled(row, Settlement(1, JobStatus.COMPLETED, RESULT, (ME,)), ME)
    assert (won.stage, won.outcome) == (Stage.ENDED, "won")
    slashed = planner.settled(row, Settlement(1, JobStatus.COMPLETED, RESULT, (OTHER,)), ME)
    returned = planner.settled(row, Settlement(1, JobStatus.FAILED, None, ()), ME)
    copied = planner.settled(row.with_(error_code="copied"), Settlement(1, JobStatus.FAILED, None, ()), ME)
    assert (slashed.outcome, returned.outcome, copied.outcome) == ("slashed", "returned", "slashed")
    assert planner.final_stage(won) is Stage.SETTLED
    assert planner.final_stage(record(Stage.ENDED).with_(outcome="lost")) is Stage.LOST
    assert planner.final_stage(record(Stage.ENDED).with_(outcome="cancelled")) is Stage.CANCELLED


def test_the_clock_learns_the_block_interval_and_forgets_it_after_a_reorg() -> None:
    clock = ChainClock()
    assert clock.interval == 1.0  # nothing seen yet
    for number in range(10, 15):
        clock.observe(number, 1_000 + 12 * number)
    assert clock.interval == 12.0
    clock.observe(16, 1_000 + 12 * 14 + 13)  # two blocks in 13 s (one of them seen by nobody)
    assert clock.interval == 6.5
    clock.observe(12, 5_000)  # a shorter chain after a reorg
    assert clock.interval == 1.0
