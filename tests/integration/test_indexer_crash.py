"""`kill -9` the indexer process at random moments: every restart resumes exactly, and the store
ends identical to an uninterrupted run into another database."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import keccak
from sqlalchemy import Engine, func, select

from marketplace.chain.bootstrap import DevnetMarket, setup_devnet_market
from marketplace.chain.devnet import Devnet
from marketplace.chain.market import MarketActor, bind, encode_call
from marketplace.chain.rpc import RpcClient
from marketplace.protocol.hashing import commitment
from marketplace.protocol.views import ETH, JobParams
from marketplace.store.schema import ChainState, RawEvent
from tests.helpers import ETHER, salt_for
from tests.integration.conftest import Databases, assert_same_store

SEED = 20_240_611
FINALITY = 1_500  # the last blocks are journaled, the earlier ones are final
GAP = 300  # empty blocks between transactions: the indexer needs several block ranges
BATCH = 50
ROUNDS = 6
KILLS = 8


def post_round(
    world: DevnetMarket, node: Devnet, label: str, provider: MarketActor, tokens: list[str]
) -> None:
    """BATCH single-replica jobs posted, claimed and settled in three batch transactions."""
    requester = world.actor(node, 2)
    params = [
        JobParams(
            spec_hash=keccak(text=f"{label}/{i}"),
            reward_per_replica=ETHER // 100 + i,
            token=tokens[i % len(tokens)],
        )
        for i in range(BATCH)
    ]
    job_ids, _ = requester.post_jobs(params)
    node.call("anvil_mine", hex(GAP))
    provider.claim_many(job_ids)
    node.call("anvil_mine", hex(GAP))
    provider.submit_results(job_ids, [keccak(text=f"result {job_id}") for job_id in job_ids])
    node.call("anvil_mine", hex(GAP))


def replicated_round(world: DevnetMarket, node: Devnet, providers: list[MarketActor]) -> None:
    """Three-replica jobs through commit and reveal in batches; the last provider lies and is slashed."""
    params = [
        JobParams(keccak(text=f"replicated/{i}"), ETHER // 100, 3, ETH, ETHER // 100)
        for i in range(BATCH // 2)
    ]
    job_ids, _ = world.actor(node, 2).post_jobs(params)
    answers = {provider.address: keccak(text=f"{index == 2}") for index, provider in enumerate(providers)}
    for provider in providers:
        provider.claim_many(job_ids)
    for provider in providers:
        provider.commit_many(
            job_ids,
            [
                commitment(job_id, provider.address, answers[provider.address], salt_for(provider, job_id))
                for job_id in job_ids
            ],
        )
    for provider in providers:
        provider.reveal_many(
            job_ids, [answers[provider.address]] * len(job_ids), [salt_for(provider, j) for j in job_ids]
        )
    node.call("anvil_mine", hex(GAP))
    providers[0].finalize_many(job_ids)
    node.call("anvil_mine", hex(GAP))


def busy_market(node: Devnet, rounds: int) -> tuple[DevnetMarket, list[MarketActor], list[str]]:
    world = setup_devnet_market(node)
    requester = world.actor(node, 2)
    token = bind(world.w3, "TestToken", world.token)
    requester.send(encode_call(token, "mint", requester.address, 10_000 * ETHER))
    requester.send(encode_call(token, "approve", world.market.address, 2**256 - 1))
    providers = [world.actor(node, index) for index in (4, 5, 6)]
    for provider in providers:
        provider.register(f"ipfs://{provider.address}")
        provider.stake(20 * ETHER)
    tokens = [ETH, world.token]
    for round_ in range(rounds):
        post_round(world, node, f"round {round_}", providers[round_ % 3], tokens)
        if round_ == rounds // 2:
            replicated_round(world, node, providers)
    for provider in providers:
        provider.withdraw(ETH)
        provider.request_unstake(ETHER)
    return world, providers, tokens


def index_command(market: str, rpc_url: str, url: str) -> list[str]:
    return [
        sys.executable, "-m", "marketplace.cli", "market", "index", "--market", market, "--rpc", rpc_url,
        "--db", url, "--finality-depth", str(FINALITY), "--until-caught-up",
    ]  # fmt: skip


def run_to_completion(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False)
    assert done.returncode == 0, log.read_text()[-3000:]


def assert_at_a_block_boundary(engine: Engine, rpc_url: str, market: str) -> int:
    """The store after a kill: exactly the chain's events up to its checkpoint, whose hash is canonical."""
    with engine.connect() as connection:
        state = connection.execute(select(ChainState.last_block, ChainState.last_block_hash)).one_or_none()
        stored = connection.execute(select(func.count()).select_from(RawEvent)).scalar_one()
    last = -1 if state is None else int(state.last_block)
    if last < 0:  # killed before the first step committed
        assert stored == 0
        return last
    rpc = RpcClient(rpc_url)
    try:
        logs = rpc.logs(market, 0, last)
        (header,) = rpc.headers([last])
    finally:
        rpc.close()
    assert header is not None and state is not None and header["hash"] == state.last_block_hash
    assert stored == len(logs), f"{stored} events stored through block {last}, the chain has {len(logs)}"
    return last


def run_and_kill(command: list[str], log: Path, engine: Engine, delay: float, after_a_step: bool) -> bool:
    """Runs the indexer and SIGKILLs it `delay` seconds after it starts, or after it committed a
    step in this run (then the kill lands in the next one); returns whether it was still running."""
    before = checkpoint(engine)
    with log.open("a") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while after_a_step and checkpoint(engine) == before and process.poll() is None:
                assert time.monotonic() < deadline, "the indexer made no progress"
                time.sleep(0.005)
            time.sleep(delay)
            running = process.poll() is None
            if running:
                os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=30)
    assert process.returncode in (0, -signal.SIGKILL), log.read_text()[-3000:]
    return running


def checkpoint(engine: Engine) -> int | None:
    with engine.connect() as connection:
        block = connection.execute(select(ChainState.last_block)).scalar_one_or_none()
    return None if block is None else int(block)


class PrunedDevnet(Devnet):
    """anvil keeping no historical states: mining thousands of empty blocks gets several times faster."""

    def command(self) -> list[str]:
        return [*super().command(), "--prune-history"]


@pytest.fixture
def busy_node() -> Iterator[Devnet]:
    with PrunedDevnet() as node:
        yield node


def test_kill_minus_nine_at_random_moments_loses_and_duplicates_nothing(
    busy_node: Devnet, dbs: Databases, tmp_path: Path
) -> None:
    node, rng = busy_node, random.Random(SEED)
    world, providers, tokens = busy_market(node, rounds=ROUNDS)
    market = world.deployment.market
    url, engine = dbs.new("crashed")
    command = index_command(market, node.rpc_url, url)
    log = tmp_path / "indexer.log"

    # An uninterrupted run, timed to aim the kills inside one (its store is not the reference:
    # the chain still grows below).
    started = time.monotonic()
    run_to_completion(index_command(market, node.rpc_url, dbs.new_url("probe")), log)
    duration = time.monotonic() - started

    interrupted, checkpoints = 0, []
    for attempt in range(KILLS):
        if attempt in (3, 6):  # the chain grows between restarts too
            post_round(world, node, f"late {attempt}", providers[attempt % 3], tokens)
        # Half the kills anywhere in a run (start-up, migrations, any step), half right after a
        # step committed, so that they land in the middle of the next step's reads and writes.
        if attempt % 2 == 0:
            running = run_and_kill(command, log, engine, rng.uniform(0.1, duration), after_a_step=False)
        else:
            running = run_and_kill(command, log, engine, rng.uniform(0.0, 0.15), after_a_step=True)
        interrupted += running
        checkpoints.append(assert_at_a_block_boundary(engine, node.rpc_url, market))
    head = int(node.call("eth_blockNumber"), 16)
    assert interrupted >= KILLS // 2, f"only {interrupted} of {KILLS} kills hit a running indexer"
    assert any(0 < block < head for block in checkpoints), f"no kill left a partial index: {checkpoints}"

    run_to_completion(command, log)
    clean_url, clean = dbs.new("clean")
    run_to_completion(index_command(market, node.rpc_url, clean_url), log)
    assert_same_store(engine, clean, node.rpc_url, finality_depth=FINALITY)
    with engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(RawEvent)).scalar_one() > 6 * BATCH * ROUNDS
        )
