"""Adversarial tests on anvil: re-entrancy, ETH-rejecting receivers, copied commitments, replays,
double actions, stake locking, fee-on-transfer escrow, griefing, and batch-form edge cases.

Every test checks what an attack would have to change (balances, credits, stake, job and slot
states, emitted events) and not only that a call reverted; every failing call is expected as the
named contract error, with its fields. A reverted call never gets mined (gas estimation raises the
decoded error first), so balances before and after it compare exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from web3 import Web3
from web3.contract import Contract

from marketplace.chain.deploy import deploy_contract
from marketplace.chain.market import MarketActor, TxResult, bind
from marketplace.chain.sender import Call
from marketplace.protocol.hashing import commitment
from marketplace.protocol.reverts import (
    AlreadyClaimed,
    AssignmentNotInState,
    CancelNotAllowed,
    CommitmentMismatch,
    EnforcedPause,
    EtherRejected,
    InsufficientFreeStake,
    JobNotInState,
    LengthMismatch,
    NotAssigned,
    NotEligible,
    NothingToWithdraw,
    OwnableUnauthorizedAccount,
    ReentrancyGuardReentrantCall,
    RevealsPending,
    UnbondingNotReady,
    decode_revert,
)
from marketplace.protocol.status import AssignmentStatus, JobStatus
from marketplace.protocol.views import ETH, JobParams
from tests.helpers import (
    ETHER,
    FEE_BPS,
    PROVIDER_STAKE,
    UNBONDING,
    Chain,
    commit,
    post,
    result_hash,
    reveal,
    salt_for,
)

FEE = ETHER * FEE_BPS // 10_000
GOOD = result_hash("good")
BAD = result_hash("bad")
LIVE = (JobStatus.OPEN, JobStatus.RUNNING, JobStatus.REVEALING)
FOT_TOKEN_FEE_BPS = 100  # FeeOnTransferToken deployed with 1% burned per transfer


def selector(signature: str) -> bytes:
    return bytes(Web3.keccak(text=signature)[:4])


# ───────────────────────────── helpers ─────────────────────────────


@dataclass
class Proxy:
    """A test contract (ReentrantAttacker or EtherRejecter) driven by `operator` via execute(bytes)."""

    chain: Chain
    operator: MarketActor
    contract: Contract

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def run(self, call: Call) -> TxResult:
        """Makes the proxy call the market with `call`'s calldata and ETH value."""
        return self.chain.send(self.operator, self.contract, "execute", bytes(call.data), value=call.value)

    def market(self, function: str, *args: object, value: int = 0) -> TxResult:
        return self.run(self.chain.market.call(function, *args, value=value))

    def post(self, *, replicas: int = 1, reward: int = ETHER, collateral: int = ETHER) -> int:
        params = JobParams(
            spec_hash=bytes(32),
            reward_per_replica=reward,
            replicas=replicas,
            collateral_per_replica=collateral,
        )
        result = self.market("postJob", params.as_tuple(), value=params.escrow)
        return int(result.event("JobPosted")["jobId"])

    def view_int(self, function: str) -> int:
        return int(getattr(self.contract.functions, function)().call())

    def last_reentry_error(self) -> bytes:
        return bytes(self.contract.functions.lastReentryError().call())


def deploy_proxy(chain: Chain, name: str, operator: MarketActor | None = None) -> Proxy:
    operator = operator or chain.outsider
    address, _ = deploy_contract(operator.sender, name, chain.market.address)
    return Proxy(chain, operator, bind(chain.w3, name, address))


def gas_cost(result: TxResult) -> int:
    return result.gas_used * int(result.receipt["effectiveGasPrice"])


def sleep_past(chain: Chain, deadline: int) -> None:
    """Mines a block strictly after `deadline`."""
    chain.sleep(max(deadline - chain.now(), 0) + 1)


def all_accounts(chain: Chain, extra: Iterable[str] = ()) -> list[str]:
    return [account.address for account in chain.devnet.accounts] + list(extra)


def market_holds(chain: Chain, token: str) -> int:
    if token == ETH:
        return chain.eth_balance(chain.market.address)
    return chain.token_balance(bind(chain.w3, "TestToken", token), chain.market.address)


def liabilities(chain: Chain, token: str, extra: Iterable[str] = ()) -> int:
    """What the market owes in `token`: live escrow, every credit and (ETH is the stake token) stake."""
    accounts = all_accounts(chain, extra)
    owed = sum(chain.market.credits(account, token) for account in accounts)
    for job_id in range(1, chain.market.job_count() + 1):
        job = chain.market.job(job_id)
        if job.token.lower() == token.lower() and job.status in LIVE:
            owed += job.replicas * job.reward_per_replica
    if token == ETH:
        for account in accounts:
            info = chain.market.provider(account)
            owed += info.free_stake + info.locked_stake + info.unbonding
    return owed


def assert_solvent(chain: Chain, token: str = ETH, extra: Iterable[str] = ()) -> None:
    """The market holds exactly what it owes: nothing was paid twice and nothing leaked."""
    assert market_holds(chain, token) == liabilities(chain, token, extra)


def credits_of(chain: Chain, accounts: Iterable[str], token: str = ETH) -> dict[str, int]:
    return {account: chain.market.credits(account, token) for account in accounts}


def run_three_replicas(chain: Chain, job_id: int, results: list[bytes]) -> None:
    """Providers 0..2 claim, commit and reveal `results` on a three-replica job."""
    providers = chain.providers[:3]
    for provider in providers:
        provider.claim(job_id)
    for provider, result in zip(providers, results, strict=True):
        commit(provider, job_id, result)
    for provider, result in zip(providers, results, strict=True):
        reveal(provider, job_id, result)


# ───────────────────────────── re-entrancy ─────────────────────────────


def test_reentrant_withdraw_is_paid_exactly_once(chain: Chain) -> None:
    attacker = deploy_proxy(chain, "ReentrantAttacker")
    job_id = attacker.post(replicas=2)
    attacker.market("cancelJob", job_id)
    credit = chain.market.credits(attacker.address, ETH)
    assert credit == 2 * ETHER

    withdraw_call = chain.market.call("withdraw", ETH)
    chain.send(chain.outsider, attacker.contract, "setReentryCall", bytes(withdraw_call.data))
    market_before = chain.eth_balance(chain.market.address)
    attacker_before = chain.eth_balance(attacker.address)

    result = attacker.run(withdraw_call)

    assert [(e["account"], e["amount"]) for e in result.named("Withdrawn")] == [(attacker.address, credit)]
    assert attacker.view_int("reentryAttempts") == 1
    assert attacker.view_int("reentrySuccesses") == 0
    last_error = attacker.last_reentry_error()
    assert last_error == selector("ReentrancyGuardReentrantCall()")
    assert isinstance(decode_revert(last_error), ReentrancyGuardReentrantCall)
    assert chain.eth_balance(attacker.address) == attacker_before + credit
    assert chain.eth_balance(chain.market.address) == market_before - credit
    assert chain.market.credits(attacker.address, ETH) == 0
    with pytest.raises(NothingToWithdraw) as caught:
        attacker.run(withdraw_call)
    assert (caught.value.account, caught.value.token) == (attacker.address, ETH)
    assert chain.eth_balance(attacker.address) == attacker_before + credit
    assert_solvent(chain, extra=[attacker.address])


def test_attacker_hook_does_reenter_when_unguarded(chain: Chain) -> None:
    """Control for the re-entrancy tests: the hook really calls back in (a view succeeds)."""
    attacker = deploy_proxy(chain, "ReentrantAttacker")
    attacker.market("cancelJob", attacker.post())
    view_call = chain.market.call("credits", attacker.address, ETH)
    chain.send(chain.outsider, attacker.contract, "setReentryCall", bytes(view_call.data))
    attacker.market("withdraw", ETH)
    assert (attacker.view_int("reentryAttempts"), attacker.view_int("reentrySuccesses")) == (1, 1)


@pytest.mark.parametrize("reentry", ["finalizeJob", "cancelJob", "withdrawStake"])
def test_reentrant_settlement_during_withdraw_is_rejected(chain: Chain, reentry: str) -> None:
    attacker = deploy_proxy(chain, "ReentrantAttacker")
    attacker.market("cancelJob", attacker.post())
    credit = chain.market.credits(attacker.address, ETH)
    assert credit == ETHER

    # What the callback tries to settle a second time, inside the first payout.
    if reentry == "finalizeJob":
        target = post(chain, replicas=3)
        run_three_replicas(chain, target, [GOOD, GOOD, GOOD])  # finalizable right now
        reentry_call = chain.market.call("finalizeJob", target)
    elif reentry == "cancelJob":
        target = attacker.post(replicas=3)  # the attacker's own job, cancellable by it
        reentry_call = chain.market.call("cancelJob", target)
    else:
        target = 0
        attacker.market("registerProvider", "ipfs://attacker")
        attacker.market("stake", ETHER, value=ETHER)
        attacker.market("requestUnstake", ETHER)
        sleep_past(chain, chain.market.provider(attacker.address).unbonding_ready_at)
        reentry_call = chain.market.call("withdrawStake")
    chain.send(chain.outsider, attacker.contract, "setReentryCall", bytes(reentry_call.data))
    watched = [attacker.address, chain.treasury, chain.requester.address] + [
        p.address for p in chain.providers
    ]
    credits_before = credits_of(chain, watched)
    attacker_before = chain.eth_balance(attacker.address)
    market_before = chain.eth_balance(chain.market.address)

    result = attacker.market("withdraw", ETH)

    assert attacker.view_int("reentryAttempts") == 1
    assert attacker.view_int("reentrySuccesses") == 0
    assert attacker.last_reentry_error() == selector("ReentrancyGuardReentrantCall()")
    assert (
        result.named("JobFinalized") == result.named("JobCancelled") == result.named("StakeWithdrawn") == []
    )
    assert chain.eth_balance(attacker.address) == attacker_before + credit
    assert chain.eth_balance(chain.market.address) == market_before - credit
    assert credits_of(chain, watched) == {**credits_before, attacker.address: 0}
    assert_solvent(chain, extra=[attacker.address])

    # The re-entered action was untouched and still happens exactly once, done properly.
    chain.send(chain.outsider, attacker.contract, "setReentryCall", b"")
    if reentry == "finalizeJob":
        assert chain.market.job(target).status is JobStatus.REVEALING
        chain.outsider.finalize(target)
        for provider in chain.providers[:3]:
            assert chain.market.credits(provider.address, ETH) == ETHER - FEE
        with pytest.raises(JobNotInState):
            chain.outsider.finalize(target)
    elif reentry == "cancelJob":
        assert chain.market.job(target).status is JobStatus.OPEN
        attacker.market("cancelJob", target)
        assert chain.market.credits(attacker.address, ETH) == 3 * ETHER
    else:
        assert chain.market.provider(attacker.address).unbonding == ETHER
        before = chain.eth_balance(attacker.address)
        attacker.market("withdrawStake")
        assert chain.eth_balance(attacker.address) == before + ETHER
        assert chain.market.provider(attacker.address).unbonding == 0
    assert_solvent(chain, extra=[attacker.address])


# ───────────────────────────── ETH-rejecting receivers ─────────────────────────────


def test_ether_rejecting_requester_blocks_only_itself(chain: Chain) -> None:
    rejecter = deploy_proxy(chain, "EtherRejecter")
    job_id = rejecter.post(replicas=3)
    honest, liar = chain.providers[:2], chain.providers[2]
    run_three_replicas(chain, job_id, [GOOD, GOOD, BAD])

    settled = chain.outsider.finalize(job_id)
    finalized = settled.event("JobFinalized")
    assert finalized["outcome"] == JobStatus.COMPLETED
    assert finalized["winners"] == [p.address for p in honest]
    assert settled.event("Slashed")["provider"] == liar.address
    assert chain.market.credits(rejecter.address, ETH) == ETHER  # the liar's unpaid reward

    for provider in honest:
        credit = chain.market.credits(provider.address, ETH)
        assert credit == ETHER - FEE
        before = chain.eth_balance(provider.address)
        result = provider.withdraw(ETH)
        assert chain.eth_balance(provider.address) == before + credit - gas_cost(result)
    treasury = chain.actor(1)
    before = chain.eth_balance(treasury.address)
    result = treasury.withdraw(ETH)
    assert chain.eth_balance(treasury.address) == before + 2 * FEE + ETHER - gas_cost(result)  # fees, slash

    rejecter_before = chain.eth_balance(rejecter.address)
    with pytest.raises(EtherRejected):
        rejecter.market("withdraw", ETH)
    assert chain.market.credits(rejecter.address, ETH) == ETHER
    assert chain.eth_balance(rejecter.address) == rejecter_before
    assert_solvent(chain, extra=[rejecter.address])


def test_ether_rejecting_provider_blocks_only_itself(chain: Chain) -> None:
    rejecter = deploy_proxy(chain, "EtherRejecter")
    rejecter.market("registerProvider", "ipfs://rejecter")
    rejecter.market("stake", 10 * ETHER, value=10 * ETHER)
    assert chain.market.provider(rejecter.address).free_stake == 10 * ETHER

    job_id = post(chain, replicas=3)
    others = chain.providers[:2]
    chain.sleep(1800)  # half the claim window: every provider that had stake may claim
    rejecter.market("claimJob", job_id)
    for provider in others:
        provider.claim(job_id)
    salt = Web3.keccak(text="rejecter-salt")
    rejecter.market("commitResult", job_id, commitment(job_id, rejecter.address, GOOD, salt))
    for provider in others:
        commit(provider, job_id, GOOD)
    rejecter.market("revealResult", job_id, GOOD, salt)
    for provider in others:
        reveal(provider, job_id, GOOD)

    settled = chain.outsider.finalize(job_id)
    assert settled.event("JobFinalized")["winners"] == [rejecter.address] + [p.address for p in others]
    assert chain.market.provider(rejecter.address).locked_stake == 0
    for provider in others:
        before = chain.eth_balance(provider.address)
        result = provider.withdraw(ETH)
        assert chain.eth_balance(provider.address) == before + ETHER - FEE - gas_cost(result)
        assert chain.market.credits(provider.address, ETH) == 0

    with pytest.raises(EtherRejected):
        rejecter.market("withdraw", ETH)
    assert chain.market.credits(rejecter.address, ETH) == ETHER - FEE

    # Its unbonded stake is stuck the same way, and stays owed to it.
    ready_at = rejecter.market("requestUnstake", 10 * ETHER).event("UnstakeRequested")["readyAt"]
    sleep_past(chain, ready_at)
    with pytest.raises(EtherRejected):
        rejecter.market("withdrawStake")
    assert chain.market.provider(rejecter.address).unbonding == 10 * ETHER
    assert chain.eth_balance(rejecter.address) == 0
    assert_solvent(chain, extra=[rejecter.address])


# ───────────────────────────── copied commitments and replays ─────────────────────────────


def test_copied_commitment_cannot_be_revealed_and_is_slashed(chain: Chain) -> None:
    a, copier, c = chain.providers[:3]
    collateral = 2 * ETHER
    job_id = post(chain, replicas=3, collateral=collateral)
    for provider in (a, copier, c):
        provider.claim(job_id)
    a_commitment = commit(a, job_id, GOOD).event("ResultCommitted")["commitment"]
    copier.commit(job_id, a_commitment)  # B copies A's commitment from the event
    commit(c, job_id, GOOD)
    assert chain.market.assignment(job_id, copier.address).commitment == a_commitment
    reveal(a, job_id, GOOD)  # A's (hash, salt) are now public too
    reveal(c, job_id, GOOD)

    with pytest.raises(CommitmentMismatch) as caught:
        copier.reveal(job_id, GOOD, salt_for(a, job_id))
    assert (caught.value.jobId, caught.value.provider) == (job_id, copier.address)
    assert chain.market.assignment(job_id, copier.address).status is AssignmentStatus.COMMITTED

    job = chain.market.job(job_id)
    with pytest.raises(RevealsPending) as pending:
        chain.outsider.finalize(job_id)
    assert (pending.value.committed, pending.value.revealed) == (3, 2)
    assert pending.value.revealDeadline == job.deadline
    sleep_past(chain, job.deadline)

    settled = chain.outsider.finalize(job_id)
    finalized = settled.event("JobFinalized")
    assert finalized["outcome"] == JobStatus.COMPLETED
    assert finalized["winners"] == [a.address, c.address]
    slashed = settled.event("Slashed")
    assert (slashed["provider"], slashed["jobId"], slashed["amount"]) == (copier.address, job_id, collateral)
    info = chain.market.provider(copier.address)
    assert (info.locked_stake, info.free_stake) == (0, PROVIDER_STAKE - collateral)
    assert chain.market.credits(copier.address, ETH) == 0
    for honest in (a, c):
        assert chain.market.credits(honest.address, ETH) == ETHER - FEE
        assert chain.market.provider(honest.address).free_stake == PROVIDER_STAKE
    assert chain.market.credits(chain.treasury, ETH) == 2 * FEE + collateral  # fees and the slash
    assert chain.market.credits(chain.requester.address, ETH) == ETHER
    assert_solvent(chain)


@pytest.mark.parametrize("job2_commitment", ["replayed", "own"])
def test_reveal_replayed_on_another_job_is_rejected(chain: Chain, job2_commitment: str) -> None:
    provider = chain.providers[0]
    job1, job2 = post(chain), post(chain)
    provider.claim_many([job1, job2])
    salt1 = salt_for(provider, job1)
    job1_commitment = commitment(job1, provider.address, GOOD, salt1)
    provider.commit(job1, job1_commitment)
    provider.reveal(job1, GOOD, salt1)  # (GOOD, salt1) is now public
    if job2_commitment == "replayed":
        provider.commit(job2, job1_commitment)  # the very same commitment bytes
    else:
        commit(provider, job2, GOOD)

    with pytest.raises(CommitmentMismatch) as caught:
        provider.reveal(job2, GOOD, salt1)
    assert (caught.value.jobId, caught.value.provider) == (job2, provider.address)
    assert chain.market.assignment(job2, provider.address).status is AssignmentStatus.COMMITTED
    assert chain.market.job(job2).reveals == 0
    provider.finalize(job1)
    assert chain.market.credits(provider.address, ETH) == ETHER - FEE  # job 1 only


# ───────────────────────────── double actions ─────────────────────────────


def test_double_claim_locks_collateral_once(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, replicas=2, collateral=3 * ETHER)
    provider.claim(job_id)
    with pytest.raises(AlreadyClaimed) as caught:
        provider.claim(job_id)
    assert (caught.value.jobId, caught.value.provider) == (job_id, provider.address)
    assert chain.market.job(job_id).claims == 1
    info = chain.market.provider(provider.address)
    assert (info.free_stake, info.locked_stake) == (PROVIDER_STAKE - 3 * ETHER, 3 * ETHER)


def test_double_commit_and_double_reveal_are_rejected(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, replicas=3)
    for p in chain.providers[:3]:
        p.claim(job_id)
    first = commit(provider, job_id, GOOD).event("ResultCommitted")["commitment"]
    with pytest.raises(AssignmentNotInState) as caught:
        provider.commit(job_id, commitment(job_id, provider.address, BAD, salt_for(provider, job_id)))
    assert (caught.value.current, caught.value.expected) == (
        AssignmentStatus.COMMITTED,
        AssignmentStatus.CLAIMED,
    )
    assert chain.market.job(job_id).commits == 1
    assert chain.market.assignment(job_id, provider.address).commitment == first

    for p in chain.providers[1:3]:
        commit(p, job_id, GOOD)
    reveal(provider, job_id, GOOD)
    with pytest.raises(AssignmentNotInState) as caught:
        reveal(provider, job_id, GOOD)
    assert (caught.value.current, caught.value.expected) == (
        AssignmentStatus.REVEALED,
        AssignmentStatus.COMMITTED,
    )
    assert (caught.value.jobId, caught.value.provider) == (job_id, provider.address)
    assert chain.market.job(job_id).reveals == 1
    assert chain.market.assignment(job_id, provider.address).result_hash == GOOD


def test_double_finalize_pays_once(chain: Chain) -> None:
    job_id = post(chain, replicas=3)
    run_three_replicas(chain, job_id, [GOOD, GOOD, BAD])
    chain.outsider.finalize(job_id)
    watched = all_accounts(chain)
    after_first = credits_of(chain, watched)
    with pytest.raises(JobNotInState) as caught:
        chain.providers[0].finalize(job_id)
    assert (caught.value.current, caught.value.expected) == (JobStatus.COMPLETED, JobStatus.REVEALING)
    assert credits_of(chain, watched) == after_first
    assert chain.market.provider(chain.providers[2].address).free_stake == PROVIDER_STAKE - ETHER
    assert_solvent(chain)


def test_double_submit_pays_once(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain)
    provider.claim(job_id)
    provider.submit_result(job_id, GOOD)
    with pytest.raises(JobNotInState) as caught:
        provider.submit_result(job_id, BAD)
    assert (caught.value.current, caught.value.expected) == (JobStatus.COMPLETED, JobStatus.RUNNING)
    assert chain.market.credits(provider.address, ETH) == ETHER - FEE
    assert chain.market.provider(provider.address).free_stake == PROVIDER_STAKE


def test_double_withdraw_pays_once(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain)
    provider.claim(job_id)
    provider.submit_result(job_id, GOOD)
    before = chain.eth_balance(provider.address)
    market_before = chain.eth_balance(chain.market.address)
    result = provider.withdraw(ETH)
    paid = chain.eth_balance(provider.address)
    assert paid == before + ETHER - FEE - gas_cost(result)
    with pytest.raises(NothingToWithdraw) as caught:
        provider.withdraw(ETH)
    assert (caught.value.account, caught.value.token) == (provider.address, ETH)
    assert chain.eth_balance(provider.address) == paid
    assert chain.eth_balance(chain.market.address) == market_before - (ETHER - FEE)
    assert_solvent(chain)


def test_double_cancel_refunds_once(chain: Chain) -> None:
    job_id = post(chain, replicas=2, token=chain.token.address)
    chain.requester.cancel(job_id)
    refunded = chain.market.credits(chain.requester.address, chain.token.address)
    assert refunded == 2 * ETHER
    with pytest.raises(JobNotInState) as caught:
        chain.requester.cancel(job_id)
    assert (caught.value.jobId, caught.value.current, caught.value.expected) == (
        job_id,
        JobStatus.CANCELLED,
        JobStatus.OPEN,
    )
    assert chain.market.credits(chain.requester.address, chain.token.address) == refunded
    assert_solvent(chain, chain.token.address)


# ───────────────────────────── stake locking and slashing ─────────────────────────────


def test_locked_stake_cannot_be_unstaked_and_unbonding_waits(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, replicas=2, collateral=60 * ETHER)
    provider.claim(job_id)

    with pytest.raises(InsufficientFreeStake) as caught:
        provider.request_unstake(50 * ETHER)
    assert (caught.value.provider, caught.value.needed, caught.value.free) == (
        provider.address,
        50 * ETHER,
        40 * ETHER,
    )
    info = chain.market.provider(provider.address)
    assert (info.free_stake, info.locked_stake, info.unbonding) == (40 * ETHER, 60 * ETHER, 0)

    ready_at = provider.request_unstake(40 * ETHER).event("UnstakeRequested")["readyAt"]
    before = chain.eth_balance(provider.address)
    with pytest.raises(UnbondingNotReady) as not_ready:
        provider.withdraw_stake()
    assert not_ready.value.readyAt == ready_at
    chain.sleep(UNBONDING - 600)
    with pytest.raises(UnbondingNotReady):
        provider.withdraw_stake()
    assert chain.eth_balance(provider.address) == before
    assert chain.market.provider(provider.address).unbonding == 40 * ETHER

    chain.warp(ready_at)
    result = provider.withdraw_stake()
    assert result.event("StakeWithdrawn")["amount"] == 40 * ETHER
    assert chain.eth_balance(provider.address) == before + 40 * ETHER - gas_cost(result)
    info = chain.market.provider(provider.address)
    assert (info.free_stake, info.locked_stake, info.unbonding) == (0, 60 * ETHER, 0)
    with pytest.raises(NothingToWithdraw):
        provider.withdraw_stake()
    assert_solvent(chain)


@pytest.mark.parametrize("collateral", [ETHER, PROVIDER_STAKE])
def test_slash_takes_exactly_the_locked_collateral(chain: Chain, collateral: int) -> None:
    liar = chain.providers[2]
    job_id = post(chain, replicas=3, collateral=collateral)
    run_three_replicas(chain, job_id, [GOOD, GOOD, BAD])
    assert chain.market.provider(liar.address).locked_stake == collateral

    settled = chain.outsider.finalize(job_id)
    assert [(e["provider"], e["amount"]) for e in settled.named("Slashed")] == [(liar.address, collateral)]
    info = chain.market.provider(liar.address)
    assert (info.free_stake, info.locked_stake) == (PROVIDER_STAKE - collateral, 0)
    for honest in chain.providers[:2]:
        assert chain.market.credits(honest.address, ETH) == ETHER - FEE  # a slash pays nobody of the job
    assert chain.market.credits(chain.treasury, ETH) == 2 * FEE + collateral
    if collateral == PROVIDER_STAKE:
        with pytest.raises(NotEligible):  # nothing bonded any more: the draw never picks it
            liar.claim(post(chain, reward=1, collateral=1))
    assert_solvent(chain)


def test_slash_on_one_job_keeps_other_jobs_collateral_locked(chain: Chain) -> None:
    target = chain.providers[0]
    collateral = 10 * ETHER
    job_ids = [post(chain, replicas=3, collateral=collateral) for _ in range(3)]
    for provider in chain.providers[:3]:
        provider.claim_many(job_ids)
    info = chain.market.provider(target.address)
    assert (info.free_stake, info.locked_stake) == (PROVIDER_STAKE - 3 * collateral, 3 * collateral)

    slash_job, *kept = job_ids
    for provider in chain.providers[:3]:
        commit(provider, slash_job, BAD if provider is target else GOOD)
    for provider in chain.providers[:3]:
        reveal(provider, slash_job, BAD if provider is target else GOOD)
    settled = chain.outsider.finalize(slash_job)
    assert [(e["provider"], e["jobId"], e["amount"]) for e in settled.named("Slashed")] == [
        (target.address, slash_job, collateral)
    ]
    info = chain.market.provider(target.address)
    assert (info.free_stake, info.locked_stake) == (PROVIDER_STAKE - 3 * collateral, 2 * collateral)
    with pytest.raises(InsufficientFreeStake):
        target.request_unstake(PROVIDER_STAKE - 3 * collateral + 1)

    for job_id in kept:
        for provider in chain.providers[:3]:
            commit(provider, job_id, GOOD)
        for provider in chain.providers[:3]:
            reveal(provider, job_id, GOOD)
        chain.outsider.finalize(job_id)
    info = chain.market.provider(target.address)
    assert (info.free_stake, info.locked_stake) == (PROVIDER_STAKE - collateral, 0)
    assert_solvent(chain)


# ───────────────────────────── fee-on-transfer token ─────────────────────────────


def fot_fee(amount: int) -> int:
    return amount * FOT_TOKEN_FEE_BPS // 10_000


def test_fee_on_transfer_escrows_what_arrived_and_settles_solvently(chain: Chain) -> None:
    fot = chain.fot
    token = fot.address
    replicas, asked = 3, ETHER + 34  # chosen so the received amount does not split evenly
    sent = replicas * asked
    received = sent - fot_fee(sent)
    reward, dust = divmod(received, replicas)
    assert dust != 0
    requester_before = chain.token_balance(fot, chain.requester.address)
    market_before = chain.token_balance(fot, chain.market.address)

    job_id, posted = chain.requester.post_job(
        JobParams(spec_hash=bytes(32), reward_per_replica=asked, replicas=replicas, token=token)
    )
    assert chain.token_balance(fot, chain.requester.address) == requester_before - sent
    assert chain.token_balance(fot, chain.market.address) == market_before + received
    assert posted.event("JobPosted")["rewardPerReplica"] == reward
    assert chain.market.job(job_id).reward_per_replica == reward
    credited = posted.event("Credited")
    assert (credited["account"], credited["token"], credited["amount"]) == (
        chain.requester.address,
        token,
        dust,
    )
    assert_solvent(chain, token)  # escrow (replicas * reward) + dust credit

    run_three_replicas(chain, job_id, [GOOD, GOOD, BAD])
    chain.outsider.finalize(job_id)
    fee = reward * FEE_BPS // 10_000
    for provider in chain.providers[:2]:
        assert chain.market.credits(provider.address, token) == reward - fee
    assert chain.market.credits(chain.providers[2].address, token) == 0
    assert chain.market.credits(chain.treasury, token) == 2 * fee
    assert chain.market.credits(chain.requester.address, token) == reward + dust
    assert chain.token_balance(fot, chain.market.address) == sum(
        credits_of(chain, all_accounts(chain), token).values()
    )
    assert_solvent(chain, token)

    for actor in [*chain.providers[:2], chain.actor(1), chain.requester]:
        credit = chain.market.credits(actor.address, token)
        holder_before = chain.token_balance(fot, actor.address)
        market_now = chain.token_balance(fot, chain.market.address)
        assert actor.withdraw(token).event("Withdrawn")["amount"] == credit
        assert chain.token_balance(fot, actor.address) == holder_before + credit - fot_fee(credit)
        assert chain.token_balance(fot, chain.market.address) == market_now - credit
        assert chain.market.credits(actor.address, token) == 0
    assert chain.token_balance(fot, chain.market.address) == market_before
    assert_solvent(chain, token)


def test_fee_on_transfer_cancel_refunds_everything_that_arrived(chain: Chain) -> None:
    token = chain.fot.address
    sent = 2 * (ETHER + 1)
    received = sent - fot_fee(sent)
    market_before = chain.token_balance(chain.fot, chain.market.address)
    job_id = post(chain, replicas=2, reward=ETHER + 1, token=token)
    chain.requester.cancel(job_id)
    assert chain.market.credits(chain.requester.address, token) == received
    assert_solvent(chain, token)
    chain.requester.withdraw(token)
    assert chain.token_balance(chain.fot, chain.market.address) == market_before
    assert chain.market.credits(chain.requester.address, token) == 0


# ───────────────────────────── griefing ─────────────────────────────


def test_outsider_cannot_cancel_someone_elses_job(chain: Chain) -> None:
    outsider, holder, stranger = chain.outsider, chain.providers[0], chain.providers[1]
    job_id = post(chain, replicas=2, claim_window=600)
    with pytest.raises(CancelNotAllowed) as caught:
        outsider.cancel(job_id)  # even before any claim
    assert (caught.value.jobId, caught.value.caller) == (job_id, outsider.address)

    holder.claim(job_id)
    with pytest.raises(CancelNotAllowed):
        chain.requester.cancel(job_id)  # claimed and still inside the claim window
    sleep_past(chain, chain.market.job(job_id).deadline)
    for caller in (outsider, stranger, chain.requester2):
        with pytest.raises(CancelNotAllowed) as caught:
            caller.cancel(job_id)
        assert caught.value.caller == caller.address
    assert chain.market.job(job_id).status is JobStatus.OPEN
    assert chain.market.provider(holder.address).locked_stake == ETHER
    assert chain.market.credits(chain.requester.address, ETH) == 0

    holder.cancel(job_id)  # a slot holder may, once the window is over
    assert chain.market.credits(chain.requester.address, ETH) == 2 * ETHER
    assert chain.market.credits(outsider.address, ETH) == 0
    assert chain.market.provider(holder.address).locked_stake == 0


def test_outsider_cannot_act_on_a_slot_it_does_not_hold(chain: Chain) -> None:
    outsider = chain.outsider
    single = post(chain)
    chain.providers[0].claim(single)
    with pytest.raises(NotAssigned) as caught:
        outsider.submit_result(single, BAD)
    assert (caught.value.jobId, caught.value.provider) == (single, outsider.address)

    job_id = post(chain, replicas=3)
    for provider in chain.providers[:3]:
        provider.claim(job_id)
    with pytest.raises(NotAssigned):
        outsider.commit(job_id, commitment(job_id, outsider.address, BAD, bytes(32)))
    with pytest.raises(NotAssigned):
        chain.providers[3].commit(job_id, commitment(job_id, chain.providers[3].address, BAD, bytes(32)))
    for provider in chain.providers[:3]:
        commit(provider, job_id, GOOD)
    with pytest.raises(NotAssigned) as caught:
        outsider.reveal(job_id, BAD, bytes(32))
    assert (caught.value.jobId, caught.value.provider) == (job_id, outsider.address)

    job = chain.market.job(job_id)
    assert (job.status, job.commits, job.reveals) == (JobStatus.REVEALING, 3, 0)
    assert chain.market.assignment(job_id, outsider.address).status is AssignmentStatus.NONE
    assert chain.market.job(single).status is JobStatus.RUNNING


OWNER_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("setFee", (0,)),
    ("setTreasury", ("0x000000000000000000000000000000000000dEaD",)),
    ("setPaymentToken", ("0x000000000000000000000000000000000000dEaD", True)),
    ("pause", ()),
    ("unpause", ()),
    ("transferOwnership", ("0x000000000000000000000000000000000000dEaD",)),
    ("renounceOwnership", ()),
    ("acceptOwnership", ()),
]


@pytest.mark.parametrize(("function", "args"), OWNER_CALLS, ids=[call[0] for call in OWNER_CALLS])
def test_outsider_cannot_call_owner_functions(chain: Chain, function: str, args: tuple[object, ...]) -> None:
    reads = chain.market.contract.functions
    state = (reads.feeBps().call(), reads.treasury().call(), reads.paused().call(), reads.owner().call())
    with pytest.raises(OwnableUnauthorizedAccount) as caught:
        chain.outsider.send(chain.market.call(function, *args))
    assert caught.value.account == chain.outsider.address
    assert (
        reads.feeBps().call(),
        reads.treasury().call(),
        reads.paused().call(),
        reads.owner().call(),
    ) == state
    assert reads.pendingOwner().call() == "0x0000000000000000000000000000000000000000"
    assert not chain.market.contract.functions.isPaymentToken(
        "0x000000000000000000000000000000000000dEaD"
    ).call()


def test_pause_stops_posting_and_claiming_but_not_settlement(chain: Chain) -> None:
    revealing = post(chain, replicas=3)
    for provider in chain.providers[:3]:
        provider.claim(revealing)
    for provider in chain.providers[:3]:
        commit(provider, revealing, GOOD)
    running = post(chain, replicas=1)
    chain.providers[3].claim(running)
    committing = post(chain, replicas=2)
    for provider in chain.providers[3:5]:
        provider.claim(committing)
    open_job = post(chain, replicas=2)
    paid = post(chain)
    chain.providers[4].claim(paid)
    chain.providers[4].submit_result(paid, GOOD)

    chain.owner.send(chain.market.call("pause"))
    with pytest.raises(EnforcedPause):
        post(chain)
    with pytest.raises(EnforcedPause):
        chain.requester.post_jobs([JobParams(spec_hash=bytes(32), reward_per_replica=ETHER)])
    with pytest.raises(EnforcedPause):
        chain.providers[0].claim(open_job)
    with pytest.raises(EnforcedPause):
        chain.providers[0].claim_many([open_job])
    assert chain.market.job(open_job).claims == 0

    # Everything already under way goes on.
    for provider in chain.providers[:3]:
        reveal(provider, revealing, GOOD)
    assert chain.outsider.finalize(revealing).event("JobFinalized")["outcome"] == JobStatus.COMPLETED
    assert chain.providers[3].submit_result(running, GOOD).event("JobFinalized")["winners"] == [
        chain.providers[3].address
    ]
    for provider in chain.providers[3:5]:
        commit(provider, committing, GOOD)
    assert chain.market.job(committing).status is JobStatus.REVEALING
    chain.requester.cancel(open_job)
    assert chain.market.job(open_job).status is JobStatus.CANCELLED
    assert chain.market.credits(chain.requester.address, ETH) == 2 * ETHER
    before = chain.eth_balance(chain.requester.address)
    result = chain.requester.withdraw(ETH)
    assert chain.eth_balance(chain.requester.address) == before + 2 * ETHER - gas_cost(result)
    assert chain.providers[4].withdraw(ETH).event("Withdrawn")["amount"] == ETHER - FEE
    assert_solvent(chain)

    chain.owner.send(chain.market.call("unpause"))
    chain.providers[0].claim(post(chain))


# ───────────────────────────── batch forms ─────────────────────────────


def test_claim_jobs_with_duplicate_id_reverts_already_claimed(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id, other = post(chain, replicas=2), post(chain, replicas=2)
    with pytest.raises(AlreadyClaimed) as caught:
        provider.claim_many([other, job_id, job_id])
    assert (caught.value.jobId, caught.value.provider) == (job_id, provider.address)
    assert chain.market.job(job_id).claims == chain.market.job(other).claims == 0
    assert chain.market.provider(provider.address).locked_stake == 0


def test_claim_jobs_duplicate_of_a_last_slot_is_skipped_not_claimed_twice(chain: Chain) -> None:
    """Documents the one duplicate the batch skips instead of reverting: once the caller's own
    first claim fills the job, the second item finds it Running ("already full") and is logged as
    skipped with JobNotInState; the slot and its collateral are still taken exactly once."""
    provider = chain.providers[0]
    job_id = post(chain, collateral=2 * ETHER)
    result = provider.claim_many([job_id, job_id])
    assert [e["jobId"] for e in result.named("JobClaimed")] == [job_id]
    skipped = result.event("BatchItemSkipped")
    assert (skipped["jobId"], skipped["reason"]) == (job_id, selector("JobNotInState(uint256,uint8,uint8)"))
    assert chain.market.job(job_id).claims == 1
    assert chain.market.provider(provider.address).locked_stake == 2 * ETHER


def test_batch_duplicates_never_pay_twice(chain: Chain) -> None:
    provider = chain.providers[0]
    singles = [post(chain), post(chain)]
    provider.claim_many(singles)
    submitted = provider.submit_results([singles[0], singles[0], singles[1]], [GOOD, GOOD, GOOD])
    assert [e["jobId"] for e in submitted.named("JobFinalized")] == singles
    assert [e["jobId"] for e in submitted.named("BatchItemSkipped")] == [singles[0]]
    assert chain.market.credits(provider.address, ETH) == 2 * (ETHER - FEE)

    job_id = post(chain, replicas=3)
    run_three_replicas(chain, job_id, [GOOD, GOOD, GOOD])
    settled = chain.outsider.finalize_many([job_id, job_id])
    assert len(settled.named("JobFinalized")) == 1
    assert settled.event("BatchItemSkipped")["jobId"] == job_id
    assert chain.market.credits(provider.address, ETH) == 3 * (ETHER - FEE)
    assert chain.market.credits(chain.treasury, ETH) == 5 * FEE
    assert_solvent(chain)


def test_batch_commit_and_reveal_duplicates_revert(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, replicas=3)
    for p in chain.providers[:3]:
        p.claim(job_id)
    c = commitment(job_id, provider.address, GOOD, salt_for(provider, job_id))
    with pytest.raises(AssignmentNotInState):
        provider.commit_many([job_id, job_id], [c, c])
    assert chain.market.job(job_id).commits == 0
    provider.commit_many([job_id], [c])
    for p in chain.providers[1:3]:
        commit(p, job_id, GOOD)
    with pytest.raises(AssignmentNotInState):
        provider.reveal_many([job_id, job_id], [GOOD, GOOD], [salt_for(provider, job_id)] * 2)
    assert chain.market.job(job_id).reveals == 0


@pytest.mark.parametrize(
    "form", ["commitResults", "revealResults/hashes", "revealResults/salts", "submitResults"]
)
def test_batch_length_mismatch_reverts(chain: Chain, form: str) -> None:
    provider = chain.providers[0]
    jobs = [post(chain), post(chain)]
    provider.claim_many(jobs)
    one, two = [GOOD], [GOOD, GOOD]
    if form == "commitResults":
        call = chain.market.call("commitResults", jobs, one)
    elif form == "revealResults/hashes":
        call = chain.market.call("revealResults", jobs, one, two)
    elif form == "revealResults/salts":
        call = chain.market.call("revealResults", jobs, two, one)
    else:
        call = chain.market.call("submitResults", jobs, one)
    with pytest.raises(LengthMismatch) as caught:
        provider.send(call)
    assert (caught.value.expected, caught.value.actual) == (2, 1)
    for job_id in jobs:
        job = chain.market.job(job_id)
        assert (job.status, job.commits) == (JobStatus.RUNNING, 0)
    assert chain.market.credits(provider.address, ETH) == 0


# ───────────────────────── protocol v2: no profit from a slash, no frozen funds ─────────────────────────


def test_a_sybil_majority_that_outvotes_an_honest_provider_loses_money(chain: Chain) -> None:
    """The attack protocol v1 paid for: a requester posts a three-replica job with a high
    collateral, lets one honest provider claim, fills the other seats with its own staked
    addresses (here the draw is past half its window, where every staked provider may claim: the
    attacker's best case), reveals a wrong hash and outvotes the honest provider. The honest
    collateral is slashed, but to the treasury: the coalition pays its own rewards, the fee and gas,
    and gains nothing."""
    honest, sybils = chain.providers[0], [chain.actor(7), chain.actor(8)]  # accounts 7, 8: the requester's
    coalition = [chain.requester.address, *(s.address for s in sybils)]

    def worth() -> int:
        """What the coalition owns: ETH in its accounts, and its credits and stakes in the market."""
        total = 0
        for address in coalition:
            info = chain.market.provider(address)
            total += chain.eth_balance(address) + chain.market.credits(address, ETH)
            total += info.free_stake + info.locked_stake + info.unbonding
        return total

    before = worth()
    collateral = 5 * ETHER
    job_id = post(chain, replicas=3, reward=ETHER // 10, collateral=collateral)
    chain.sleep(1800)  # half the claim window: every staked provider may claim
    honest.claim(job_id)
    for sybil in sybils:
        sybil.claim(job_id)
    commit(honest, job_id, GOOD)
    for sybil in sybils:
        commit(sybil, job_id, BAD)
    reveal(honest, job_id, GOOD)
    for sybil in sybils:
        reveal(sybil, job_id, BAD)
    settled = chain.outsider.finalize(job_id)
    assert settled.event("JobFinalized")["winners"] == [s.address for s in sybils]
    assert [(e["provider"], e["amount"]) for e in settled.named("Slashed")] == [(honest.address, collateral)]
    assert chain.market.credits(chain.treasury, ETH) == 2 * (ETHER // 10 // 100) + collateral
    loss = before - worth()
    assert loss >= 2 * (ETHER // 10 // 100)  # at least the fee on its two rewards, plus gas
    assert_solvent(chain)


def test_a_stake_of_2_96_cannot_freeze_settlement(chain: Chain) -> None:
    """With a large-supply ERC-20 stake token, protocol v1 let a provider stake up to 2^96 - 1 of
    free stake, so that locking collateral later overflowed and settling the job reverted forever.
    Now all a provider holds stays below 2^96: the stake that would pass it is refused, and the
    provider's jobs settle, alone and in a batch."""
    from marketplace.chain.deploy import deploy_market
    from marketplace.chain.market import Market
    from marketplace.protocol.reverts import AmountTooLarge

    deployment = deploy_market(chain.owner.sender, treasury=chain.treasury, stake_token=chain.token.address)
    market = Market(chain.w3, deployment.market)
    whale = MarketActor(market, chain.providers[4].sender)
    requester = MarketActor(market, chain.requester.sender)
    limit = 2**96 - 1
    chain.send(whale, chain.token, "mint", whale.address, 2**97)
    chain.send(whale, chain.token, "approve", market.address, 2**256 - 1)
    whale.register("whale://")
    whale.stake(limit - ETHER)
    with pytest.raises(AmountTooLarge):
        whale.stake(2 * ETHER)  # free + locked + unbonding would pass 2^96 - 1
    whale.stake(ETHER)  # up to the limit exactly
    chain.owner.send(market.calls.set_payment_token(chain.token.address, True))
    chain.send(requester, chain.token, "approve", market.address, 2**256 - 1)
    params = [
        JobParams(bytes([i]) * 32, 10**6, token=chain.token.address, collateral_per_replica=10**18)
        for i in range(1, 4)
    ]
    jobs = [requester.post_job(p)[0] for p in params]
    chain.devnet.mine()
    whale.claim_many(jobs)  # the only staked provider: eligible at once
    assert market.provider(whale.address).locked_stake == 3 * 10**18
    whale.submit_result(jobs[0], GOOD)
    settled = whale.submit_results(jobs[1:], [GOOD, GOOD])
    assert len(settled.named("JobFinalized")) == 2
    info = market.provider(whale.address)
    assert (info.free_stake, info.locked_stake) == (limit, 0)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_finalize_jobs_settles_the_ready_and_skips_every_job_that_cannot_settle(
    chain: Chain, order: int
) -> None:
    """One batch of every kind of job that cannot be finalized now (open, running, reveals still
    due, already finalized, cancelled, a duplicate), mixed among ready ones in several orders: the
    batch never reverts, each ready job settles once, and each other one is skipped with its reason."""
    ready = []
    for results in ([GOOD, GOOD, GOOD], [GOOD, GOOD, BAD]):
        job_id = post(chain, replicas=3)
        run_three_replicas(chain, job_id, results)
        ready.append(job_id)
    open_job = post(chain, replicas=3)
    running_job = post(chain, replicas=2)
    for provider in chain.providers[:2]:
        provider.claim(running_job)
    pending = post(chain, replicas=2)  # both committed, one revealed: the other may still reveal
    for provider in chain.providers[:2]:
        provider.claim(pending)
    for provider in chain.providers[:2]:
        commit(provider, pending, GOOD)
    reveal(chain.providers[0], pending, GOOD)
    finished = post(chain, replicas=3)
    run_three_replicas(chain, finished, [GOOD, GOOD, GOOD])
    chain.outsider.finalize(finished)
    cancelled = post(chain)
    chain.requester.cancel(cancelled)
    not_in_state = selector("JobNotInState(uint256,uint8,uint8)")
    reasons = {
        open_job: not_in_state,
        running_job: not_in_state,
        pending: selector("RevealsPending(uint256,uint8,uint8,uint256)"),
        finished: not_in_state,
        cancelled: not_in_state,
    }
    batch = [*ready, *reasons, ready[0]]  # whichever of the two comes second is skipped
    random.Random(order).shuffle(batch)
    before = credits_of(chain, [chain.treasury, *(p.address for p in chain.providers[:3])])

    settled = chain.outsider.finalize_many(batch)

    assert sorted(e["jobId"] for e in settled.named("JobFinalized")) == sorted(ready)
    skipped = [(e["jobId"], e["reason"]) for e in settled.named("BatchItemSkipped")]
    assert sorted(skipped) == sorted([*reasons.items(), (ready[0], not_in_state)])
    assert [chain.market.job(j).status for j in ready] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert chain.market.job(pending).status is JobStatus.REVEALING
    after = credits_of(chain, [chain.treasury, *(p.address for p in chain.providers[:3])])
    assert after[chain.providers[0].address] - before[chain.providers[0].address] == 2 * (ETHER - FEE)
    assert after[chain.providers[2].address] == before[chain.providers[2].address] + ETHER - FEE
    assert_solvent(chain)
