"""Provider daemons survive what real machines do: a `kill -9` between commit and reveal, a Ray
worker dying mid-task, the marketplace service going away, and a SIGTERM.

Two honest daemons (alice, bob) on one Ray; a test that needs to hold a job in its commit phase
plays a third provider itself, from devnet account 9.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from marketplace.chain.market import MarketActor
from marketplace.cli.sandbox import ProviderSpec
from marketplace.protocol.events import Event
from marketplace.protocol.hashing import canonical_json, commitment, sha256
from marketplace.protocol.status import AssignmentStatus, JobStatus
from marketplace.protocol.views import JobParams
from tests.e2e.conftest import COLLATERAL, REWARD, Market, builtin, eventually, open_market

PROVIDERS = [ProviderSpec("alice", 4), ProviderSpec("bob", 5)]
ETHER = 10**18


@pytest.fixture(scope="module")
def market(sandbox_factory) -> Market:
    return open_market(sandbox_factory(PROVIDERS))


def iterated(seed: str, rounds: int) -> bytes:
    digest = seed.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest


def provider_named(market: Market, address: str) -> str:
    return next(spec.name for spec in PROVIDERS if market.address(spec.name) == address)


def scripted_provider(market: Market) -> MarketActor:
    assert market.sandbox.world is not None
    actor = market.sandbox.world.actor(market.sandbox.node, 9)
    if not actor.market.provider(actor.address).registered:
        actor.register("test://scripted")
        actor.stake(5 * ETHER)
    return actor


def test_a_provider_killed_between_commit_and_reveal_reveals_after_restart(market: Market) -> None:
    scripted = scripted_provider(market)
    seed = f"kill {time.time()}"
    spec = builtin("iterated-sha256", {"seed": seed, "rounds": 1_000}, 1_000)
    job_id = market.submit(spec, replicas=2, run_timeout=120, reveal_window=120).job_id
    scripted.claim(job_id)  # before any daemon heard of the job (it is not even indexed yet)

    def both_claims() -> list[Event] | None:
        claims = market.events(job_id, "JobClaimed")
        return claims if len(claims) == 2 else None

    claims = eventually(both_claims, 30, "both claims")
    victim_address = next(e["provider"] for e in claims if e["provider"] != scripted.address)
    victim = provider_named(market, victim_address)

    def committed() -> bool:
        return (
            market.reader.assignments([job_id], victim_address)[job_id].status is AssignmentStatus.COMMITTED
        )

    eventually(committed, 30, f"{victim} to commit")
    market.sandbox.providers[victim].kill()  # kill -9, with its salt only in its state file

    answer = sha256(iterated(seed, 1_000))
    salt = os.urandom(32)
    scripted.commit(job_id, commitment(job_id, scripted.address, answer, salt))
    assert market.status(job_id) is JobStatus.REVEALING
    market.sandbox.restart_provider(victim)
    scripted.reveal(job_id, answer, salt)

    assert market.wait_settled(job_id) is JobStatus.COMPLETED
    (finalized,) = market.events(job_id, "JobFinalized")
    assert set(finalized["winners"]) == {victim_address, scripted.address}
    for name in ("JobClaimed", "ResultCommitted", "ResultRevealed"):  # nothing sent twice
        assert [e["provider"] for e in market.events(job_id, name)].count(victim_address) == 1
    assert not [e for e in market.events(job_id, "BatchItemSkipped") if e["caller"] == victim_address]
    log = market.sandbox.providers[victim].log_path.read_text()
    assert f'"resumed_jobs": [{job_id}]' in log


def ray_workers_running(function: str) -> list[int]:
    """Pids of Ray worker processes executing `function` (Ray titles them `ray::<function>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title == f"ray::{function}".encode():
            found.append(int(entry.name))
    return found


def test_a_ray_worker_killed_mid_task_and_the_job_completes_once(market: Market) -> None:
    seed, rounds = f"worker {time.time()}", 3_000_000  # a few seconds of hashing
    job_id = market.submit(builtin("iterated-sha256", {"seed": seed, "rounds": rounds}, rounds)).job_id
    (worker, *_) = eventually(lambda: ray_workers_running("run_bundle"), 30, "a Ray worker to run the job")
    os.kill(worker, signal.SIGKILL)

    assert market.wait_settled(job_id, timeout=90) is JobStatus.COMPLETED
    assert len(market.events(job_id, "ResultRevealed")) == 1
    assert len(market.events(job_id, "JobFinalized")) == 1
    (finalized,) = market.events(job_id, "JobFinalized")
    assert bytes(finalized["resultHash"]) == sha256(iterated(seed, rounds))
    assert worker not in ray_workers_running("run_bundle")


def test_the_marketplace_going_down_does_not_stop_the_providers(market: Market) -> None:
    sandbox = market.sandbox
    # Job B's spec is uploaded while the service is up; B is posted (on-chain only) while it is down.
    later = builtin("iterated-sha256", {"seed": f"later {time.time()}", "rounds": 1_000}, 1_000)
    later_digest = market.api.upload(canonical_json(later)).digest
    seed, rounds = f"outage {time.time()}", 2_500_000
    first = market.submit(builtin("iterated-sha256", {"seed": seed, "rounds": rounds}, rounds)).job_id
    eventually(lambda: market.events(first, "JobClaimed"), 30, "the job to be claimed")

    sandbox.stop_service()
    assert market.wait_settled(first, timeout=90) is JobStatus.COMPLETED  # while the service is down
    params = JobParams(bytes.fromhex(later_digest), REWARD, collateral_per_replica=COLLATERAL)
    second, _ = market.requester.actor.post_job(params)
    time.sleep(2)
    assert all(process.running for process in sandbox.providers.values())
    assert market.status(second) is JobStatus.OPEN  # heard of on-chain, but its spec is out of reach
    logs = "".join(process.log_path.read_text() for process in sandbox.providers.values())
    assert "following the chain meanwhile" in logs

    sandbox.start_service()
    sandbox.wait_for_service()
    assert market.wait_settled(second, timeout=60) is JobStatus.COMPLETED
    # The result computed during the outage reached the blob store once it was back.
    data = eventually(lambda: _result_or_none(market, first), 30, "the result of the first job")
    assert data == iterated(seed, rounds)


def _result_or_none(market: Market, job_id: int) -> bytes | None:
    try:
        return market.requester.result(job_id)
    except Exception:
        return None


def test_sigterm_stops_a_provider_cleanly_and_it_resumes(market: Market) -> None:
    sandbox = market.sandbox
    alice = sandbox.providers["alice"]
    assert alice.stop(timeout=20) == 0
    assert '"msg": "provider stopped"' in alice.log_path.read_text()
    sandbox.restart_provider("alice")
    job_id = market.submit(
        builtin("iterated-sha256", {"seed": f"after {time.time()}", "rounds": 10}, 10)
    ).job_id
    assert market.wait_settled(job_id) is JobStatus.COMPLETED
