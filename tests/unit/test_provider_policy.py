"""The provider's decisions as pure functions: refusals, rendezvous claiming, capacity, and what a
settle round sends for each on-chain job state."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from marketplace.chain.market import ETH, JobView
from marketplace.chain.reads import PostedJob
from marketplace.errors import JobStatus
from marketplace.spec import JobSpec, parse_spec
from provider.config import ProviderConfig
from provider.daemon import SettlePlan
from provider.policy import Capacity, claim_now, refuse_before_fetching, refuse_plan, rendezvous_rank
from provider.state import Stage, WorkRecord
from provider.workloads import plan

MARKET = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
PROVIDERS = [f"0x{index:040x}" for index in range(1, 6)]


def posted(
    job_id: int = 1, *, replicas: int = 1, reward: int = 10**16, collateral: int = 10**17
) -> PostedJob:
    return PostedJob(job_id, "0x" + "33" * 20, "ab" * 32, ETH, reward, replicas, collateral, 10_000, 1)


def config(**options: Any) -> ProviderConfig:
    return ProviderConfig(market=MARKET, **options)


def sha_spec(rounds: int = 1_000) -> JobSpec:
    return parse_spec(
        {"workload": {"kind": "builtin", "name": "iterated-sha256"}, "args": {"seed": "s", "rounds": rounds},
         "limits": {"fuel": rounds, "memory_mb": 16, "timeout_s": 10}}
    )  # fmt: skip


def test_tokens_and_collateral_are_checked_before_fetching_anything() -> None:
    assert refuse_before_fetching(posted(), config()) is None
    refusal = refuse_before_fetching(posted(), config(tokens=TOKEN))
    assert refusal is not None and refusal.code == "token"
    refusal = refuse_before_fetching(posted(collateral=10**18), config(collateral_budget=10**17))
    assert refusal is not None and refusal.code == "collateral"


def test_workload_and_price_per_fuel_are_checked_on_the_plan() -> None:
    spec = sha_spec(1_000)
    job_plan = plan(spec, {})
    assert refuse_plan(posted(reward=10**6), spec, job_plan, config(min_price_per_fuel=1_000)) is None
    refusal = refuse_plan(posted(reward=10**6 - 1), spec, job_plan, config(min_price_per_fuel=1_000))
    assert refusal is not None and refusal.code == "price"
    refusal = refuse_plan(posted(), spec, job_plan, config(workloads="wasm,word-count"))
    assert refusal is not None and refusal.code == "workload"
    assert refuse_plan(posted(), spec, job_plan, config(workloads="iterated-sha256")) is None


def test_rendezvous_gives_each_job_one_order_every_provider_agrees_on() -> None:
    for job_id in range(1, 50):
        ranks = sorted(rendezvous_rank(job_id, provider, PROVIDERS) for provider in PROVIDERS)
        assert ranks == list(range(len(PROVIDERS)))  # a permutation: exactly one first, one second...
        assert rendezvous_rank(
            job_id, PROVIDERS[0].upper().replace("0X", "0x"), PROVIDERS
        ) == rendezvous_rank(job_id, PROVIDERS[0], PROVIDERS)


def test_rendezvous_spreads_jobs_evenly() -> None:
    firsts = Counter(
        next(p for p in PROVIDERS if rendezvous_rank(job_id, p, PROVIDERS) == 0) for job_id in range(5_000)
    )
    assert set(firsts) == set(PROVIDERS)
    assert max(firsts.values()) < 1.2 * min(firsts.values())


def test_a_job_meant_for_others_is_claimed_only_after_the_delay() -> None:
    job = posted(7, replicas=2)
    mine = [p for p in PROVIDERS if rendezvous_rank(7, p, PROVIDERS) < 2]
    others = [p for p in PROVIDERS if p not in mine]
    assert all(claim_now(job, p, PROVIDERS, seconds_open=0.0, delay=0.5) for p in mine)
    assert not any(claim_now(job, p, PROVIDERS, seconds_open=0.4, delay=0.5) for p in others)
    assert all(claim_now(job, p, PROVIDERS, seconds_open=0.5, delay=0.5) for p in others)


def test_capacity_reserves_job_slots_and_collateral() -> None:
    capacity = Capacity(jobs=2, collateral=3 * 10**17)
    assert capacity.take(posted(collateral=2 * 10**17))
    assert not capacity.take(posted(collateral=2 * 10**17))  # 10**17 left
    assert capacity.take(posted(collateral=10**17))
    assert not capacity.take(posted(collateral=0))  # no job slot left
    assert capacity == Capacity(jobs=0, collateral=0)


def record(stage: Stage, replicas: int = 3) -> WorkRecord:
    return WorkRecord(1, stage, replicas, "ab" * 32, ETH, 10**16, 10**17)


def view(
    status: JobStatus, *, replicas: int = 3, commits: int = 0, reveals: int = 0, deadline: int = 1_000
) -> JobView:
    return JobView(
        job_id=1, requester="0x" + "33" * 20, token=ETH, status=status, replicas=replicas, claims=replicas,
        commits=commits, reveals=reveals, deadline=deadline, reward_per_replica=10**16,
        collateral_per_replica=10**17, run_timeout=60, reveal_window=60, fee_bps=100,
    )  # fmt: skip


def decide(stage: Stage, job: JobView, now: int = 900, *, reveals: bool = True, copies: bool = False) -> str:
    plan_ = SettlePlan()
    plan_.add(record(stage, job.replicas), job, now, reveals, copies=copies)
    chosen = [name for name in ("submit", "commit", "reveal", "finalize", "cancel") if getattr(plan_, name)]
    assert len(chosen) <= 1
    return chosen[0] if chosen else "wait"


@pytest.mark.parametrize(
    ("stage", "job", "now", "expected"),
    [
        (Stage.COMPUTED, view(JobStatus.RUNNING, replicas=1), 900, "submit"),
        (Stage.COMPUTED, view(JobStatus.RUNNING), 900, "commit"),
        (Stage.CLAIMED, view(JobStatus.RUNNING), 900, "wait"),  # still computing
        (Stage.COMPUTED, view(JobStatus.OPEN), 900, "wait"),  # the other slots are not claimed yet
        (Stage.COMPUTED, view(JobStatus.OPEN, deadline=900), 900, "cancel"),  # ... and never will be
        (Stage.COMMITTED, view(JobStatus.RUNNING, commits=2), 900, "wait"),  # others still to commit
        (Stage.COMMITTED, view(JobStatus.REVEALING, commits=3), 900, "reveal"),
        # `now` is the latest block's time: a transaction sent now is mined at the earliest a second later.
        (Stage.COMMITTED, view(JobStatus.REVEALING, commits=3, deadline=999), 998, "reveal"),
        (Stage.COMMITTED, view(JobStatus.REVEALING, commits=3, deadline=999), 999, "finalize"),
        (Stage.REVEALED, view(JobStatus.REVEALING, commits=3, reveals=2), 900, "wait"),
        (Stage.REVEALED, view(JobStatus.REVEALING, commits=3, reveals=3), 900, "finalize"),
        (Stage.REVEALED, view(JobStatus.REVEALING, commits=3, reveals=2, deadline=950), 950, "finalize"),
        (Stage.COMPUTED, view(JobStatus.REVEALING, commits=2, deadline=950), 900, "wait"),  # missed commit
        (Stage.COMPUTED, view(JobStatus.REVEALING, commits=2, reveals=2), 900, "finalize"),
    ],
)
def test_settle_round_sends_what_the_job_state_needs(
    stage: Stage, job: JobView, now: int, expected: str
) -> None:
    assert decide(stage, job, now) == expected


def test_a_silent_provider_never_reveals_and_a_copier_commits_without_computing() -> None:
    assert decide(Stage.COMMITTED, view(JobStatus.REVEALING, commits=3), reveals=False) == "wait"
    assert decide(Stage.CLAIMED, view(JobStatus.RUNNING), copies=True) == "commit"
    assert decide(Stage.CLAIMED, view(JobStatus.RUNNING, replicas=1), copies=True) == "wait"
