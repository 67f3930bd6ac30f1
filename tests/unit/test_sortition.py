"""The draw off-chain: tickets, the eligibility threshold over the claim window, and what it does
to seat shares (stake-weighted, and no gain from splitting stake over addresses). The contract's
agreement with it is checked on anvil in tests/integration/test_sortition.py."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from marketplace.protocol.sortition import Draw, ahead_of, seed_block, seed_of, ticket

WINDOW = 320
DOUBLING_PERIOD = 8


def address(index: int) -> str:
    return f"0x{index + 1:040x}"


def draw(seed: int, job_id: int = 1, replicas: int = 1, total: int = 10) -> Draw:
    return Draw(
        job_id=job_id,
        replicas=replicas,
        posted_at=1_000,
        claim_window=WINDOW,
        seed=seed,
        total_bonded=total,
        doubling_period=DOUBLING_PERIOD,
    )


def seat_shares(stakes: dict[str, int], jobs: int, rng: random.Random, replicas: int = 1) -> dict[str, float]:
    """Who takes the seats when every address claims as soon as it is eligible (ties in a random
    order, as transactions of one block are)."""
    total, won = sum(stakes.values()), dict.fromkeys(stakes, 0)
    for job_id in range(1, jobs + 1):
        job = draw(rng.getrandbits(32) or 1, job_id, replicas, total)
        times = {a: job.eligible_from(a, stake) for a, stake in stakes.items()}
        order = sorted(stakes, key=lambda a: (times[a] if times[a] is not None else 2**63, rng.random()))
        for winner in order[:replicas]:
            won[winner] += 1
    return {a: won[a] / (jobs * replicas) for a in stakes}


@given(st.integers(1, 2**32 - 1), st.integers(1, 10**6), st.integers(0, 9), st.integers(1, 10))
def test_eligible_from_is_the_first_moment_of_eligibility(
    seed: int, job_id: int, who: int, stake: int
) -> None:
    job = draw(seed, job_id)
    start = job.eligible_from(address(who), stake)
    assert start is not None and job.posted_at <= start <= job.posted_at + WINDOW // 2
    assert job.eligible(address(who), stake, start)
    if start > job.posted_at:
        assert not job.eligible(address(who), stake, start - 1)
    assert all(job.eligible(address(who), stake, at) for at in range(start, job.posted_at + WINDOW))


def test_nobody_without_stake_and_nobody_before_the_seed() -> None:
    assert draw(7).eligible_from(address(0), 0) is None
    assert not draw(7).eligible(address(0), 0, 10**9)
    assert draw(0).eligible_from(address(0), 5) is None  # not drawn yet
    assert not draw(7).eligible(address(0), 10, 999)  # before it was posted


def test_everyone_with_stake_is_eligible_from_half_the_window() -> None:
    job = draw(99, total=10**30)
    assert all(job.eligible(address(i), 1, job.posted_at + WINDOW // 2) for i in range(50))


def test_tickets_are_the_contracts_formula() -> None:
    """keccak256(abi.encode(uint32 seed, uint256 jobId, address provider)) >> 192."""
    from eth_utils import keccak

    provider = address(3)
    encoded = (5).to_bytes(32, "big") + (42).to_bytes(32, "big") + bytes(12) + bytes.fromhex(provider[2:])
    assert ticket(5, 42, provider) == int.from_bytes(keccak(encoded), "big") >> 192


@given(st.integers(1, 2**32 - 1), st.integers(1, 10**6), st.lists(st.integers(1, 50), min_size=2, max_size=8))
def test_whoever_is_ahead_in_line_is_eligible_no_later(seed: int, job_id: int, stakes: list[int]) -> None:
    by_address = {address(i): stake for i, stake in enumerate(stakes)}
    job = draw(seed, job_id, total=sum(stakes))
    places = {a: ahead_of(seed, job_id, a, by_address) for a in by_address}
    starts = {a: job.eligible_from(a, stake) or 0 for a, stake in by_address.items()}
    assert min(places.values()) == 0
    for a in by_address:
        for b in by_address:
            if places[a] < places[b]:
                assert starts[a] <= starts[b]
    assert ahead_of(seed, job_id, address(99), by_address) == len(stakes)  # no stake: last in line


def test_the_seed_comes_from_the_posting_block_then_from_the_latest_256_block_anchor() -> None:
    assert seed_block(100, 100) is None  # within the posting block
    assert seed_block(100, 101) == seed_block(100, 356) == 100
    assert seed_block(100, 357) == seed_block(100, 612) == 356
    assert seed_block(100, 613) == 612
    assert seed_of(b"\x00" * 28 + b"\x00\x00\x01\x02") == 258
    assert seed_of(bytes(32)) == 1


def test_seats_follow_stake_one_two_seven() -> None:
    shares = seat_shares({address(0): 1, address(1): 2, address(2): 7}, 3_000, random.Random(7))
    assert abs(shares[address(0)] - 0.1) < 0.03
    assert abs(shares[address(1)] - 0.2) < 0.03
    assert abs(shares[address(2)] - 0.7) < 0.03


def test_splitting_stake_over_ten_addresses_wins_no_more_seats() -> None:
    honest = {address(10 + i): 175 for i in range(4)}
    whole = seat_shares({**honest, address(0): 300}, 3_000, random.Random(11))[address(0)]
    parts = {address(100 + i): 30 for i in range(10)}
    split = seat_shares({**honest, **parts}, 3_000, random.Random(11))
    assert abs(whole - 0.3) < 0.04
    assert sum(split[a] for a in parts) <= whole + 0.02
