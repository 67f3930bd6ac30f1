"""Deadline edges: at deadline-1, deadline and deadline+1, exactly one of two rival actions wins.

Every phase has an action that belongs to it (claim, commit, submit, reveal) and a "closer" that
ends it for good (cancel, the first reveal, finalize). Each instant T is tried from one starting
state: snapshot, mine the action at exactly T, rewind; snapshot, mine the closer at exactly T,
rewind. They must not both succeed, and the expected one must. Anvil lets several blocks share a
timestamp, so each test also mines the closer and then the action at the same T (the action must
fail), and the action and then the closer (where both may succeed only when that is harmless, e.g.
finalizing after the last reveal): whichever order a block builder picks, the instant has one winner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from marketplace.chain.market import TxResult
from marketplace.protocol.errors import ContractRevert
from marketplace.protocol.reverts import (
    CancelNotAllowed,
    DeadlinePassed,
    InvalidWindow,
    JobNotInState,
    NothingToWithdraw,
    RevealsPending,
    UnbondingNotReady,
)
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import ETH
from tests.helpers import ETHER, PROVIDER_STAKE, Chain, commit, post, result_hash, reveal

GOOD = result_hash("good")
WINDOW = 600
UINT32_MAX = 2**32 - 1
OFFSETS = [
    pytest.param(-1, id="deadline-1"),
    pytest.param(0, id="deadline"),
    pytest.param(1, id="deadline+1"),
]

Action = Callable[[], TxResult]


@dataclass(frozen=True)
class Outcome:
    """What one action did when mined at a chosen instant: its result, or the error it reverted with."""

    result: TxResult | None = None
    error: ContractRevert | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def slashed(self) -> list[str]:
        assert self.result is not None, self.error
        return [event["provider"] for event in self.result.named("Slashed")]


def expect(outcome: Outcome, error: type[ContractRevert], **fields: Any) -> None:
    assert isinstance(outcome.error, error), f"expected {error.__name__}, got {outcome}"
    assert outcome.error.fields == fields


def resync(chain: Chain) -> None:
    """After evm_revert every cached nonce may be ahead of the chain."""
    for actor in (chain.owner, chain.requester, chain.requester2, *chain.providers, chain.outsider):
        actor.sender.resync()


def at_instant(chain: Chain, timestamp: int, *actions: Action) -> list[Outcome]:
    """Mines `actions` one after another, each at exactly `timestamp`, then rewinds the chain."""
    snapshot = chain.devnet.snapshot()
    outcomes = []
    try:
        for action in actions:
            chain.warp(timestamp)
            try:
                result = action()
            except ContractRevert as exc:
                outcomes.append(Outcome(error=exc))
                continue
            assert chain.w3.eth.get_block(result.block_number)["timestamp"] == timestamp
            outcomes.append(Outcome(result=result))
    finally:
        chain.devnet.revert(snapshot)
        resync(chain)
    return outcomes


@dataclass(frozen=True)
class Race:
    action: Outcome  # the phase's action alone at T
    closer: Outcome  # the closer alone at T
    action_after_closer: Outcome  # the action at T, right after the closer at T


def race(chain: Chain, timestamp: int, action: Action, closer: Action) -> Race:
    """Tries `action` and `closer` at `timestamp` alone and in sequence; no way may let both through."""
    (alone_action,) = at_instant(chain, timestamp, action)
    (alone_closer,) = at_instant(chain, timestamp, closer)
    assert not (alone_action.ok and alone_closer.ok), f"both succeed at {timestamp}"
    closed, after = at_instant(chain, timestamp, closer, action)
    assert closed.ok == alone_closer.ok  # same state, same instant, same answer
    assert not (closed.ok and after.ok), f"the action still succeeds after the closer at {timestamp}"
    assert alone_action.ok or alone_closer.ok, f"neither succeeds at {timestamp}"
    return Race(alone_action, alone_closer, after)


# ───────────────────────────── claim deadline: claim vs cancel ─────────────────────────────


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("replicas", [2, 3], ids=["claim-fills-job", "claim-leaves-a-slot"])
@pytest.mark.parametrize("canceller", ["slot-holder", "requester"])
def test_claim_vs_cancel_around_the_claim_deadline(
    chain: Chain, offset: int, replicas: int, canceller: str
) -> None:
    holder, latecomer = chain.providers[:2]
    job_id = post(chain, replicas=replicas, claim_window=WINDOW)
    holder.claim(job_id)
    deadline = chain.market.job(job_id).deadline
    cancelling = holder if canceller == "slot-holder" else chain.requester
    at = deadline + offset
    claim = partial(latecomer.claim, job_id)
    cancel = partial(cancelling.cancel, job_id)

    outcome = race(chain, at, claim, cancel)
    if offset <= 0:  # claims are accepted up to and including the claim deadline
        assert outcome.action.ok
        assert outcome.action.result is not None
        assert outcome.action.result.event("JobClaimed")["slot"] == 1
        expect(outcome.closer, CancelNotAllowed, jobId=job_id, caller=cancelling.address)
        assert outcome.action_after_closer.ok
        # The claim does not open the way to a cancel in the same instant either.
        _, cancel_after_claim = at_instant(chain, at, claim, cancel)
        if replicas == 2:
            expect(
                cancel_after_claim,
                JobNotInState,
                jobId=job_id,
                current=JobStatus.RUNNING,
                expected=JobStatus.OPEN,
            )
        else:
            expect(cancel_after_claim, CancelNotAllowed, jobId=job_id, caller=cancelling.address)
    else:  # once the claim window is over the job can only be cancelled
        expect(outcome.action, DeadlinePassed, jobId=job_id, deadline=deadline)
        assert outcome.closer.ok
        assert outcome.closer.result is not None
        assert outcome.closer.result.event("JobCancelled")["jobId"] == job_id
        expect(
            outcome.action_after_closer,
            JobNotInState,
            jobId=job_id,
            current=JobStatus.CANCELLED,
            expected=JobStatus.OPEN,
        )

    # Every attempt was rewound: the job is still Open with one claim.
    job = chain.market.job(job_id)
    assert (job.status, job.claims) == (JobStatus.OPEN, 1)
    assert chain.market.provider(holder.address).locked_stake == ETHER


# ───────────────────────────── commit deadline: commit vs reveal ─────────────────────────────


@pytest.mark.parametrize("offset", OFFSETS)
def test_commit_vs_reveal_around_the_commit_deadline(chain: Chain, offset: int) -> None:
    early, late = chain.providers[:2]
    job_id = post(chain, replicas=2, run_timeout=WINDOW, reveal_window=WINDOW)
    early.claim(job_id)
    late.claim(job_id)
    deadline = chain.market.job(job_id).deadline
    commit(early, job_id, GOOD)
    at = deadline + offset
    late_commit = partial(commit, late, job_id, GOOD)
    early_reveal = partial(reveal, early, job_id, GOOD)

    # A reveal seen before the last commit would let the late provider copy it.
    outcome = race(chain, at, late_commit, early_reveal)
    (finalized,) = at_instant(chain, at, partial(chain.outsider.finalize, job_id))
    if offset <= 0:  # commits are accepted up to and including the commit deadline
        assert outcome.action.ok
        running = {"jobId": job_id, "current": JobStatus.RUNNING, "expected": JobStatus.REVEALING}
        expect(outcome.closer, JobNotInState, **running)
        expect(finalized, JobNotInState, **running)
        assert outcome.action_after_closer.ok
        # Once everyone has committed, reveals open at once, even at the commit deadline.
        committed, revealed = at_instant(chain, at, late_commit, early_reveal)
        assert committed.ok
        assert revealed.ok
    else:  # after it, commits are over and reveals open
        expect(outcome.action, DeadlinePassed, jobId=job_id, deadline=deadline)
        assert outcome.closer.ok
        # The first reveal stores the Revealing state: the late commit now fails on state.
        expect(
            outcome.action_after_closer,
            JobNotInState,
            jobId=job_id,
            current=JobStatus.REVEALING,
            expected=JobStatus.RUNNING,
        )
        # Finalize must still wait for the committed provider's reveal.
        expect(
            finalized,
            RevealsPending,
            jobId=job_id,
            committed=1,
            revealed=0,
            revealDeadline=deadline + WINDOW,
        )


def test_reveal_opens_before_the_commit_deadline_once_everyone_committed(chain: Chain) -> None:
    a, b = chain.providers[:2]
    job_id = post(chain, replicas=2, run_timeout=WINDOW, reveal_window=WINDOW)
    a.claim(job_id)
    b.claim(job_id)
    commit_deadline = chain.market.job(job_id).deadline
    commit(a, job_id, GOOD)
    chain.warp(commit_deadline - 10)
    commit(b, job_id, GOOD)
    job = chain.market.job(job_id)
    assert (job.status, job.deadline) == (JobStatus.REVEALING, commit_deadline - 10 + WINDOW)
    chain.warp(commit_deadline - 9)
    reveal(a, job_id, GOOD)


# ───────────────────────────── reveal deadline: reveal vs finalize ─────────────────────────────


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("variant", ["all-committed", "first-reveal-late", "second-reveal-late"])
def test_reveal_vs_finalize_around_the_reveal_deadline(chain: Chain, offset: int, variant: str) -> None:
    """all-committed: the reveal phase started with the last commit, and two of three revealed.
    first-reveal-late: one of three committed; the commit deadline passed and nobody revealed yet.
    second-reveal-late: two of three committed; one revealed after the commit deadline."""
    a, b, c = chain.providers[:3]
    job_id = post(chain, replicas=3, run_timeout=WINDOW, reveal_window=WINDOW)
    for provider in (a, b, c):
        provider.claim(job_id)
    commit_deadline = chain.market.job(job_id).deadline
    if variant == "all-committed":
        for provider in (a, b, c):
            commit(provider, job_id, GOOD)
        reveal(a, job_id, GOOD)
        reveal(b, job_id, GOOD)
        pending, committed, revealed = c, 3, 2
    elif variant == "first-reveal-late":
        commit(a, job_id, GOOD)
        chain.warp(commit_deadline + 1)
        chain.devnet.mine()  # past the commit deadline: Revealing, though nothing is stored yet
        pending, committed, revealed = a, 1, 0
    else:
        commit(a, job_id, GOOD)
        commit(b, job_id, GOOD)
        chain.warp(commit_deadline + 1)
        reveal(a, job_id, GOOD)
        pending, committed, revealed = b, 2, 1
    reveal_deadline = chain.market.job(job_id).deadline
    if variant != "all-committed":
        assert reveal_deadline == commit_deadline + WINDOW
    assert chain.market.job(job_id).status is JobStatus.REVEALING
    at = reveal_deadline + offset
    late_reveal = partial(reveal, pending, job_id, GOOD)
    finalize = partial(chain.outsider.finalize, job_id)

    outcome = race(chain, at, late_reveal, finalize)
    if offset <= 0:  # reveals are accepted up to and including the reveal deadline
        assert outcome.action.ok
        expect(
            outcome.closer,
            RevealsPending,
            jobId=job_id,
            committed=committed,
            revealed=revealed,
            revealDeadline=reveal_deadline,
        )
        assert outcome.action_after_closer.ok
        # Revealed in time, then finalized in the same instant: the revealer is not slashed.
        revealed_outcome, finalized = at_instant(chain, at, late_reveal, finalize)
        assert revealed_outcome.ok
        assert finalized.ok
        assert pending.address not in finalized.slashed()
    else:  # after it, a pending reveal is forfeit and anyone can settle
        expect(outcome.action, DeadlinePassed, jobId=job_id, deadline=reveal_deadline)
        assert outcome.closer.ok
        assert pending.address in outcome.closer.slashed()
        settled = outcome.closer.result
        assert settled is not None
        final_status = JobStatus(settled.event("JobFinalized")["outcome"])
        expect(
            outcome.action_after_closer,
            JobNotInState,
            jobId=job_id,
            current=final_status,
            expected=JobStatus.REVEALING,
        )


# ───────────────────────────── single replica: submit vs finalize ─────────────────────────────


@pytest.mark.parametrize("offset", OFFSETS)
def test_submit_vs_finalize_around_the_commit_deadline(chain: Chain, offset: int) -> None:
    provider = chain.providers[0]
    job_id = post(chain, run_timeout=WINDOW)
    provider.claim(job_id)
    deadline = chain.market.job(job_id).deadline
    at = deadline + offset
    submit = partial(provider.submit_result, job_id, GOOD)
    finalize = partial(chain.outsider.finalize, job_id)

    # Paying the provider (submit) and slashing it for not delivering (finalize) exclude each other.
    outcome = race(chain, at, submit, finalize)
    if offset <= 0:
        assert outcome.action.result is not None
        assert outcome.action.result.event("JobFinalized")["outcome"] == JobStatus.COMPLETED
        expect(
            outcome.closer,
            JobNotInState,
            jobId=job_id,
            current=JobStatus.RUNNING,
            expected=JobStatus.REVEALING,
        )
        assert outcome.action_after_closer.ok
        _, finalize_after_submit = at_instant(chain, at, submit, finalize)
        expect(
            finalize_after_submit,
            JobNotInState,
            jobId=job_id,
            current=JobStatus.COMPLETED,
            expected=JobStatus.REVEALING,
        )
    else:
        expect(outcome.action, DeadlinePassed, jobId=job_id, deadline=deadline)
        assert outcome.closer.result is not None
        assert outcome.closer.result.event("JobFinalized")["outcome"] == JobStatus.FAILED
        assert outcome.closer.slashed() == [provider.address]
        expect(
            outcome.action_after_closer,
            JobNotInState,
            jobId=job_id,
            current=JobStatus.FAILED,
            expected=JobStatus.RUNNING,
        )


# ───────────────────────────── unbonding: withdrawStake ─────────────────────────────


@pytest.mark.parametrize("offset", OFFSETS)
def test_withdraw_stake_around_unbonding_ready_at(chain: Chain, offset: int) -> None:
    provider = chain.providers[0]
    ready_at = provider.request_unstake(ETHER).event("UnstakeRequested")["readyAt"]
    assert chain.market.provider(provider.address).unbonding_ready_at == ready_at
    at = ready_at + offset
    withdraw = provider.withdraw_stake
    balance = chain.eth_balance(provider.address)

    # The unbonding stake leaves once: never twice in one instant, never before readyAt.
    first, second = at_instant(chain, at, withdraw, withdraw)
    if offset < 0:  # withdrawable at readyAt, not one second before
        expect(first, UnbondingNotReady, readyAt=ready_at)
        expect(second, UnbondingNotReady, readyAt=ready_at)
    else:
        assert first.result is not None
        assert first.result.event("StakeWithdrawn")["amount"] == ETHER
        expect(second, NothingToWithdraw, account=provider.address, token=ETH)

    # Rewound: the stake is still unbonding and nothing was paid.
    info = chain.market.provider(provider.address)
    assert (info.free_stake, info.unbonding, info.unbonding_ready_at) == (
        PROVIDER_STAKE - ETHER,
        ETHER,
        ready_at,
    )
    assert chain.eth_balance(provider.address) == balance


# ───────────────────── bug: deadlines that do not fit in uint32 ─────────────────────
#
# postJob only checks that the claim deadline fits in 32 bits. A run timeout or reveal window of
# up to 2**32-1 seconds is accepted, and the later deadlines computed from it overflow: the last
# claim or the last commit reverts with InvalidWindow, and a reveal after the commit deadline
# truncates the stored reveal deadline, ending the reveal phase at once. Each test accepts either
# fix: rejecting such a job at posting, or honouring the deadline the job was posted with.


@pytest.mark.parametrize("window", ["claim_window", "run_timeout", "reveal_window"])
def test_windows_reaching_past_2106_are_rejected_at_posting(chain: Chain, window: str) -> None:
    # Deadlines are 32-bit timestamps: a job whose last possible deadline would not fit is refused
    # up front, instead of wrapping (or reverting) at a later claim, commit or reveal. The windows'
    # bounds keep that for the last hours before 2106.
    chain.warp(UINT32_MAX - 3_600)
    windows = {"claim_window": 60, "run_timeout": 60, "reveal_window": 60, window: 7_200}
    with pytest.raises(InvalidWindow):
        post(
            chain,
            claim_window=windows["claim_window"],
            run_timeout=windows["run_timeout"],
            reveal_window=windows["reveal_window"],
        )


def test_windows_ending_exactly_at_the_32_bit_limit_run_to_completion(chain: Chain) -> None:
    a, b = chain.providers[:2]
    claim_window, run_timeout, reveal_window = 1000, 1000, 86_400
    posted_at = UINT32_MAX - claim_window - run_timeout - reveal_window
    chain.warp(posted_at)
    job_id = post(
        chain, replicas=2, claim_window=claim_window, run_timeout=run_timeout, reveal_window=reveal_window
    )
    claim_deadline = posted_at + claim_window
    a.claim(job_id)
    chain.warp(claim_deadline)
    b.claim(job_id)  # the last claim, at the claim deadline itself
    commit_deadline = claim_deadline + run_timeout
    assert chain.market.job(job_id).deadline == commit_deadline
    chain.warp(commit_deadline)
    commit(a, job_id, GOOD)  # b never commits: the reveal phase runs to the 32-bit limit

    chain.warp(UINT32_MAX)
    reveal(a, job_id, GOOD)
    assert chain.market.job(job_id).deadline == UINT32_MAX
    settled = chain.outsider.finalize(job_id)  # every committer revealed: no need to wait
    assert settled.event("JobFinalized")["outcome"] == JobStatus.FAILED  # one reveal of two is no quorum
    assert [event["provider"] for event in settled.named("Slashed")] == [b.address]
    assert chain.market.provider(a.address).locked_stake == 0
