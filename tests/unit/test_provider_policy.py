"""The provider's claim policy as pure functions: refusals, rendezvous claiming, capacity."""

from __future__ import annotations

from collections import Counter
from typing import Any

from marketplace.protocol.hashing import Hash32
from marketplace.protocol.spec import JobSpec, parse_spec
from marketplace.protocol.views import ETH, PostedJob
from provider.config import ProviderConfig
from provider.policy import Capacity, claim_now, refuse_before_fetching, refuse_plan, rendezvous_rank
from provider.workloads import plan

MARKET = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
PROVIDERS = [f"0x{index:040x}" for index in range(1, 6)]


def posted(
    job_id: int = 1, *, replicas: int = 1, reward: int = 10**16, collateral: int = 10**17
) -> PostedJob:
    return PostedJob(
        job_id, "0x" + "33" * 20, Hash32(b"\xab" * 32), ETH, reward, replicas, collateral, 10_000, 1
    )


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
