"""The provider's claim policy as pure functions: refusals and capacity."""

from __future__ import annotations

import dataclasses
from typing import Any

from marketplace.protocol.hashing import Hash32
from marketplace.protocol.spec import JobSpec, parse_spec
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import ETH, JobView, PostedJob
from provider.config import ProviderConfig
from provider.policy import Capacity, refuse_before_fetching, refuse_plan, refuse_windows
from provider.workloads import plan

MARKET = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20


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


def test_windows_longer_than_the_providers_limits_are_refused() -> None:
    job = JobView(
        job_id=1, requester="0x" + "33" * 20, token=ETH, status=JobStatus.OPEN, replicas=1, claims=0,
        commits=0, reveals=0, deadline=0, reward_per_replica=1, collateral_per_replica=1,
        run_timeout=3_600, reveal_window=600, fee_bps=100,
    )  # fmt: skip
    limits = config(max_claim_window=600, max_run_timeout=3_600, max_reveal_window=600)
    assert refuse_windows(job, 600, limits) is None
    for claim_window, run_timeout, reveal_window, which in (
        (601, 3_600, 600, "claim window"),
        (600, 3_601, 600, "run timeout"),
        (600, 3_600, 601, "reveal window"),
    ):
        longer = dataclasses.replace(job, run_timeout=run_timeout, reveal_window=reveal_window)
        refusal = refuse_windows(longer, claim_window, limits)
        assert refusal is not None and refusal.code == "window" and which in refusal.reason


def test_capacity_reserves_job_slots_and_collateral() -> None:
    capacity = Capacity(jobs=2, collateral=3 * 10**17)
    assert capacity.take(posted(collateral=2 * 10**17))
    assert not capacity.take(posted(collateral=2 * 10**17))  # 10**17 left
    assert capacity.take(posted(collateral=10**17))
    assert not capacity.take(posted(collateral=0))  # no job slot left
    assert capacity == Capacity(jobs=0, collateral=0)
