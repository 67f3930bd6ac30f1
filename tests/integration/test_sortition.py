"""Stake-weighted sortition on a real anvil: the contract and the SDK agree on who may claim and
from when; stake bonded after posting does not count; nobody without stake ever gets a seat; and
over a few hundred jobs, seats follow stake."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from eth_account import Account

from marketplace.chain.deploy import DEVNET_DOUBLING_PERIOD
from marketplace.chain.market import MarketActor
from marketplace.chain.sender import Call, TxSender
from marketplace.protocol.reverts import NotEligible, SeedNotReady
from marketplace.protocol.sortition import Draw
from marketplace.protocol.views import JobParams
from tests.helpers import ETHER, Chain, post


def plain(chain: Chain, index: int) -> MarketActor:
    """An actor that claims when told, whether or not the draw allows it."""
    return chain.actor(index)


def test_the_contract_and_the_sdk_agree_on_who_may_claim_and_from_when(chain: Chain) -> None:
    providers = [plain(chain, index) for index in range(4, 9)]
    jobs = [post(chain, replicas=replicas, claim_window=320) for replicas in (1, 1, 2, 3)]
    chain.devnet.mine()  # the posting blocks are over: the seeds are known
    starts = {
        (job_id, p.address): chain.market.eligible_from(job_id, p.address)
        for job_id in jobs
        for p in providers
    }
    assert all(at is not None for at in starts.values())
    posted_at = chain.market.draw(jobs[-1]).posted_at
    for moment in sorted({at for at in starts.values() if at is not None} | {posted_at + 160}):
        if moment > chain.now():
            chain.warp(moment)
            chain.devnet.mine()
        now = chain.now()  # the moment, or later where the clock passed it (a busy machine)
        for (job_id, address), at in starts.items():
            assert chain.market.is_eligible(job_id, address) == (at is not None and at <= now), (
                job_id,
                address,
            )


def test_a_claim_before_the_draw_allows_it_reverts_and_after_it_takes_the_seat(chain: Chain) -> None:
    providers = [plain(chain, index) for index in range(4, 9)]
    for _ in range(20):  # a job whose draw does not let every provider claim at once
        job_id = post(chain, claim_window=320)
        chain.devnet.mine()
        starts = {p.address: chain.market.eligible_from(job_id, p.address) for p in providers}
        late = [p for p in providers if (starts[p.address] or 0) > chain.now() + 1]
        if late:
            break
    else:
        pytest.fail("twenty draws in a row let every provider claim at once")
    waiting = late[0]
    chain.warp((starts[waiting.address] or 0) - 1)  # one second early, however slow this machine
    with pytest.raises(NotEligible):
        waiting.claim(job_id)
    chain.warp(starts[waiting.address] or 0)
    result = waiting.claim(job_id)
    assert result.event("JobClaimed")["provider"] == waiting.address


def test_a_claim_in_the_posting_block_itself_waits_for_the_seed(chain: Chain) -> None:
    provider = plain(chain, 4)
    chain.devnet.call("evm_setAutomine", False)
    try:
        posting = chain.requester.submit(chain.market.calls.post_job(JobParams(os.urandom(32), ETHER)))
        claim = provider.sender.submit(
            chain.market.calls.claim_job(chain.market.job_count() + 1), gas=300_000
        )
        chain.devnet.mine()
    finally:
        chain.devnet.call("evm_setAutomine", True)
    chain.requester.result(posting)
    with pytest.raises(SeedNotReady):
        provider.sender.wait(claim)


def test_stake_bonded_after_the_posting_does_not_count(chain: Chain) -> None:
    """The grinding attack: an account that sees the seed and only then stakes (it could have
    ground fresh addresses offline for a good ticket) is not eligible, not even once everyone
    with stake is; and stake added by a provider after posting does not raise its chances."""
    job_id = post(chain, claim_window=320)
    chain.devnet.mine()
    grinder = Account.create()
    chain.owner.sender.transact(Call(grinder.address, b"", 20 * ETHER))
    newcomer = MarketActor(chain.market, TxSender(chain.w3, grinder))
    newcomer.register("grinder://")
    newcomer.stake(10 * ETHER)  # more than any provider: it would be eligible at once, had it counted
    assert chain.market.eligible_from(job_id, newcomer.address) is None
    chain.sleep(160)  # half the window: every provider that had stake then may claim
    with pytest.raises(NotEligible):
        newcomer.claim(job_id)

    topper = plain(chain, 8)
    before = chain.market.eligible_from(job_id, topper.address)
    topper.stake(500 * ETHER)
    assert chain.market.eligible_from(job_id, topper.address) == before


def test_an_address_without_stake_never_takes_a_seat(chain: Chain) -> None:
    """Zero-stake squatting: registered, no stake, and the draw never picks it."""
    squatter = plain(chain, 9)
    squatter.register("squatter://")
    job_id = post(chain, replicas=3, claim_window=320)
    chain.sleep(161)
    with pytest.raises(NotEligible):
        squatter.claim(job_id)
    assert chain.market.job(job_id).claims == 0


def seats_on_chain(chain: Chain, stakes: list[int], jobs: int = 300) -> list[int]:
    """Seats won on-chain by fresh accounts with `stakes` (in ETH), the only staked providers,
    over `jobs` single-seat jobs: each seat goes to the first of them eligible (ties in a random
    order, as one block's transactions are), and is taken with a real claim."""
    stakers = []
    for stake in stakes:
        account = Account.create()
        chain.owner.sender.transact(Call(account.address, b"", stake + 2 * ETHER))
        actor = MarketActor(chain.market, TxSender(chain.w3, account))
        actor.register("ratio://")
        actor.stake(stake)
        stakers.append(actor)
    for index in range(4, 9):  # the fixture's providers leave: only these are drawn
        plain(chain, index).request_unstake(
            chain.market.provider(chain.devnet.accounts[index].address).free_stake
        )
    rng = random.Random(12)
    won = Counter[str]()
    params = [
        JobParams(os.urandom(32), 10**12, collateral_per_replica=10**12, claim_window=320)
        for _ in range(jobs)
    ]
    ids: list[int] = []
    for start in range(0, jobs, 100):
        ids += chain.requester.post_jobs(params[start : start + 100])[0]
    chain.devnet.mine()
    plan: dict[tuple[int, str], list[int]] = {}
    for job_id in ids:
        starts = {s.address: chain.market.eligible_from(job_id, s.address) for s in stakers}
        first = min(stakers, key=lambda s: (starts[s.address] or 2**63, rng.random()))
        plan.setdefault((starts[first.address] or 0, first.address), []).append(job_id)
        won[first.address] += 1
    by_address: dict[str, MarketActor] = {str(s.address): s for s in stakers}
    for (at, address), job_ids in sorted(plan.items()):
        if at > chain.now():
            chain.warp(at)
        claimed = by_address[address].claim_many(job_ids)
        assert len(claimed.named("JobClaimed")) == len(job_ids)
    return [won[s.address] for s in stakers]


def expected_shares(stakes: list[int], draws: int = 4_000) -> list[float]:
    """Each staker's share of seats by the draw's own rule, over many simulated jobs. The rule
    follows stake only roughly: the first eligible tie (twice as many are expected eligible as there
    are seats), so a small staker's share comes out a little below its stake share."""
    rng, total, won = random.Random(5), sum(stakes), [0] * len(stakes)
    addresses = [f"0x{index + 1:040x}" for index in range(len(stakes))]
    for job_id in range(1, draws + 1):
        draw = Draw(job_id, 1, 0, 320, rng.getrandbits(32) or 1, total, DEVNET_DOUBLING_PERIOD)
        starts = [draw.eligible_from(a, stake) for a, stake in zip(addresses, stakes, strict=True)]
        never = 2**63
        won[
            min(range(len(stakes)), key=lambda i: (never if starts[i] is None else starts[i], rng.random()))
        ] += 1
    return [count / draws for count in won]


@pytest.mark.slow
def test_seats_follow_stake_over_a_few_hundred_jobs(chain: Chain) -> None:
    """Three providers staked 1:2:7: over 300 jobs, seats go in that order, each share within 9
    points (3.5 standard deviations) of what the rule gives (10/20/70% would be stake alone)."""
    stakes = [share * ETHER for share in (1, 2, 7)]
    won = seats_on_chain(chain, stakes)
    assert won[0] < won[1] < won[2], won
    for seats, expected in zip(won, expected_shares(stakes), strict=True):
        assert abs(seats / sum(won) - expected) < 0.09, (won, expected)


@pytest.mark.slow
def test_stake_split_over_ten_addresses_wins_no_more_seats(chain: Chain) -> None:
    """An attacker with 30% of the stake split over 10 addresses, against one honest provider with
    70%: over 300 jobs its addresses together win no more seats than one address with 30% would
    (the rule gives that one 30%, the ten about 25%)."""
    stakes = [3 * ETHER // 10] * 10 + [7 * ETHER]
    one_address = expected_shares([3 * ETHER, 7 * ETHER])[0]
    assert sum(expected_shares(stakes)[:10]) <= one_address
    won = seats_on_chain(chain, stakes)
    assert sum(won[:10]) / sum(won) < one_address + 0.06, won  # 0.06: over 2 standard deviations
