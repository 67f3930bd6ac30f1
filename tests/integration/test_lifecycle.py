"""The job lifecycle end to end on anvil: who is paid, refunded and slashed, in ETH and in ERC-20."""

from __future__ import annotations

import pytest

from marketplace.protocol.status import AssignmentStatus, JobStatus
from marketplace.protocol.views import ETH
from tests.helpers import (
    ETHER,
    FEE_BPS,
    PROVIDER_STAKE,
    Chain,
    commit,
    post,
    result_hash,
    reveal,
)

FEE = ETHER * FEE_BPS // 10_000
GOOD = result_hash("good")
BAD = result_hash("bad")


def credits_of(chain: Chain, token: str) -> dict[str, int]:
    accounts = [chain.requester.address, chain.treasury] + [p.address for p in chain.providers]
    return {account: chain.market.credits(account, token) for account in accounts}


@pytest.mark.parametrize("token_name", ["eth", "token"])
def test_single_replica_is_paid_on_submit(chain: Chain, token_name: str) -> None:
    token = ETH if token_name == "eth" else chain.token.address
    provider = chain.providers[0]
    job_id = post(chain, token=token)
    assert chain.market.provider(provider.address).locked_stake == 0

    claimed = provider.claim(job_id)
    assert claimed.event("JobClaimed")["slot"] == 0
    assert claimed.event("JobStarted")["jobId"] == job_id
    assert chain.market.provider(provider.address).locked_stake == ETHER

    settled = provider.submit_result(job_id, GOOD)
    finalized = settled.event("JobFinalized")
    assert finalized["outcome"] == JobStatus.COMPLETED
    assert finalized["resultHash"] == GOOD
    assert finalized["winners"] == [provider.address]
    assert settled.event("ResultRevealed")["resultHash"] == GOOD

    job = chain.market.job(job_id)
    assert job.status is JobStatus.COMPLETED
    assert (job.commits, job.reveals) == (1, 1)
    assert chain.market.assignment(job_id, provider.address).status is AssignmentStatus.REVEALED
    info = chain.market.provider(provider.address)
    assert (info.free_stake, info.locked_stake) == (PROVIDER_STAKE, 0)
    assert chain.market.credits(provider.address, token) == ETHER - FEE
    assert chain.market.credits(chain.treasury, token) == FEE
    assert chain.market.credits(chain.requester.address, token) == 0


def test_withdraw_pays_eth_credit_once(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain)
    provider.claim(job_id)
    provider.submit_result(job_id, GOOD)

    before = chain.eth_balance(provider.address)
    result = provider.withdraw(ETH)
    gas_cost = result.gas_used * int(result.receipt["effectiveGasPrice"])
    assert chain.eth_balance(provider.address) == before + ETHER - FEE - gas_cost
    assert result.event("Withdrawn")["amount"] == ETHER - FEE
    assert chain.market.credits(provider.address, ETH) == 0


def test_withdraw_pays_token_credit(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, token=chain.token.address)
    provider.claim(job_id)
    provider.submit_result(job_id, GOOD)
    provider.withdraw(chain.token.address)
    assert chain.token_balance(chain.token, provider.address) == ETHER - FEE


@pytest.mark.parametrize("token_name", ["eth", "token"])
def test_three_replicas_majority_paid_and_liar_slashed(chain: Chain, token_name: str) -> None:
    token = ETH if token_name == "eth" else chain.token.address
    honest, liar = chain.providers[:2], chain.providers[2]
    job_id = post(chain, replicas=3, token=token)
    for provider in (*honest, liar):
        provider.claim(job_id)
    assert chain.market.job(job_id).status is JobStatus.RUNNING

    for provider in honest:
        commit(provider, job_id, GOOD)
    commit(liar, job_id, BAD)
    assert chain.market.job(job_id).status is JobStatus.REVEALING
    for provider in honest:
        reveal(provider, job_id, GOOD)
    reveal(liar, job_id, BAD)

    settled = chain.outsider.finalize(job_id)
    finalized = settled.event("JobFinalized")
    assert finalized["outcome"] == JobStatus.COMPLETED
    assert finalized["resultHash"] == GOOD
    assert finalized["winners"] == [p.address for p in honest]
    slash = settled.event("Slashed")
    assert (slash["provider"], slash["amount"]) == (liar.address, ETHER)

    # Rewards in the job's token; the liar's collateral (ETH stake) goes to the treasury: nobody who
    # takes part in a job gains from a slash.
    for provider in honest:
        assert chain.market.credits(provider.address, token) == ETHER - FEE
        assert chain.market.credits(provider.address, ETH) == (ETHER - FEE if token == ETH else 0)
        assert chain.market.provider(provider.address).free_stake == PROVIDER_STAKE
    liar_info = chain.market.provider(liar.address)
    assert (liar_info.free_stake, liar_info.locked_stake) == (PROVIDER_STAKE - ETHER, 0)
    assert chain.market.credits(liar.address, token) == 0
    assert chain.market.credits(chain.treasury, token) == 2 * FEE + (ETHER if token == ETH else 0)
    if token != ETH:
        assert chain.market.credits(chain.treasury, ETH) == ETHER
    assert chain.market.credits(chain.requester.address, token) == ETHER  # the unpaid third reward


def test_three_replicas_non_committer_slashed_after_commit_deadline(chain: Chain) -> None:
    a, b, idle = chain.providers[:3]
    job_id = post(chain, replicas=3, token=chain.token.address, run_timeout=600, reveal_window=600)
    for provider in (a, b, idle):
        provider.claim(job_id)
    commit(a, job_id, GOOD)
    commit(b, job_id, GOOD)
    with pytest.raises(Exception, match="JobNotInState"):
        reveal(a, job_id, GOOD)  # the commit phase is still open for `idle`

    chain.sleep(601)
    assert chain.market.job(job_id).status is JobStatus.REVEALING
    reveal(a, job_id, GOOD)
    reveal(b, job_id, GOOD)
    settled = a.finalize(job_id)
    assert settled.event("JobFinalized")["outcome"] == JobStatus.COMPLETED
    assert [e["provider"] for e in settled.named("Slashed")] == [idle.address]
    assert chain.market.provider(idle.address).free_stake == PROVIDER_STAKE - ETHER
    assert chain.market.credits(a.address, ETH) + chain.market.credits(b.address, ETH) == 0
    assert chain.market.credits(chain.treasury, ETH) == ETHER  # the idle provider's collateral


def test_no_quorum_fails_refunds_requester_and_returns_collateral(chain: Chain) -> None:
    providers = chain.providers[:3]
    job_id = post(chain, replicas=3)
    for provider in providers:
        provider.claim(job_id)
    for index, provider in enumerate(providers):
        commit(provider, job_id, result_hash(f"answer-{index}"))
    for index, provider in enumerate(providers):
        reveal(provider, job_id, result_hash(f"answer-{index}"))

    settled = chain.outsider.finalize(job_id)
    finalized = settled.event("JobFinalized")
    assert finalized["outcome"] == JobStatus.FAILED
    assert finalized["winners"] == []
    assert settled.named("Slashed") == []
    assert chain.market.credits(chain.requester.address, ETH) == 3 * ETHER
    for provider in providers:
        assert chain.market.provider(provider.address).free_stake == PROVIDER_STAKE
        assert chain.market.credits(provider.address, ETH) == 0
    assert chain.market.credits(chain.treasury, ETH) == 0


def test_failed_job_slashes_non_revealers_to_the_treasury(chain: Chain) -> None:
    a, b, silent = chain.providers[:3]
    job_id = post(chain, replicas=3, token=chain.token.address, reveal_window=300)
    for provider in (a, b, silent):
        provider.claim(job_id)
    commit(a, job_id, GOOD)
    commit(b, job_id, BAD)
    commit(silent, job_id, GOOD)
    reveal(a, job_id, GOOD)
    reveal(b, job_id, BAD)
    chain.sleep(301)

    settled = chain.outsider.finalize(job_id)
    assert settled.event("JobFinalized")["outcome"] == JobStatus.FAILED
    assert [e["provider"] for e in settled.named("Slashed")] == [silent.address]
    assert chain.market.credits(chain.requester.address, chain.token.address) == 3 * ETHER
    assert chain.market.credits(chain.requester.address, ETH) == 0
    assert chain.market.credits(chain.treasury, ETH) == ETHER  # the slashed collateral
    for provider in (a, b):
        assert chain.market.provider(provider.address).free_stake == PROVIDER_STAKE


def test_nobody_commits_everyone_slashed_job_failed(chain: Chain) -> None:
    job_id = post(chain, replicas=2, run_timeout=100)
    for provider in chain.providers[:2]:
        provider.claim(job_id)
    chain.sleep(101)
    settled = chain.outsider.finalize(job_id)  # no committer left to wait for
    assert settled.event("JobFinalized")["outcome"] == JobStatus.FAILED
    assert len(settled.named("Slashed")) == 2
    assert chain.market.credits(chain.requester.address, ETH) == 2 * ETHER  # the escrow, refunded
    assert chain.market.credits(chain.treasury, ETH) == 2 * ETHER  # both collaterals


def test_single_replica_commit_reveal_path_also_settles(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain)
    provider.claim(job_id)
    commit(provider, job_id, GOOD)
    reveal(provider, job_id, GOOD)
    assert provider.finalize(job_id).event("JobFinalized")["outcome"] == JobStatus.COMPLETED
    assert chain.market.credits(provider.address, ETH) == ETHER - FEE


def test_cancel_by_requester_before_any_claim(chain: Chain) -> None:
    job_id = post(chain, replicas=2, token=chain.token.address)
    result = chain.requester.cancel(job_id)
    assert result.event("JobCancelled")["jobId"] == job_id
    assert chain.market.job(job_id).status is JobStatus.CANCELLED
    assert chain.market.credits(chain.requester.address, chain.token.address) == 2 * ETHER
    chain.requester.withdraw(chain.token.address)
    assert chain.market.credits(chain.requester.address, chain.token.address) == 0


def test_cancel_by_slot_holder_after_claim_window_frees_collateral(chain: Chain) -> None:
    holder = chain.providers[0]
    job_id = post(chain, replicas=3, claim_window=100)
    holder.claim(job_id)
    assert chain.market.provider(holder.address).locked_stake == ETHER
    chain.sleep(101)
    holder.cancel(job_id)
    assert chain.market.provider(holder.address).locked_stake == 0
    assert chain.market.provider(holder.address).free_stake == PROVIDER_STAKE
    assert chain.market.credits(chain.requester.address, ETH) == 3 * ETHER


def test_fee_is_fixed_when_the_job_is_posted(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain)
    chain.owner.send(chain.market.call("setFee", 1000))
    provider.claim(job_id)
    provider.submit_result(job_id, GOOD)
    assert chain.market.credits(provider.address, ETH) == ETHER - FEE
    assert chain.market.job(post(chain)).fee_bps == 1000


def test_unstake_waits_for_the_unbonding_period(chain: Chain) -> None:
    provider = chain.providers[0]
    requested = provider.request_unstake(ETHER)
    ready_at = requested.event("UnstakeRequested")["readyAt"]
    info = chain.market.provider(provider.address)
    assert (info.free_stake, info.unbonding, info.unbonding_ready_at) == (
        PROVIDER_STAKE - ETHER,
        ETHER,
        ready_at,
    )

    before = chain.eth_balance(provider.address)
    chain.warp(ready_at)
    result = provider.withdraw_stake()
    assert result.event("StakeWithdrawn")["amount"] == ETHER
    gas_cost = result.gas_used * int(result.receipt["effectiveGasPrice"])
    assert chain.eth_balance(provider.address) == before + ETHER - gas_cost
    assert chain.market.provider(provider.address).unbonding == 0


def test_batch_forms_settle_many_jobs(chain: Chain) -> None:
    from marketplace.protocol.views import JobParams

    provider = chain.providers[0]
    params = [JobParams(spec_hash=bytes([i]) * 32, reward_per_replica=ETHER) for i in range(1, 6)]
    job_ids, _ = chain.requester.post_jobs(params)
    assert job_ids == list(range(job_ids[0], job_ids[0] + 5))
    claimed = provider.claim_many(job_ids)
    assert len(claimed.named("JobStarted")) == 5
    settled = provider.submit_results(job_ids, [GOOD] * 5)
    assert len(settled.named("JobFinalized")) == 5
    assert chain.market.credits(provider.address, ETH) == 5 * (ETHER - FEE)


def test_batch_claim_skips_jobs_taken_by_a_faster_provider(chain: Chain) -> None:
    fast, slow = chain.providers[:2]
    first, second = post(chain), post(chain)
    fast.claim(first)
    result = slow.claim_many([first, second])
    skipped = result.event("BatchItemSkipped")
    assert skipped["jobId"] == first
    assert skipped["reason"] == bytes.fromhex(
        chain.w3.keccak(text="JobNotInState(uint256,uint8,uint8)")[:4].hex()
    )
    assert [e["jobId"] for e in result.named("JobClaimed")] == [second]


def test_batch_commit_reveal_and_finalize(chain: Chain) -> None:
    from marketplace.protocol.hashing import commitment
    from tests.helpers import salt_for

    providers = chain.providers[:3]
    job_ids = [post(chain, replicas=3) for _ in range(3)]
    for provider in providers:
        provider.claim_many(job_ids)
    for provider in providers:
        provider.commit_many(
            job_ids, [commitment(j, provider.address, GOOD, salt_for(provider, j)) for j in job_ids]
        )
    for provider in providers:
        provider.reveal_many(job_ids, [GOOD] * 3, [salt_for(provider, j) for j in job_ids])
    providers[0].finalize(job_ids[0])  # someone else got there first
    settled = providers[1].finalize_many(job_ids)
    assert [e["jobId"] for e in settled.named("BatchItemSkipped")] == [job_ids[0]]
    assert len(settled.named("JobFinalized")) == 2
    for job_id in job_ids:
        assert chain.market.job(job_id).status is JobStatus.COMPLETED
