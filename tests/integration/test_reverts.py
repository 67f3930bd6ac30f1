"""Every revert path of every external function: the custom error, its arguments, and no state change.

Most reverts are caught when the sender estimates gas, so nothing reaches the chain. Where it matters
that a revert undoes work already done (tokens pulled, collateral locked), `revert_mined` sends the
transaction with a fixed gas limit so it fails inside a mined block, and the test compares the whole
observable state before and after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_utils import to_checksum_address
from web3.exceptions import ContractLogicError, Web3RPCError

from marketplace.chain.deploy import deploy_contract, deploy_market
from marketplace.chain.market import Market, MarketActor, bind
from marketplace.chain.sender import Call, as_revert
from marketplace.protocol.errors import ContractRevert
from marketplace.protocol.hashing import commitment
from marketplace.protocol.reverts import (
    AlreadyClaimed,
    AmountTooLarge,
    AssignmentNotInState,
    CancelNotAllowed,
    CommitmentMismatch,
    DeadlinePassed,
    EmptyCommitment,
    EnforcedPause,
    ERC20InsufficientAllowance,
    EtherRejected,
    ExpectedPause,
    FeeTooHigh,
    InsufficientFreeStake,
    InvalidDoublingPeriod,
    InvalidReplicas,
    InvalidUnbondingPeriod,
    InvalidWindow,
    JobNotInState,
    LengthMismatch,
    NotAssigned,
    NothingToWithdraw,
    NotRegistered,
    OwnableUnauthorizedAccount,
    PaymentTooSmall,
    ReentrancyGuardReentrantCall,
    ReplicatedJob,
    RevealsPending,
    TokenNotAllowed,
    TooManyTokens,
    UnbondingNotReady,
    UnknownJob,
    WindowTooLong,
    WrongEtherAmount,
    ZeroAddress,
    ZeroAmount,
    decode_revert,
)
from marketplace.protocol.status import AssignmentStatus, JobStatus
from marketplace.protocol.views import ETH, JobParams
from tests.helpers import ETHER, PROVIDER_STAKE, Chain, commit, post, result_hash, reveal, salt_for

GOOD = result_hash("good")
BAD = result_hash("bad")
UINT80_MAX = 2**80 - 1
UINT96_MAX = 2**96 - 1
UINT32_MAX = 2**32 - 1
MINED_GAS = 1_500_000
UNLISTED = to_checksum_address("0x" + "ab" * 20)
ZERO = to_checksum_address("0x" + "00" * 20)

Setup = Callable[[Chain], int]  # builds a job in some state, returns its id


@contextmanager
def reverts(error: type[ContractRevert], **fields: Any) -> Iterator[None]:
    """The block must revert with exactly `error(**fields)`: same error, every argument equal."""
    with pytest.raises(error) as caught:
        yield
    assert caught.value.fields == fields


def revert_mined(
    chain: Chain, actor: MarketActor, call: Call, error: type[ContractRevert], **fields: Any
) -> None:
    """Sends `call` without gas estimation so it reverts inside a mined block, with `error(**fields)`."""
    nonce = chain.w3.eth.get_transaction_count(actor.address)
    with reverts(error, **fields):
        actor.sender.transact(call, gas=MINED_GAS)
    assert chain.w3.eth.get_transaction_count(actor.address) == nonce + 1  # it did land on chain


def world(chain: Chain, *job_ids: int) -> list[Any]:
    """Everything a market call could change: jobs, slots, stakes, credits and token holdings.

    Read in one JSON-RPC batch, so comparing before and after costs two round trips.
    """
    views = chain.market.contract.functions
    people = [chain.requester, chain.requester2, *chain.providers, chain.outsider]
    accounts = [actor.address for actor in people] + [chain.treasury]
    with chain.w3.batch_requests() as batch:
        batch.add(views.jobCount())
        for job_id in job_ids:
            batch.add(views.getJob(job_id))
            for provider in chain.providers:
                batch.add(views.getAssignment(job_id, provider.address))
        for account in accounts:
            batch.add(views.providerInfo(account))
            for token in (ETH, chain.token.address, chain.fot.address):
                batch.add(views.credits(account, token))
            batch.add(chain.token.functions.balanceOf(account))
        batch.add(chain.token.functions.balanceOf(chain.market.address))
        batch.add(chain.w3.eth.get_balance(chain.market.address))
        return list(batch.execute())


def job_params(**overrides: Any) -> JobParams:
    defaults: dict[str, Any] = {
        "spec_hash": os.urandom(32),
        "reward_per_replica": ETHER,
        "replicas": 1,
        "collateral_per_replica": ETHER,
    }
    return JobParams(**{**defaults, **overrides})


def post_call(chain: Chain, params: JobParams, value: int | None = None) -> Call:
    """postJob calldata; ETH jobs send their escrow unless `value` says otherwise."""
    if value is None:
        value = params.escrow if params.token == ETH else 0
    return chain.market.call("postJob", params.as_tuple(), value=value)


def post_jobs_call(chain: Chain, params: list[JobParams], value: int) -> Call:
    return chain.market.call("postJobs", [p.as_tuple() for p in params], value=value)


def running(chain: Chain, replicas: int = 2, run_timeout: int = 3600, reveal_window: int = 3600) -> int:
    """A job whose every slot is claimed by providers[0..replicas-1]."""
    job_id = post(chain, replicas=replicas, run_timeout=run_timeout, reveal_window=reveal_window)
    for provider in chain.providers[:replicas]:
        provider.claim(job_id)
    return job_id


def revealing(chain: Chain, replicas: int = 3, reveal_window: int = 3600) -> int:
    """A job in which every slot holder committed GOOD, so the reveal phase has started."""
    job_id = running(chain, replicas, reveal_window=reveal_window)
    for provider in chain.providers[:replicas]:
        commit(provider, job_id, GOOD)
    return job_id


def completed(chain: Chain) -> int:
    job_id = running(chain, replicas=1)
    chain.providers[0].submit_result(job_id, GOOD)
    return job_id


def cancelled(chain: Chain, replicas: int = 2) -> int:
    job_id = post(chain, replicas=replicas)
    chain.requester.cancel(job_id)
    return job_id


# ───────────────────────────── postJob / postJobs ─────────────────────────────


@pytest.mark.parametrize("token_name", ["eth", "token"])
@pytest.mark.parametrize(
    ("overrides", "error", "fields"),
    [
        pytest.param({"replicas": 0}, InvalidReplicas, {"replicas": 0}, id="replicas-0"),
        pytest.param({"replicas": 16}, InvalidReplicas, {"replicas": 16}, id="replicas-16"),
        pytest.param({"reward_per_replica": 0}, ZeroAmount, {}, id="zero-reward"),
        pytest.param({"claim_window": 0}, InvalidWindow, {}, id="zero-claim-window"),
        pytest.param({"run_timeout": 0}, InvalidWindow, {}, id="zero-run-timeout"),
        pytest.param({"reveal_window": 0}, InvalidWindow, {}, id="zero-reveal-window"),
        pytest.param(
            {"claim_window": UINT32_MAX},
            WindowTooLong,
            {"window": UINT32_MAX, "max": 6 * 3600},
            id="claim-window-over-the-bound",
        ),
        pytest.param(
            {"run_timeout": 86_401},
            WindowTooLong,
            {"window": 86_401, "max": 86_400},
            id="run-timeout-over-the-bound",
        ),
        pytest.param(
            {"reveal_window": 86_401},
            WindowTooLong,
            {"window": 86_401, "max": 86_400},
            id="reveal-window-over-the-bound",
        ),
        pytest.param(
            {"reward_per_replica": 2**80},
            AmountTooLarge,
            {"amount": 2**80, "max": UINT80_MAX},
            id="reward-2**80",
        ),
        pytest.param(
            {"collateral_per_replica": 2**80},
            AmountTooLarge,
            {"amount": 2**80, "max": UINT80_MAX},
            id="collateral-2**80",
        ),
    ],
)
def test_post_job_rejects_invalid_params(
    chain: Chain,
    token_name: str,
    overrides: dict[str, Any],
    error: type[ContractRevert],
    fields: dict[str, Any],
) -> None:
    token = ETH if token_name == "eth" else chain.token.address
    params = job_params(token=token, **overrides)
    # An ETH escrow of 2**96 wei is more than any devnet account holds: validation must fail first.
    value = params.escrow if token == ETH and params.escrow <= 100 * ETHER else 0
    before = world(chain)
    with reverts(error, **fields):
        chain.requester.send(post_call(chain, params, value))
    assert world(chain) == before


def test_amounts_just_below_the_80_bit_limit_are_accepted(chain: Chain) -> None:
    params = job_params(token=chain.token.address, collateral_per_replica=UINT80_MAX)
    job_id, _ = chain.requester.post_job(params)
    assert chain.market.job(job_id).collateral_per_replica == UINT80_MAX


def test_post_job_rejects_unlisted_and_delisted_tokens(chain: Chain) -> None:
    with reverts(TokenNotAllowed, token=UNLISTED):
        chain.requester.post_job(job_params(token=UNLISTED))

    chain.owner.send(chain.market.call("setPaymentToken", chain.token.address, False))
    before = world(chain)
    with reverts(TokenNotAllowed, token=chain.token.address):
        chain.requester.post_job(job_params(token=chain.token.address))
    assert world(chain) == before

    chain.owner.send(chain.market.call("setPaymentToken", chain.token.address, True))
    chain.requester.post_job(job_params(token=chain.token.address))  # listed again: accepted


@pytest.mark.parametrize(
    ("token_name", "sent", "expected"),
    [
        pytest.param("eth", 3 * ETHER - 1, 3 * ETHER, id="eth-too-little"),
        pytest.param("eth", 0, 3 * ETHER, id="eth-none"),
        pytest.param("eth", 3 * ETHER + 1, 3 * ETHER, id="eth-too-much"),
        pytest.param("token", 1, 0, id="eth-with-erc20-job"),
        pytest.param("token", 3 * ETHER, 0, id="escrow-as-eth-with-erc20-job"),
    ],
)
def test_post_job_requires_the_exact_ether_escrow(
    chain: Chain, token_name: str, sent: int, expected: int
) -> None:
    token = ETH if token_name == "eth" else chain.token.address
    params = job_params(replicas=3, token=token)
    with reverts(WrongEtherAmount, expected=expected, sent=sent):
        chain.requester.send(post_call(chain, params, sent))


def test_wrong_ether_with_erc20_job_mined_returns_the_pulled_tokens(chain: Chain) -> None:
    """The ERC-20 escrow is pulled before the ETH check; the revert must undo the transfer."""
    params = job_params(replicas=3, token=chain.token.address)
    before = world(chain)
    revert_mined(chain, chain.requester, post_call(chain, params, 1), WrongEtherAmount, expected=0, sent=1)
    assert world(chain) == before


MIXED_BATCH_ETH = 2 * ETHER + ETHER // 2


def mixed_batch(chain: Chain) -> list[JobParams]:
    """2 x 1 ETH, an ERC-20 job, and 1 x 0.5 ETH: 2.5 ETH of ETH escrow in total."""
    return [
        job_params(replicas=2),
        job_params(replicas=3, token=chain.token.address),
        job_params(reward_per_replica=ETHER // 2),
    ]


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(MIXED_BATCH_ETH - 1, id="too-little"),
        pytest.param(MIXED_BATCH_ETH + 1, id="too-much"),
        pytest.param(2 * ETHER, id="first-item-only"),
        pytest.param(MIXED_BATCH_ETH + 3 * ETHER, id="erc20-escrow-also-paid-in-eth"),
        pytest.param(0, id="none"),
    ],
)
def test_post_jobs_requires_the_exact_total_ether(chain: Chain, sent: int) -> None:
    before = world(chain)
    with reverts(WrongEtherAmount, expected=MIXED_BATCH_ETH, sent=sent):
        chain.requester.send(post_jobs_call(chain, mixed_batch(chain), sent))
    assert world(chain) == before


def test_post_jobs_wrong_total_mined_posts_nothing(chain: Chain) -> None:
    before = world(chain)
    call = post_jobs_call(chain, mixed_batch(chain), MIXED_BATCH_ETH - 1)
    revert_mined(
        chain, chain.requester, call, WrongEtherAmount, expected=MIXED_BATCH_ETH, sent=MIXED_BATCH_ETH - 1
    )
    assert world(chain) == before
    chain.requester.post_jobs(mixed_batch(chain))  # the exact total goes through
    assert chain.market.job_count() == before[0] + 3  # jobCount comes first


def test_post_jobs_empty_batch_takes_no_ether(chain: Chain) -> None:
    with reverts(WrongEtherAmount, expected=0, sent=1):
        chain.requester.send(post_jobs_call(chain, [], 1))


@pytest.mark.parametrize(
    ("bad", "error", "fields"),
    [
        pytest.param({"replicas": 16}, InvalidReplicas, {"replicas": 16}, id="replicas"),
        pytest.param({"reveal_window": 0}, InvalidWindow, {}, id="window"),
        pytest.param({"token": UNLISTED}, TokenNotAllowed, {"token": UNLISTED}, id="token"),
    ],
)
def test_post_jobs_one_invalid_item_reverts_the_whole_batch(
    chain: Chain, bad: dict[str, Any], error: type[ContractRevert], fields: dict[str, Any]
) -> None:
    batch = [*mixed_batch(chain), job_params(**bad)]
    before = world(chain)
    revert_mined(chain, chain.requester, post_jobs_call(chain, batch, MIXED_BATCH_ETH), error, **fields)
    assert world(chain) == before


def test_post_job_payment_too_small_after_transfer_fee(chain: Chain) -> None:
    """A 90% fee-on-transfer token delivers 1 of 2 units: less than one unit per replica."""
    heavy_address, _ = deploy_contract(chain.owner.sender, "FeeOnTransferToken", 9000)
    heavy = bind(chain.w3, "FeeOnTransferToken", heavy_address)
    chain.owner.send(chain.market.call("setPaymentToken", heavy_address, True))
    chain.send(chain.requester, heavy, "mint", chain.requester.address, 100)
    chain.send(chain.requester, heavy, "approve", chain.market.address, 2**256 - 1)
    with reverts(PaymentTooSmall, received=1, replicas=2):
        chain.requester.post_job(job_params(token=heavy_address, reward_per_replica=1, replicas=2))


def test_post_job_without_allowance_surfaces_the_token_error(chain: Chain) -> None:
    params = job_params(replicas=2, token=chain.token.address)
    with reverts(ERC20InsufficientAllowance, spender=chain.market.address, allowance=0, needed=2 * ETHER):
        chain.outsider.post_job(params)


# ───────────────────────────── pause ─────────────────────────────


@pytest.mark.parametrize("function", ["postJob", "postJobs", "claimJob", "claimJobs"])
def test_paused_market_rejects_posting_and_claiming(chain: Chain, function: str) -> None:
    job_id = post(chain)
    chain.owner.send(chain.market.call("pause"))
    params = job_params()
    calls = {
        "postJob": (chain.requester, post_call(chain, params)),
        "postJobs": (chain.requester, post_jobs_call(chain, [params], params.escrow)),
        "claimJob": (chain.providers[0], chain.market.call("claimJob", job_id)),
        "claimJobs": (chain.providers[0], chain.market.call("claimJobs", [job_id])),
    }
    actor, call = calls[function]
    chain.providers[0].await_seats([job_id])
    before = world(chain, job_id)
    with reverts(EnforcedPause):
        actor.send(call)
    assert world(chain, job_id) == before

    chain.owner.send(chain.market.call("unpause"))
    actor.send(call)


def test_pause_leaves_settlement_staking_and_withdrawals_open(chain: Chain) -> None:
    a, b = chain.providers[:2]
    single = running(chain, replicas=1)
    pair = running(chain, replicas=2)
    open_job = post(chain, replicas=2)
    chain.owner.send(chain.market.call("pause"))

    a.submit_result(single, GOOD)
    commit(a, pair, GOOD)
    commit(b, pair, GOOD)
    reveal(a, pair, GOOD)
    reveal(b, pair, GOOD)
    a.finalize(pair)
    chain.requester.cancel(open_job)
    a.withdraw(ETH)
    chain.requester.withdraw(ETH)
    b.stake(ETHER)
    b.request_unstake(ETHER)
    assert chain.market.job(pair).status is JobStatus.COMPLETED


def test_pause_and_unpause_require_the_other_state(chain: Chain) -> None:
    with reverts(ExpectedPause):
        chain.owner.send(chain.market.call("unpause"))
    chain.owner.send(chain.market.call("pause"))
    with reverts(EnforcedPause):
        chain.owner.send(chain.market.call("pause"))


# ───────────────────────────── unknown jobs ─────────────────────────────


@pytest.mark.parametrize(
    "function",
    [
        "claimJob",
        "claimJobs",
        "commitResult",
        "commitResults",
        "revealResult",
        "revealResults",
        "submitResult",
        "submitResults",
        "finalizeJob",
        "finalizeJobs",
        "cancelJob",
    ],
)
@pytest.mark.parametrize("which", ["zero", "next"])
def test_unknown_job_reverts_every_job_function(chain: Chain, function: str, which: str) -> None:
    post(chain)
    job_id = 0 if which == "zero" else chain.market.job_count() + 1
    args: dict[str, tuple[Any, ...]] = {
        "claimJob": (job_id,),
        "claimJobs": ([job_id],),
        "commitResult": (job_id, GOOD),
        "commitResults": ([job_id], [GOOD]),
        "revealResult": (job_id, GOOD, GOOD),
        "revealResults": ([job_id], [GOOD], [GOOD]),
        "submitResult": (job_id, GOOD),
        "submitResults": ([job_id], [GOOD]),
        "finalizeJob": (job_id,),
        "finalizeJobs": ([job_id],),
        "cancelJob": (job_id,),
    }
    # Batch forms skip jobs others made unactionable, but an id that never existed is an error.
    with reverts(UnknownJob, jobId=job_id):
        chain.providers[0].send(chain.market.call(function, *args[function]))


@pytest.mark.parametrize("view", ["getJob", "getAssignment"])
def test_unknown_job_reverts_the_views(chain: Chain, view: str) -> None:
    job_id = chain.market.job_count() + 1
    args = (job_id,) if view == "getJob" else (job_id, chain.providers[0].address)
    with pytest.raises((ContractLogicError, Web3RPCError)) as caught:
        getattr(chain.market.contract.functions, view)(*args).call()
    decoded = as_revert(caught.value)
    assert isinstance(decoded, UnknownJob)
    assert decoded.fields == {"jobId": job_id}


# ───────────────────────────── claimJob ─────────────────────────────


def test_claim_by_unregistered_account(chain: Chain) -> None:
    job_id = post(chain, replicas=2)
    before = world(chain, job_id)
    with reverts(NotRegistered, provider=chain.outsider.address):
        chain.outsider.claim(job_id)
    assert world(chain, job_id) == before


def test_claim_with_collateral_above_total_stake(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, collateral=PROVIDER_STAKE + 1)
    with reverts(
        InsufficientFreeStake, provider=provider.address, needed=PROVIDER_STAKE + 1, free=PROVIDER_STAKE
    ):
        provider.claim(job_id)


def test_claim_with_collateral_above_free_stake_mined_locks_nothing(chain: Chain) -> None:
    provider = chain.providers[0]
    collateral = 60 * ETHER
    first, second = post(chain, collateral=collateral), post(chain, collateral=collateral)
    provider.claim(first)
    provider.await_seats([second])
    before = world(chain, first, second)
    revert_mined(
        chain,
        provider,
        chain.market.call("claimJob", second),
        InsufficientFreeStake,
        provider=provider.address,
        needed=collateral,
        free=PROVIDER_STAKE - collateral,
    )
    assert world(chain, first, second) == before


def test_claim_twice(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, replicas=2)
    provider.claim(job_id)
    before = world(chain, job_id)
    with reverts(AlreadyClaimed, jobId=job_id, provider=provider.address):
        provider.claim(job_id)
    assert world(chain, job_id) == before
    assert chain.market.job(job_id).claims == 1


def test_claim_batch_aborts_entirely_on_a_non_skippable_error(chain: Chain) -> None:
    provider = chain.providers[0]
    fresh, held = post(chain), post(chain, replicas=2)
    provider.claim(held)
    before = world(chain, fresh, held)
    call = chain.market.call("claimJobs", [fresh, held])
    revert_mined(chain, provider, call, AlreadyClaimed, jobId=held, provider=provider.address)
    assert world(chain, fresh, held) == before
    assert chain.market.job(fresh).status is JobStatus.OPEN


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        pytest.param(lambda chain: running(chain, replicas=1), JobStatus.RUNNING, id="full"),
        pytest.param(lambda chain: completed(chain), JobStatus.COMPLETED, id="completed"),
        pytest.param(lambda chain: cancelled(chain), JobStatus.CANCELLED, id="cancelled"),
    ],
)
def test_claim_job_not_open(chain: Chain, setup: Setup, status: JobStatus) -> None:
    job_id = setup(chain)
    latecomer = chain.providers[4]
    before = world(chain, job_id)
    with reverts(JobNotInState, jobId=job_id, current=status, expected=JobStatus.OPEN):
        latecomer.claim(job_id)
    assert world(chain, job_id) == before


def test_claim_full_job_reports_its_effective_state(chain: Chain) -> None:
    job_id = running(chain, replicas=1, run_timeout=100)
    chain.sleep(101)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.REVEALING, expected=JobStatus.OPEN):
        chain.providers[4].claim(job_id)


def test_claim_after_claim_window(chain: Chain) -> None:
    job_id = post(chain, claim_window=100)
    deadline = chain.market.job(job_id).deadline
    chain.warp(deadline + 1)
    with reverts(DeadlinePassed, jobId=job_id, deadline=deadline):
        chain.providers[0].claim(job_id)


# ───────────────────────────── commitResult ─────────────────────────────


def test_commit_while_open(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, replicas=2)
    provider.claim(job_id)
    before = world(chain, job_id)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.OPEN, expected=JobStatus.RUNNING):
        commit(provider, job_id, GOOD)
    assert world(chain, job_id) == before


def test_commit_after_everyone_committed(chain: Chain) -> None:
    job_id = revealing(chain, replicas=2)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.REVEALING, expected=JobStatus.RUNNING):
        commit(chain.providers[0], job_id, BAD)


def test_commit_without_a_slot(chain: Chain) -> None:
    job_id = running(chain, replicas=2)
    stranger = chain.providers[2]
    with reverts(NotAssigned, jobId=job_id, provider=stranger.address):
        commit(stranger, job_id, GOOD)


def test_commit_twice_keeps_the_first_commitment(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = running(chain, replicas=2)
    commit(provider, job_id, GOOD)
    first = chain.market.assignment(job_id, provider.address).commitment
    before = world(chain, job_id)
    call = chain.market.call("commitResult", job_id, commitment(job_id, provider.address, BAD, b"\x01" * 32))
    revert_mined(
        chain,
        provider,
        call,
        AssignmentNotInState,
        jobId=job_id,
        provider=provider.address,
        current=AssignmentStatus.COMMITTED,
        expected=AssignmentStatus.CLAIMED,
    )
    assert world(chain, job_id) == before
    assert chain.market.assignment(job_id, provider.address).commitment == first
    assert chain.market.job(job_id).commits == 1


def test_commit_empty_commitment(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = running(chain, replicas=2)
    before = world(chain, job_id)
    with reverts(EmptyCommitment, jobId=job_id):
        provider.commit(job_id, bytes(32))
    assert world(chain, job_id) == before


def test_commit_after_commit_deadline(chain: Chain) -> None:
    job_id = running(chain, replicas=2, run_timeout=100)
    deadline = chain.market.job(job_id).deadline
    chain.warp(deadline + 1)
    with reverts(DeadlinePassed, jobId=job_id, deadline=deadline):
        commit(chain.providers[0], job_id, GOOD)


# ───────────────────────────── revealResult ─────────────────────────────


def test_reveal_while_open(chain: Chain) -> None:
    job_id = post(chain, replicas=2)
    chain.providers[0].claim(job_id)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.OPEN, expected=JobStatus.REVEALING):
        reveal(chain.providers[0], job_id, GOOD)


def test_reveal_while_commits_are_still_open(chain: Chain) -> None:
    a = chain.providers[0]
    job_id = running(chain, replicas=2)
    commit(a, job_id, GOOD)
    before = world(chain, job_id)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.RUNNING, expected=JobStatus.REVEALING):
        reveal(a, job_id, GOOD)
    assert world(chain, job_id) == before


def test_reveal_without_a_slot(chain: Chain) -> None:
    job_id = revealing(chain, replicas=2)
    stranger = chain.providers[2]
    with reverts(NotAssigned, jobId=job_id, provider=stranger.address):
        reveal(stranger, job_id, GOOD)


def test_reveal_never_committed(chain: Chain) -> None:
    a, idle = chain.providers[:2]
    job_id = running(chain, replicas=2, run_timeout=100)
    commit(a, job_id, GOOD)
    chain.warp(chain.market.job(job_id).deadline + 1)
    with reverts(
        AssignmentNotInState,
        jobId=job_id,
        provider=idle.address,
        current=AssignmentStatus.CLAIMED,
        expected=AssignmentStatus.COMMITTED,
    ):
        reveal(idle, job_id, GOOD)


def test_reveal_twice(chain: Chain) -> None:
    a = chain.providers[0]
    job_id = revealing(chain, replicas=2)
    reveal(a, job_id, GOOD)
    with reverts(
        AssignmentNotInState,
        jobId=job_id,
        provider=a.address,
        current=AssignmentStatus.REVEALED,
        expected=AssignmentStatus.COMMITTED,
    ):
        reveal(a, job_id, GOOD)


@pytest.mark.parametrize("opening", ["wrong-result", "wrong-salt", "copied-commitment"])
def test_reveal_commitment_mismatch(chain: Chain, opening: str) -> None:
    a, b = chain.providers[:2]
    job_id = running(chain, replicas=2)
    commit(a, job_id, GOOD)
    if opening == "copied-commitment":
        # b copies a's commitment; the commitment binds the committer, so a's opening fails for b.
        b.commit(job_id, chain.market.assignment(job_id, a.address).commitment)
        revealer, result, salt = b, GOOD, salt_for(a, job_id)
    else:
        commit(b, job_id, GOOD)
        revealer = a
        result = BAD if opening == "wrong-result" else GOOD
        salt = salt_for(a, job_id) if opening == "wrong-result" else salt_for(b, job_id)
    before = world(chain, job_id)
    call = chain.market.call("revealResult", job_id, result, salt)
    revert_mined(chain, revealer, call, CommitmentMismatch, jobId=job_id, provider=revealer.address)
    assert world(chain, job_id) == before
    assert chain.market.job(job_id).reveals == 0


def test_reveal_after_reveal_deadline(chain: Chain) -> None:
    job_id = revealing(chain, replicas=2, reveal_window=100)
    deadline = chain.market.job(job_id).deadline
    chain.warp(deadline + 1)
    with reverts(DeadlinePassed, jobId=job_id, deadline=deadline):
        reveal(chain.providers[0], job_id, GOOD)


def test_reveal_after_finalize(chain: Chain) -> None:
    a, b = chain.providers[:2]
    job_id = revealing(chain, replicas=2)
    reveal(a, job_id, GOOD)
    reveal(b, job_id, GOOD)
    chain.outsider.finalize(job_id)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.COMPLETED, expected=JobStatus.REVEALING):
        reveal(a, job_id, GOOD)


# ───────────────────────────── batch length checks ─────────────────────────────


@pytest.mark.parametrize(
    ("function", "args", "expected", "actual"),
    [
        pytest.param("commitResults", ([1, 2], [GOOD]), 2, 1, id="commitResults"),
        pytest.param("revealResults", ([1, 2], [GOOD], [GOOD, GOOD]), 2, 1, id="revealResults-hashes"),
        pytest.param("revealResults", ([1], [GOOD], [GOOD, GOOD]), 1, 2, id="revealResults-salts"),
        pytest.param("submitResults", ([1], [GOOD, BAD]), 1, 2, id="submitResults"),
    ],
)
def test_batch_length_mismatch(
    chain: Chain, function: str, args: tuple[Any, ...], expected: int, actual: int
) -> None:
    with reverts(LengthMismatch, expected=expected, actual=actual):
        chain.providers[0].send(chain.market.call(function, *args))


# ───────────────────────────── submitResult ─────────────────────────────


def test_submit_on_replicated_job(chain: Chain) -> None:
    job_id = running(chain, replicas=3)
    before = world(chain, job_id)
    with reverts(ReplicatedJob, jobId=job_id, replicas=3):
        chain.providers[0].submit_result(job_id, GOOD)
    assert world(chain, job_id) == before


def test_submit_without_the_slot(chain: Chain) -> None:
    job_id = running(chain, replicas=1)
    other = chain.providers[1]
    before = world(chain, job_id)
    revert_mined(
        chain,
        other,
        chain.market.call("submitResult", job_id, BAD),
        NotAssigned,
        jobId=job_id,
        provider=other.address,
    )
    assert world(chain, job_id) == before


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        pytest.param(lambda chain: post(chain), JobStatus.OPEN, id="open"),
        pytest.param(lambda chain: completed(chain), JobStatus.COMPLETED, id="completed"),
        pytest.param(lambda chain: cancelled(chain, replicas=1), JobStatus.CANCELLED, id="cancelled"),
    ],
)
def test_submit_job_not_running(chain: Chain, setup: Setup, status: JobStatus) -> None:
    job_id = setup(chain)
    with reverts(JobNotInState, jobId=job_id, current=status, expected=JobStatus.RUNNING):
        chain.providers[0].submit_result(job_id, GOOD)


def test_submit_after_commit_deadline(chain: Chain) -> None:
    job_id = running(chain, replicas=1, run_timeout=100)
    deadline = chain.market.job(job_id).deadline
    chain.warp(deadline + 1)
    with reverts(DeadlinePassed, jobId=job_id, deadline=deadline):
        chain.providers[0].submit_result(job_id, GOOD)


# ───────────────────────────── finalizeJob ─────────────────────────────


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        pytest.param(lambda chain: post(chain, replicas=2), JobStatus.OPEN, id="open"),
        pytest.param(lambda chain: running(chain, replicas=2), JobStatus.RUNNING, id="running"),
        pytest.param(lambda chain: completed(chain), JobStatus.COMPLETED, id="completed"),
        pytest.param(lambda chain: cancelled(chain), JobStatus.CANCELLED, id="cancelled"),
    ],
)
def test_finalize_job_not_revealing(chain: Chain, setup: Setup, status: JobStatus) -> None:
    job_id = setup(chain)
    before = world(chain, job_id)
    with reverts(JobNotInState, jobId=job_id, current=status, expected=JobStatus.REVEALING):
        chain.outsider.finalize(job_id)
    assert world(chain, job_id) == before


def test_finalize_while_commits_open_even_if_committers_revealed_nothing(chain: Chain) -> None:
    job_id = running(chain, replicas=3)
    commit(chain.providers[0], job_id, GOOD)
    commit(chain.providers[1], job_id, GOOD)
    with reverts(JobNotInState, jobId=job_id, current=JobStatus.RUNNING, expected=JobStatus.REVEALING):
        chain.outsider.finalize(job_id)


def test_finalize_with_reveals_pending(chain: Chain) -> None:
    a, b, _ = chain.providers[:3]
    job_id = revealing(chain, replicas=3)
    reveal(a, job_id, GOOD)
    reveal(b, job_id, GOOD)
    deadline = chain.market.job(job_id).deadline
    before = world(chain, job_id)
    revert_mined(
        chain,
        chain.outsider,
        chain.market.call("finalizeJob", job_id),
        RevealsPending,
        jobId=job_id,
        committed=3,
        revealed=2,
        revealDeadline=deadline,
    )
    assert world(chain, job_id) == before


def test_finalize_with_reveals_pending_after_commit_deadline(chain: Chain) -> None:
    """Not everyone committed: the reveal deadline is the commit deadline plus the reveal window."""
    a, b, _ = chain.providers[:3]
    job_id = running(chain, replicas=3, run_timeout=100, reveal_window=200)
    commit_deadline = chain.market.job(job_id).deadline
    commit(a, job_id, GOOD)
    commit(b, job_id, GOOD)
    chain.warp(commit_deadline + 1)
    reveal(a, job_id, GOOD)
    with reverts(RevealsPending, jobId=job_id, committed=2, revealed=1, revealDeadline=commit_deadline + 200):
        chain.outsider.finalize(job_id)


# ───────────────────────────── cancelJob ─────────────────────────────


@pytest.mark.parametrize(
    ("caller", "claimed", "window_over"),
    [
        pytest.param("requester", True, False, id="requester-after-a-claim"),
        pytest.param("holder", True, False, id="slot-holder-in-window"),
        pytest.param("provider", True, False, id="other-provider-in-window"),
        pytest.param("provider", True, True, id="other-provider-after-window"),
        pytest.param("outsider", True, True, id="outsider-after-window"),
        pytest.param("outsider", False, False, id="outsider-unclaimed"),
        pytest.param("outsider", False, True, id="outsider-unclaimed-after-window"),
        pytest.param("provider", False, True, id="provider-unclaimed-after-window"),
        pytest.param("requester2", False, False, id="another-requester"),
    ],
)
def test_cancel_not_allowed(chain: Chain, caller: str, claimed: bool, window_over: bool) -> None:
    holder = chain.providers[0]
    job_id = post(chain, replicas=3, claim_window=100)
    if claimed:
        holder.claim(job_id)
    actor = {
        "requester": chain.requester,
        "holder": holder,
        "provider": chain.providers[1],
        "outsider": chain.outsider,
        "requester2": chain.requester2,
    }[caller]
    if window_over:
        chain.warp(chain.market.job(job_id).deadline + 1)
    before = world(chain, job_id)
    with reverts(CancelNotAllowed, jobId=job_id, caller=actor.address):
        actor.cancel(job_id)
    assert world(chain, job_id) == before


def test_cancel_not_allowed_mined_keeps_collateral_locked(chain: Chain) -> None:
    holder = chain.providers[0]
    job_id = post(chain, replicas=3)
    holder.claim(job_id)
    before = world(chain, job_id)
    revert_mined(
        chain,
        chain.requester,
        chain.market.call("cancelJob", job_id),
        CancelNotAllowed,
        jobId=job_id,
        caller=chain.requester.address,
    )
    assert world(chain, job_id) == before
    assert chain.market.provider(holder.address).locked_stake == ETHER


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        pytest.param(lambda chain: running(chain, replicas=2), JobStatus.RUNNING, id="running"),
        pytest.param(lambda chain: revealing(chain, replicas=2), JobStatus.REVEALING, id="revealing"),
        pytest.param(lambda chain: completed(chain), JobStatus.COMPLETED, id="completed"),
        pytest.param(lambda chain: cancelled(chain), JobStatus.CANCELLED, id="cancelled"),
    ],
)
def test_cancel_job_not_open(chain: Chain, setup: Setup, status: JobStatus) -> None:
    job_id = setup(chain)
    before = world(chain, job_id)
    with reverts(JobNotInState, jobId=job_id, current=status, expected=JobStatus.OPEN):
        chain.requester.cancel(job_id)
    assert world(chain, job_id) == before


# ───────────────────────────── withdraw ─────────────────────────────


@pytest.mark.parametrize("token_name", ["eth", "token"])
def test_withdraw_nothing(chain: Chain, token_name: str) -> None:
    token = ETH if token_name == "eth" else chain.token.address
    with reverts(NothingToWithdraw, account=chain.outsider.address, token=token):
        chain.outsider.withdraw(token)


def test_withdraw_twice(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = running(chain, replicas=1)
    provider.submit_result(job_id, GOOD)
    provider.withdraw(ETH)
    with reverts(NothingToWithdraw, account=provider.address, token=ETH):
        provider.withdraw(ETH)
    # A credit in one token is not a credit in another.
    with reverts(NothingToWithdraw, account=provider.address, token=chain.token.address):
        provider.withdraw(chain.token.address)


def test_withdraw_to_a_receiver_that_rejects_ether_keeps_the_credit(chain: Chain) -> None:
    rejecter_address, _ = deploy_contract(chain.owner.sender, "EtherRejecter", chain.market.address)
    rejecter = bind(chain.w3, "EtherRejecter", rejecter_address)

    def through_rejecter(call: Call) -> None:
        chain.send(chain.requester, rejecter, "execute", bytes(call.data), value=call.value)

    through_rejecter(post_call(chain, job_params(replicas=2)))
    job_id = chain.market.job_count()
    through_rejecter(chain.market.call("cancelJob", job_id))
    assert chain.market.credits(rejecter_address, ETH) == 2 * ETHER
    before = world(chain, job_id)
    with reverts(EtherRejected):
        through_rejecter(chain.market.call("withdraw", ETH))
    assert chain.market.credits(rejecter_address, ETH) == 2 * ETHER
    assert world(chain, job_id) == before


def test_withdraw_reentry_is_rejected(chain: Chain) -> None:
    attacker_address, _ = deploy_contract(chain.owner.sender, "ReentrantAttacker", chain.market.address)
    attacker = bind(chain.w3, "ReentrantAttacker", attacker_address)

    def through_attacker(call: Call) -> None:
        chain.send(chain.requester, attacker, "execute", bytes(call.data), value=call.value)

    through_attacker(post_call(chain, job_params(replicas=2)))
    job_id = chain.market.job_count()
    through_attacker(chain.market.call("cancelJob", job_id))
    reentry = chain.market.call("withdraw", ETH)
    chain.send(chain.requester, attacker, "setReentryCall", bytes(reentry.data))
    through_attacker(chain.market.call("withdraw", ETH))

    assert attacker.functions.reentryAttempts().call() == 1
    assert attacker.functions.reentrySuccesses().call() == 0
    error = decode_revert(bytes(attacker.functions.lastReentryError().call()))
    assert isinstance(error, ReentrancyGuardReentrantCall)
    assert chain.eth_balance(attacker_address) == 2 * ETHER
    assert chain.market.credits(attacker_address, ETH) == 0


# ───────────────────────────── staking ─────────────────────────────


def test_stake_unregistered(chain: Chain) -> None:
    with reverts(NotRegistered, provider=chain.outsider.address):
        chain.outsider.stake(ETHER)


def test_stake_zero(chain: Chain) -> None:
    with reverts(ZeroAmount):
        chain.providers[0].stake(0)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(ETHER - 1, id="too-little"),
        pytest.param(0, id="none"),
        pytest.param(ETHER + 1, id="too-much"),
    ],
)
def test_stake_wrong_ether(chain: Chain, sent: int) -> None:
    provider = chain.providers[0]
    before = world(chain)
    revert_mined(
        chain,
        provider,
        chain.market.call("stake", ETHER, value=sent),
        WrongEtherAmount,
        expected=ETHER,
        sent=sent,
    )
    assert world(chain) == before
    assert chain.market.provider(provider.address).free_stake == PROVIDER_STAKE


def test_erc20_stake_rejects_ether_and_amounts_above_96_bits(chain: Chain) -> None:
    deployment = deploy_market(
        chain.owner.sender, treasury=chain.treasury, stake_token=chain.token.address, unbonding_period=100
    )
    market = Market(chain.w3, deployment.market)
    provider = chain.providers[0]
    staker = MarketActor(market, provider.sender)
    staker.register("ipfs://erc20-staker")
    chain.send(provider, chain.token, "mint", provider.address, 2**96)
    chain.send(provider, chain.token, "approve", market.address, 2**256 - 1)

    with reverts(WrongEtherAmount, expected=0, sent=1):
        staker.send(market.call("stake", ETHER, value=1))
    with reverts(AmountTooLarge, amount=2**96, max=UINT96_MAX):
        staker.stake(2**96)
    staker.stake(UINT96_MAX)
    with reverts(AmountTooLarge, amount=2**96, max=UINT96_MAX):
        staker.stake(1)
    assert market.provider(provider.address).free_stake == UINT96_MAX


def test_deployment_refuses_periods_out_of_bounds(chain: Chain) -> None:
    year = 365 * 24 * 3600
    with reverts(InvalidUnbondingPeriod, period=year + 1, max=year):
        deploy_market(chain.owner.sender, unbonding_period=year + 1)
    for period in (0, 3601):
        with reverts(InvalidDoublingPeriod, period=period, max=3600):
            deploy_market(chain.owner.sender, doubling_period=period)
    deployment = deploy_market(chain.owner.sender, unbonding_period=year, doubling_period=3600)
    assert Market(chain.w3, deployment.market).doubling_period == 3600


def test_request_unstake_unregistered(chain: Chain) -> None:
    with reverts(NotRegistered, provider=chain.outsider.address):
        chain.outsider.request_unstake(ETHER)


def test_request_unstake_zero(chain: Chain) -> None:
    with reverts(ZeroAmount):
        chain.providers[0].request_unstake(0)


def test_request_unstake_more_than_total_stake(chain: Chain) -> None:
    provider = chain.providers[0]
    with reverts(
        InsufficientFreeStake, provider=provider.address, needed=PROVIDER_STAKE + 1, free=PROVIDER_STAKE
    ):
        provider.request_unstake(PROVIDER_STAKE + 1)


def test_request_unstake_locked_collateral(chain: Chain) -> None:
    provider = chain.providers[0]
    job_id = post(chain, collateral=10 * ETHER)
    provider.claim(job_id)
    before = world(chain, job_id)
    revert_mined(
        chain,
        provider,
        chain.market.call("requestUnstake", PROVIDER_STAKE),
        InsufficientFreeStake,
        provider=provider.address,
        needed=PROVIDER_STAKE,
        free=PROVIDER_STAKE - 10 * ETHER,
    )
    assert world(chain, job_id) == before


@pytest.mark.parametrize("who", ["provider", "outsider"])
def test_withdraw_stake_with_nothing_unbonding(chain: Chain, who: str) -> None:
    actor = chain.providers[0] if who == "provider" else chain.outsider
    with reverts(NothingToWithdraw, account=actor.address, token=ETH):
        actor.withdraw_stake()


def test_withdraw_stake_before_ready_and_twice(chain: Chain) -> None:
    provider = chain.providers[0]
    ready_at = provider.request_unstake(ETHER).event("UnstakeRequested")["readyAt"]
    before = world(chain)
    revert_mined(chain, provider, chain.market.call("withdrawStake"), UnbondingNotReady, readyAt=ready_at)
    assert world(chain) == before
    assert chain.market.provider(provider.address).unbonding == ETHER

    chain.warp(ready_at)
    provider.withdraw_stake()
    with reverts(NothingToWithdraw, account=provider.address, token=ETH):
        provider.withdraw_stake()


# ───────────────────────────── owner functions ─────────────────────────────

OWNER_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("setFee", (500,)),
    ("setTreasury", (UNLISTED,)),
    ("setPaymentToken", (UNLISTED, True)),
    ("pause", ()),
    ("unpause", ()),
    ("transferOwnership", (UNLISTED,)),
    ("renounceOwnership", ()),
]


@pytest.mark.parametrize(("function", "args"), OWNER_CALLS, ids=[name for name, _ in OWNER_CALLS])
@pytest.mark.parametrize("caller", ["outsider", "treasury", "provider"])
def test_owner_functions_reject_everyone_else(
    chain: Chain, function: str, args: tuple[Any, ...], caller: str
) -> None:
    actor = {"outsider": chain.outsider, "treasury": chain.actor(1), "provider": chain.providers[0]}[caller]
    with reverts(OwnableUnauthorizedAccount, account=actor.address):
        actor.send(chain.market.call(function, *args))


def test_ownership_moves_only_when_accepted_by_the_pending_owner(chain: Chain) -> None:
    new_owner = chain.outsider
    chain.owner.send(chain.market.call("transferOwnership", new_owner.address))
    with reverts(OwnableUnauthorizedAccount, account=chain.requester.address):
        chain.requester.send(chain.market.call("acceptOwnership"))
    with reverts(OwnableUnauthorizedAccount, account=new_owner.address):
        new_owner.send(chain.market.call("setFee", 0))  # pending is not owner yet

    new_owner.send(chain.market.call("acceptOwnership"))
    with reverts(OwnableUnauthorizedAccount, account=chain.owner.address):
        chain.owner.send(chain.market.call("setFee", 0))
    new_owner.send(chain.market.call("setFee", 0))


def test_fee_above_cap(chain: Chain) -> None:
    fee = chain.market.contract.functions.feeBps().call()
    with reverts(FeeTooHigh, feeBps=1001, maxFeeBps=1000):
        chain.owner.send(chain.market.call("setFee", 1001))
    with reverts(FeeTooHigh, feeBps=65535, maxFeeBps=1000):
        chain.owner.send(chain.market.call("setFee", 65535))
    assert chain.market.contract.functions.feeBps().call() == fee
    chain.owner.send(chain.market.call("setFee", 1000))  # the cap itself is allowed
    assert chain.market.contract.functions.feeBps().call() == 1000


@pytest.mark.parametrize(
    ("function", "args"),
    [("setTreasury", (ZERO,)), ("setPaymentToken", (ZERO, True)), ("setPaymentToken", (ZERO, False))],
    ids=["treasury", "allow-token", "disallow-token"],
)
def test_zero_address_rejected(chain: Chain, function: str, args: tuple[Any, ...]) -> None:
    treasury = chain.market.contract.functions.treasury().call()
    with reverts(ZeroAddress):
        chain.owner.send(chain.market.call(function, *args))
    assert chain.market.contract.functions.treasury().call() == treasury
    assert chain.market.contract.functions.isPaymentToken(ZERO).call()  # ETH stays payable


def test_payment_token_list_is_capped_at_256_entries(chain: Chain) -> None:
    listed = 3  # ETH, token, fot
    fresh = [to_checksum_address((0x1000 + i).to_bytes(20, "big")) for i in range(256 - listed)]
    sender = chain.owner.sender
    pending = [
        sender.submit(chain.market.call("setPaymentToken", token, True), gas=200_000) for token in fresh
    ]
    for tx in pending:
        sender.wait(tx)
    assert chain.market.contract.functions.isPaymentToken(fresh[-1]).call()

    extra = to_checksum_address((0x2000).to_bytes(20, "big"))
    with reverts(TooManyTokens):
        chain.owner.send(chain.market.call("setPaymentToken", extra, True))
    assert not chain.market.contract.functions.isPaymentToken(extra).call()
    # Tokens already on the list keep their id and can be toggled; unknown ones can be "disallowed".
    chain.owner.send(chain.market.call("setPaymentToken", fresh[0], False))
    chain.owner.send(chain.market.call("setPaymentToken", fresh[0], True))
    chain.owner.send(chain.market.call("setPaymentToken", extra, False))
