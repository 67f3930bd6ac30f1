"""Who may take a seat of a job, and from when: the contract's stake-weighted sortition, computed
off-chain exactly as `claimJob` checks it.

A job's draw has a seed (the hash of the block it was posted in, fixed by its first claim), and
weighs each provider by the stake it had bonded at the end of that block. A provider's ticket is a
64-bit number drawn from the seed, the job and its address; it is eligible once

    ticket * total_bonded < (stake_then * expected) << 64

where `expected`, the number of providers expected to be eligible, starts at twice the job's seats
and doubles every 1/32 of the claim window or every doubling period (the market's
`DOUBLING_PERIOD`, about a block time), whichever is sooner; from half the window on, every
provider that had stake is eligible. So the first providers eligible are a random sample weighted
by stake (splitting stake over several addresses gains nothing), and a job still fills when few
providers are online.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils import keccak

ELIGIBLE_PER_SEAT = 2
DOUBLINGS_PER_WINDOW = 32
DOUBLINGS_TO_ALL = 40  # past this many doublings every staked provider is eligible
OPEN_AFTER = 2  # every staked provider is eligible from 1/OPEN_AFTER of the claim window on


def seed_block(post_block: int, claim_block: int) -> int | None:
    """The block whose hash seeds a draw a claim in `claim_block` makes (before any claim fixed
    the seed): the posting block while the EVM still has its hash (256 blocks), then the latest
    block a multiple of 256 blocks after it. None within the posting block itself."""
    if claim_block <= post_block:
        return None
    if claim_block - post_block > 256:
        return post_block + 256 * ((claim_block - 1 - post_block) // 256)
    return post_block


def seed_of(block_hash: bytes) -> int:
    """The seed a block's hash gives: its low 32 bits (zero counts as 1, zero meaning "none")."""
    return int.from_bytes(bytes(block_hash)[-4:], "big") or 1


def ticket(seed: int, job_id: int, provider: str) -> int:
    """The provider's ticket for the job: `keccak256(abi.encode(seed, jobId, provider)) >> 192`
    (the three values are static, so their encoding is three 32-byte words)."""
    address = bytes.fromhex(provider.removeprefix("0x"))
    if len(address) != 20 or not 0 <= seed < 2**32 or not 0 <= job_id < 2**256:
        raise ValueError(f"no ticket for seed {seed}, job {job_id}, provider {provider!r}")
    encoded = seed.to_bytes(32, "big") + job_id.to_bytes(32, "big") + address.rjust(32, b"\0")
    return int.from_bytes(keccak(encoded), "big") >> 192


def ahead_of(seed: int, job_id: int, provider: str, stakes: Mapping[str, int]) -> int:
    """How many of the providers with `stakes` (address -> stake bonded at posting) the draw makes
    eligible before `provider`, or with it: its place in line, 0 for the first. Eligibility goes
    by ticket per unit of stake, so whoever is ahead of a provider is eligible whenever it is."""
    key = {address.lower(): stake for address, stake in stakes.items()}
    mine = key.get(provider.lower(), 0)
    if mine == 0:
        return sum(1 for stake in key.values() if stake > 0)
    me, my_ticket = provider.lower(), ticket(seed, job_id, provider)
    return sum(
        1
        for address, stake in key.items()
        if stake > 0 and address != me and ticket(seed, job_id, address) * mine <= my_ticket * stake
    )


@dataclass(frozen=True)
class Draw:
    """One job's sortition, as `getSortition` and the JobPosted event describe it."""

    job_id: int
    replicas: int
    posted_at: int  # the posting block's timestamp (the claim deadline less the claim window)
    claim_window: int
    seed: int  # 0: not drawn yet (the posting block is the latest one)
    total_bonded: int
    doubling_period: int  # the market's DOUBLING_PERIOD, in seconds
    fixed: bool = False  # a claim fixed the seed (else the next claim draws with it)

    def expected(self, elapsed: int) -> int | None:
        """How many providers are expected to be eligible `elapsed` seconds after posting; None
        once every provider with stake is."""
        if OPEN_AFTER * elapsed >= self.claim_window:
            return None
        doublings = max(elapsed // self.doubling_period, elapsed * DOUBLINGS_PER_WINDOW // self.claim_window)
        if doublings >= DOUBLINGS_TO_ALL:
            return None
        return (ELIGIBLE_PER_SEAT * self.replicas) << doublings

    def eligible(self, provider: str, stake_then: int, at: int) -> bool:
        """Whether `provider`, which had `stake_then` bonded when the job was posted, may claim a
        seat in a block with timestamp `at`."""
        if stake_then == 0 or self.seed == 0 or at < self.posted_at:
            return False
        expected = self.expected(at - self.posted_at)
        if expected is None:
            return True
        return ticket(self.seed, self.job_id, provider) * self.total_bonded < (stake_then * expected) << 64

    def eligible_from(self, provider: str, stake_then: int) -> int | None:
        """The earliest block timestamp at which `provider` may claim (None: never, it had no
        stake, or the seed is not drawn yet)."""
        if stake_then == 0 or self.seed == 0:
            return None
        mine = ticket(self.seed, self.job_id, provider) * self.total_bonded
        window = self.claim_window
        open_from = -(-window // OPEN_AFTER)  # ceil: the first elapsed second with 2 * elapsed >= window
        for doublings in range(DOUBLINGS_TO_ALL):
            # The first second with at least this many doublings, by either schedule.
            starts = min(doublings * self.doubling_period, -(-doublings * window // DOUBLINGS_PER_WINDOW))
            if starts >= open_from:
                break
            if mine < (stake_then * ((ELIGIBLE_PER_SEAT * self.replicas) << doublings)) << 64:
                return self.posted_at + starts
        return self.posted_at + min(open_from, DOUBLINGS_TO_ALL * self.doubling_period)
