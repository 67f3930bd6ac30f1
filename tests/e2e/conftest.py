"""End-to-end fixtures: the real marketplace (devnet, service, Ray, provider daemons as processes)
and a requester that posts through it and reads outcomes from the chain itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from marketplace.chain.reads import MarketReader
from marketplace.chain.rpc import RpcClient
from marketplace.cli.sandbox import ETHER, ProviderSpec, Sandbox
from marketplace.client import MarketplaceApi, Requester, SubmittedJob
from marketplace.protocol.events import Event
from marketplace.protocol.hashing import sha256
from marketplace.protocol.status import JobStatus

T = TypeVar("T")
COLLATERAL = ETHER // 10
REWARD = ETHER // 100


def builtin(name: str, args: dict[str, Any], fuel: int, timeout_s: int = 60) -> dict[str, Any]:
    return {
        "workload": {"kind": "builtin", "name": name},
        "args": args,
        "limits": {"fuel": fuel, "memory_mb": 64, "timeout_s": timeout_s},
    }


def wasm(module: bytes, fuel: int) -> dict[str, Any]:
    return {
        "workload": {"kind": "wasm", "module": sha256(module).hex(), "entry": "run"},
        "limits": {"fuel": fuel, "memory_mb": 16, "timeout_s": 30},
    }


def eventually(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """The first truthy answer of `check` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Market:
    """The sandbox seen by a requester (carol, devnet account 2) and by the chain."""

    sandbox: Sandbox
    requester: Requester
    reader: MarketReader

    @property
    def api(self) -> MarketplaceApi:
        return self.requester.api

    def submit(self, spec: dict[str, Any], inputs: Sequence[bytes] = (), **terms: Any) -> SubmittedJob:
        options = {
            "reward_per_replica": REWARD, "replicas": 1, "collateral_per_replica": COLLATERAL,
            "claim_window": 120, "run_timeout": 60, "reveal_window": 60, **terms,
        }  # fmt: skip
        return self.requester.submit(spec, inputs, **options)

    def status(self, job_id: int) -> JobStatus:
        return self.reader.jobs([job_id])[job_id].status

    def wait_settled(self, job_id: int, timeout: float = 60) -> JobStatus:
        """Waits (on the chain, not the index) until the job is completed, failed or cancelled."""
        terminal = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}

        def settled() -> JobStatus | None:
            status = self.status(job_id)
            return status if status in terminal else None

        return eventually(settled, timeout, f"job {job_id} to settle")

    def events(self, job_id: int, name: str | None = None) -> list[Event]:
        """The job's events as the chain logged them."""
        return [e for e in self.all_events(name) if e.args.get("jobId") == job_id]

    def all_events(self, name: str | None = None) -> list[Event]:
        """Every market event (the job id is in a different topic of different events)."""
        market = self.requester.market
        logs = market.w3.eth.get_logs({"address": market.address, "fromBlock": 0})
        return [e for e in market.decode_logs(logs) if name is None or e.name == name]

    def address(self, provider: str) -> str:
        return self.sandbox.address_of(provider)


def open_market(sandbox: Sandbox) -> Market:
    assert sandbox.world is not None
    requester = Requester(MarketplaceApi(sandbox.api_url), sandbox.world.actor(sandbox.node, 2))
    return Market(sandbox, requester, MarketReader(RpcClient(sandbox.node.rpc_url), sandbox.world.market))


@pytest.fixture(scope="module")
def sandbox_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[Sequence[ProviderSpec]], Sandbox]]:
    """Starts one sandbox for a module (its logs are printed if starting fails)."""
    started: list[Sandbox] = []

    def start(specs: Sequence[ProviderSpec]) -> Sandbox:
        sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"), specs)
        started.append(sandbox)
        return sandbox.start()

    yield start
    for sandbox in started:
        sandbox.stop()


def log_of(sandbox: Sandbox, name: str) -> str:
    return Path(sandbox.providers[name].log_path).read_text(errors="replace")
