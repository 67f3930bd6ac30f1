"""The claim policy: which open jobs a provider takes, and which of them it should take first.

Pure functions of the job, its plan and the provider's settings, so every rule has a unit test.
Providers spread jobs among themselves without talking: each ranks the known providers for a job
by a hash of (job id, provider address) (rendezvous hashing) and claims at once only the jobs it
ranks among the first `replicas` for, leaving the rest a moment (`claim_delay`) before taking
them too. Nobody is excluded (a missing provider's jobs are still taken after the delay), and
claim races, which cost gas, become rare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from marketplace.protocol.spec import JobSpec, WasmWorkload
from marketplace.protocol.views import PostedJob

from .config import ProviderConfig
from .workloads import Plan


@dataclass(frozen=True)
class Refusal:
    """Why a provider will not take a job (kept in its log and metrics)."""

    code: str
    reason: str


def workload_key(spec: JobSpec) -> str:
    """What `--workloads` names: a built-in's name, or "wasm" for any module."""
    return "wasm" if isinstance(spec.workload, WasmWorkload) else spec.workload.name


def refuse_before_fetching(job: PostedJob, config: ProviderConfig) -> Refusal | None:
    """Checks that need only the posted terms."""
    if config.tokens is not None and job.token not in config.tokens:
        return Refusal("token", f"paid in {job.token}, which this provider does not accept")
    if config.collateral_budget is not None and job.collateral_per_replica > config.collateral_budget:
        return Refusal("collateral", f"asks {job.collateral_per_replica} wei of collateral, over the budget")
    return None


def refuse_plan(job: PostedJob, spec: JobSpec, plan: Plan, config: ProviderConfig) -> Refusal | None:
    """Checks that need the spec and its plan: supported workload and price per fuel unit."""
    key = workload_key(spec)
    if config.workloads is not None and key not in config.workloads:
        return Refusal("workload", f"runs {key}, which this provider does not offer")
    fuel = max(plan.fuel_estimate, 1)
    if job.reward_per_replica < config.min_price_per_fuel * fuel:
        return Refusal(
            "price",
            f"pays {job.reward_per_replica} wei for up to {fuel} fuel, "
            f"under {config.min_price_per_fuel} wei per fuel unit",
        )
    return None


def rendezvous_rank(job_id: int, provider: str, providers: Iterable[str]) -> int:
    """`provider`'s place (0 = first) among `providers` in job `job_id`'s preference order."""

    def weight(address: str) -> bytes:
        return hashlib.sha256(f"{job_id}:{address.lower()}".encode()).digest()

    mine = weight(provider)
    return sum(1 for other in set(providers) if other.lower() != provider.lower() and weight(other) < mine)


def claim_now(
    job: PostedJob, provider: str, providers: Iterable[str], seconds_open: float, delay: float
) -> bool:
    """Whether to claim a job now: at once if it is meant for this provider, else after `delay`."""
    return seconds_open >= delay or rendezvous_rank(job.job_id, provider, providers) < job.replicas


@dataclass
class Capacity:
    """What the provider can still take on: job slots and collateral."""

    jobs: int
    collateral: int

    def take(self, job: PostedJob) -> bool:
        """Reserves room for `job`; False (and nothing reserved) when there is none."""
        if self.jobs < 1 or job.collateral_per_replica > self.collateral:
            return False
        self.jobs -= 1
        self.collateral -= job.collateral_per_replica
        return True
