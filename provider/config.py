"""The provider daemon's settings: one validated object, from `cmarket provider start` options or
CMARKET_PROVIDER_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Byzantine(StrEnum):
    """Dishonest behaviours, for showing and testing that the protocol slashes them."""

    WRONG_RESULT = "wrong-result"  # commits and reveals a hash that is not the workload's result
    NO_REVEAL = "no-reveal"  # commits, then never reveals
    COPY = "copy"  # copies another provider's commitment and replays its reveal


class ProviderConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CMARKET_PROVIDER_", extra="ignore")

    rpc_url: str = Field("http://127.0.0.1:8545", description="Ethereum JSON-RPC endpoint")
    market: str = Field(description="ComputeMarket address")
    api_url: str = Field("http://127.0.0.1:8000", description="marketplace service URL")
    state_path: Path = Field(Path("provider-state"), description="directory of the local state and results")
    ray_address: str | None = Field(None, description="Ray cluster address; None starts a local Ray")
    ray_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray (default: all)")

    # ── policy ──
    workloads: frozenset[str] | None = Field(
        None, description='built-in names and "wasm" this provider runs; None: all it knows'
    )
    min_price_per_fuel: int = Field(0, ge=0, description="least reward per replica per fuel unit, wei")
    collateral_budget: int | None = Field(
        None, ge=0, description="most stake to lock as collateral at once, wei; None: all free stake"
    )
    max_concurrent_jobs: int = Field(64, ge=1, description="jobs held (claimed, not yet settled) at once")
    max_batch: int = Field(100, ge=1, le=500, description="most jobs in one batch transaction")
    tokens: frozenset[str] | None = Field(None, description="payment tokens accepted; None: any")
    max_claim_window: int = Field(6 * 3600, ge=1, description="longest claim window accepted, seconds")
    max_run_timeout: int = Field(24 * 3600, ge=1, description="longest run timeout accepted, seconds")
    max_reveal_window: int = Field(24 * 3600, ge=1, description="longest reveal window accepted, seconds")
    runner_up_delay: float = Field(
        2.0,
        ge=0,
        le=600,
        description="seconds to wait, once eligible, before claiming a job that as many providers ahead "
        "in its draw as it has seats may claim too",
    )

    # ── staking and earnings ──
    stake: int = Field(0, ge=0, description="stake to keep free at start-up (tops up if below), wei")
    metadata_uri: str = Field("", max_length=2048, description="registered with the market")
    withdraw_threshold: int = Field(10**16, ge=0, description="withdraw a token's earnings above this")

    # ── chain ──
    finality_depth: int = Field(
        8, ge=1, le=1024, description="blocks after which a step is final (a reorg deeper is not followed)"
    )

    # ── timing ──
    poll_interval: float = Field(0.1, gt=0, le=10, description="seconds between rounds when idle")
    drain_timeout: float = Field(30.0, ge=0, description="seconds SIGTERM waits for in-flight work")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="serve /metrics here")

    byzantine: Byzantine | None = Field(None, description="a dishonest mode, for tests and demos")

    @field_validator("workloads", "tokens", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip()) or None
        return value

    @property
    def db_path(self) -> Path:
        return self.state_path / "state.db"

    @property
    def results_dir(self) -> Path:
        return self.state_path / "results"
