"""The claim policy: which open jobs a provider takes.

Pure functions of the job, its plan and the provider's settings, so every rule has a unit test.
When a provider may take a seat is not its choice: the contract's stake-weighted draw decides
(`marketplace.protocol.sortition`), and intake claims each accepted job as soon as it is eligible.
"""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.protocol.spec import JobSpec, WasmWorkload
from marketplace.protocol.views import JobView, PostedJob

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


def refuse_windows(job: JobView, claim_window: int, config: ProviderConfig) -> Refusal | None:
    """Checks of the job's windows: how long collateral could stay locked, and how long a reveal
    may be waited for, against this provider's limits."""
    for name, window, limit in (
        ("claim window", claim_window, config.max_claim_window),
        ("run timeout", job.run_timeout, config.max_run_timeout),
        ("reveal window", job.reveal_window, config.max_reveal_window),
    ):
        if window > limit:
            return Refusal("window", f"its {name} is {window} s, over this provider's {limit} s")
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
