"""The indexer against a real chain: every event kind projected as the contract sees it, reorgs
of every depth within the finality window repaired exactly, and deeper ones refused loudly.

Every test that changes the chain gets its own anvil (reorgs and time travel must not leak); the
store tests run on SQLite and on a throwaway PostgreSQL server (skipped when it is not installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import select

from marketplace.api.app import create_app
from marketplace.chain.bootstrap import DevnetMarket, setup_devnet_market
from marketplace.chain.devnet import Devnet
from marketplace.chain.market import MarketActor, bind, encode_call
from marketplace.chain.rpc import RpcClient
from marketplace.chain.sender import Call
from marketplace.cli.demo.scripted import Demo
from marketplace.indexer.handlers import HANDLERS
from marketplace.indexer.sync import ChainMoved, Indexer, IndexerError, ReorgTooDeep
from marketplace.protocol.events import Event
from marketplace.protocol.hashing import commitment
from marketplace.protocol.sortition import seed_of
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import ETH, JobParams
from marketplace.store.blobs import FilesystemBlobStore
from marketplace.store.schema import Assignment, Job, Provider, RawEvent
from tests.helpers import ETHER, result_hash, salt_for
from tests.integration.conftest import (
    GWEI,
    STORE_TABLES,
    Databases,
    assert_projections_match_chain,
    assert_same_rows,
    assert_same_store,
    chain_state,
    dump,
    index_to_head,
    journal,
)

COLLATERAL = ETHER // 10
FINALITY = 8
ZERO = "0x0000000000000000000000000000000000000000"
STORE_AND_BOOKKEEPING = (*STORE_TABLES, "blocks", "journal")


def accounts_of(node: Devnet) -> list[str]:
    return [account.address for account in node.accounts]


def post(actor: MarketActor, label: str, *, replicas: int = 1, token: str = ETH, **windows: int) -> int:
    params = JobParams(
        spec_hash=keccak(text=label),
        reward_per_replica=ETHER // 20 if token == ETH else 3 * ETHER,
        replicas=replicas,
        token=token,
        collateral_per_replica=COLLATERAL,
        **windows,
    )
    job_id, _ = actor.post_job(params)
    return job_id


def commit(provider: MarketActor, job_id: int, result: bytes) -> None:
    provider.commit(job_id, commitment(job_id, provider.address, result, salt_for(provider, job_id)))


def reveal(provider: MarketActor, job_id: int, result: bytes) -> None:
    provider.reveal(job_id, result, salt_for(provider, job_id))


# ── 1. every kind of event, checked against the chain's views ──


@dataclass(frozen=True)
class World:
    node: Devnet
    market: DevnetMarket

    @property
    def address(self) -> str:
        return self.market.deployment.market

    @property
    def accounts(self) -> list[str]:
        return accounts_of(self.node)


def beyond_the_demo(node: Devnet, world: DevnetMarket) -> None:
    """What the demo never does: unstaking, a provider's cancel, skipped batch items, and jobs left
    open, running and revealing (so statuses other than the final ones are checked too)."""
    requester, alice, bob, mallory = (world.actor(node, index) for index in (2, 4, 5, 6))
    alice.request_unstake(ETHER)
    bob.request_unstake(ETHER // 2)
    node.increase_time(3601)  # the demo market's unbonding period is an hour
    alice.withdraw_stake()
    bob.request_unstake(ETHER // 4)  # still unbonding at the end

    cancelled = post(requester, "cancelled by its only claimant", replicas=2, claim_window=60)
    mallory.claim(cancelled)
    node.increase_time(61)
    mallory.cancel(cancelled)  # collateral unlocked, escrow credited back to the requester

    partly_claimed = post(requester, "open with one claim", replicas=3, token=world.token)
    alice.claim(partly_claimed)
    running = post(requester, "running, one commit", replicas=2)
    alice.claim(running)
    bob.claim(running)
    commit(alice, running, result_hash("r"))
    revealing = post(requester, "revealing, one reveal", replicas=2)
    alice.claim(revealing)
    bob.claim(revealing)
    commit(alice, revealing, result_hash("s"))
    commit(bob, revealing, result_hash("s"))
    reveal(alice, revealing, result_hash("s"))
    skipped = bob.claim_many([running, partly_claimed])  # the running job is skipped, not reverted
    assert len(skipped.named("BatchItemSkipped")) == 1

    late = post(requester, "first claimed 300 blocks after its posting")
    node.call("anvil_mine", hex(300), hex(1))  # the EVM no longer has the posting block's hash
    alice.claim(late)  # so the draw's seed is the 256-block anchor's: the indexer must find it


@pytest.fixture(scope="module")
def demo_world() -> Iterator[World]:
    with Devnet() as node:
        world = setup_devnet_market(node)
        demo = Demo(Console(quiet=True), node, world)
        demo.set_up()
        demo.run()
        beyond_the_demo(node, world)
        yield World(node, world)


def chain_logs(world: World) -> list[Event]:
    market = world.market.market
    logs = market.w3.eth.get_logs({"address": market.address, "fromBlock": 0, "toBlock": "latest"})
    return world.market.market.decode_logs(logs)


def test_every_event_kind_is_projected_as_the_chain_sees_it(demo_world: World, dbs: Databases) -> None:
    _, engine = dbs.new("index")
    index_to_head(engine, demo_world.node.rpc_url, demo_world.address, finality_depth=FINALITY)

    assert_projections_match_chain(engine, demo_world.market.market, demo_world.accounts)

    # The raw events are the chain's logs, one for one (web3's own decoder as the reference).
    logs = chain_logs(demo_world)
    with engine.connect() as connection:
        columns = (
            RawEvent.block_number,
            RawEvent.log_index,
            RawEvent.name,
            RawEvent.tx_hash,
            RawEvent.job_id,
        )
        stored = connection.execute(select(*columns).order_by(RawEvent.position)).all()
    expected = [(e.block_number, e.log_index, e.name, e.tx_hash, e.args.get("jobId")) for e in logs]
    assert [tuple(row) for row in stored] == expected
    assert {e.name for e in logs} >= {*HANDLERS, "BatchItemSkipped"}, "the scenario misses an event kind"

    # What the views do not show, checked against the events themselves.
    slashed: Counter[str] = Counter()
    slashes: dict[tuple[int, str], int] = {}
    claimed: Counter[str] = Counter()
    won: Counter[str] = Counter()
    finalized: dict[int, Event] = {}
    for e in logs:
        if e.name == "Slashed":
            slashed[e["provider"]] += e["amount"]
            slashes[(e["jobId"], e["provider"])] = e["amount"]
        elif e.name == "JobClaimed":
            claimed[e["provider"]] += 1
        elif e.name == "JobFinalized":
            finalized[e["jobId"]] = e
            if e["outcome"] == JobStatus.COMPLETED:
                won.update(e["winners"])
    with engine.connect() as connection:
        providers = {row.address: row for row in connection.execute(select(Provider.__table__))}
        assignments = connection.execute(select(Assignment.__table__)).all()
        jobs = {row.id: row for row in connection.execute(select(Job.__table__))}
    for address, row in providers.items():
        assert int(row.slashed_amount) == slashed[address]
        assert row.jobs_claimed == claimed[address]
        assert row.jobs_completed == won[address]
        assert row.metadata_uri.startswith("demo://")
    assert sum(row.jobs_slashed for row in providers.values()) == len(slashes) > 0
    for a in assignments:
        assert int(a.slashed_amount) == slashes.get((a.job_id, a.provider), 0)
        event = finalized.get(a.job_id)
        if event is None:
            assert a.outcome == ("cancelled" if jobs[a.job_id].status == "cancelled" else None)
        elif event["outcome"] == JobStatus.COMPLETED:
            assert a.outcome == ("won" if a.provider in event["winners"] else "slashed")
        else:
            assert a.outcome == ("returned" if a.status == "revealed" else "slashed")
    late = max(jobs)  # the last job of beyond_the_demo, drawn with a later block's hash
    anchor = jobs[late].posted_block + 256
    assert jobs[late].seed == seed_of(demo_world.market.market.w3.eth.get_block(anchor)["hash"])
    for job_id, event in finalized.items():
        digest = "0x" + bytes(event["resultHash"]).hex()
        assert jobs[job_id].result_hash == (None if event["outcome"] == JobStatus.FAILED else digest)
        assert jobs[job_id].finished_block == event.block_number


def test_step_size_and_finality_depth_do_not_change_the_store(
    demo_world: World, sqlite_dbs: Databases
) -> None:
    """Block by block (one transaction each, rows cached per step), or all at once, journaled or not."""
    rpc_url, market = demo_world.node.rpc_url, demo_world.address
    _, reference = sqlite_dbs.new("reference")
    index_to_head(reference, rpc_url, market, finality_depth=1)
    _, stepwise = sqlite_dbs.new("stepwise")
    results = index_to_head(stepwise, rpc_url, market, finality_depth=3, initial_range=1, max_range=1)
    assert len(results) > 50
    _, journaled = sqlite_dbs.new("journaled")
    index_to_head(journaled, rpc_url, market, finality_depth=100_000, initial_range=7, max_range=7)
    assert_same_rows(dump(stepwise), dump(reference), "indexed block by block")
    assert_same_rows(dump(journaled), dump(reference), "indexed with every block journaled")
    assert len(journal(journaled)) > len(journal(stepwise)) > 0


def test_a_restarted_indexer_resumes_and_refuses_another_market(
    demo_world: World, sqlite_dbs: Databases
) -> None:
    url, engine = sqlite_dbs.new("index")
    rpc = RpcClient(demo_world.node.rpc_url)
    first = Indexer(engine, rpc, demo_world.address, finality_depth=FINALITY, initial_range=10)
    first.initialize()
    first.step()
    last = first.checkpoint().last_block
    restarted = Indexer(sqlite_dbs.engine(url), rpc, demo_world.address, finality_depth=FINALITY)
    restarted.initialize()  # the checkpoint exists: it must be read, not recreated
    assert restarted.step().from_block == last + 1
    other = Indexer(engine, rpc, ZERO[:-1] + "1", finality_depth=FINALITY)
    with pytest.raises(IndexerError, match="use another --db"):
        other.initialize()
    rpc.close()


# ── 2. reorgs within the finality depth ──


def sign(node: Devnet, index: int, call: Call, nonce: int) -> str:
    """A raw signed transaction with an explicit nonce, so the same bytes can go into two branches."""
    transaction: dict[str, Any] = {
        "to": call.to, "data": call.data, "value": call.value, "gas": 1_500_000, "nonce": nonce,
        "chainId": node.chain_id, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI,
    }  # fmt: skip
    return "0x" + node.accounts[index].sign_transaction(transaction).raw_transaction.hex()


def tx_hash(raw: str) -> str:
    return "0x" + keccak(bytes.fromhex(raw[2:])).hex()


def mine(node: Devnet, blocks: Sequence[Sequence[str]]) -> None:
    """Mines one block per group of raw transactions, each group in its own block, in order."""
    node.call("evm_setAutomine", False)
    try:
        for group in blocks:
            for raw in group:
                node.call("eth_sendRawTransaction", raw)
            node.mine()
    finally:
        node.call("evm_setAutomine", True)


def assert_mined(node: Devnet, raws: Sequence[str]) -> dict[str, int]:
    """Each transaction succeeded on the current chain; returns the block each is in."""
    blocks = {}
    for raw in raws:
        receipt = node.call("eth_getTransactionReceipt", tx_hash(raw))
        assert receipt is not None and receipt["status"] == "0x1", f"{tx_hash(raw)}: {receipt}"
        blocks[tx_hash(raw)] = int(receipt["blockNumber"], 16)
    return blocks


def spread(items: Sequence[str], blocks: int) -> list[list[str]]:
    """`items` in order over `blocks` blocks, as evenly as possible."""
    return [list(items[i * len(items) // blocks : (i + 1) * len(items) // blocks]) for i in range(blocks)]


@dataclass
class Fork:
    """A market with history, and two branches of transactions to mine on top of its last block."""

    node: Devnet
    world: DevnetMarket
    base: int  # the last block both branches share
    x: int  # a single-replica job, open at the fork
    y: int  # a two-replica job with one claim at the fork
    original: dict[str, str]  # label -> raw transaction
    replacement: dict[str, str]

    @property
    def address(self) -> str:
        return self.world.deployment.market

    def dropped(self) -> set[str]:
        """Hashes of transactions only the original branch has."""
        return {tx_hash(raw) for raw in self.original.values()} - {
            tx_hash(raw) for raw in self.replacement.values()
        }


def make_fork(node: Devnet) -> Fork:
    world = setup_devnet_market(node)
    market, token = world.market, world.token
    requester, p1, p2, p3 = (world.actor(node, index) for index in (2, 4, 5, 6))
    for provider in (p1, p2, p3):
        provider.register(f"ipfs://{provider.address}")
        provider.stake(5 * ETHER)
    token_contract = bind(market.w3, "TestToken", token)
    requester.send(encode_call(token_contract, "mint", requester.address, 1000 * ETHER))
    requester.send(encode_call(token_contract, "approve", market.address, 2**256 - 1))
    x = post(requester, "x")
    y = post(requester, "y", replicas=2, token=token)
    node.increase_time(1_801)  # half their claim window: every provider with stake may claim them
    p1.claim(y)
    node.call("anvil_mine", "0x2")
    base = market.w3.eth.block_number
    nonce = {i: market.w3.eth.get_transaction_count(node.accounts[i].address) for i in (2, 3, 4, 5, 6)}

    def job(label: str, replicas: int = 1, tok: str = ETH) -> Call:
        reward = ETHER // 20 if tok == ETH else 3 * ETHER
        params = JobParams(keccak(text=label), reward, replicas, tok, COLLATERAL)
        return market.call("postJob", params.as_tuple(), value=params.escrow if tok == ETH else 0)

    posted_b = sign(node, 2, job("b", tok=token), nonce[2])
    original = {
        "R2 posts A": sign(node, 3, job("a", replicas=2), nonce[3]),
        "P1 claims X": sign(node, 4, market.call("claimJob", x), nonce[4]),
        "R posts B": posted_b,
        "P1 submits X": sign(node, 4, market.call("submitResult", x, result_hash("x")), nonce[4] + 1),
        "P3 adds stake": sign(node, 6, market.call("stake", ETHER, value=ETHER), nonce[6]),
        "P2 claims Y": sign(node, 5, market.call("claimJob", y), nonce[5]),
        "P2 unstakes": sign(node, 5, market.call("requestUnstake", ETHER), nonce[5] + 1),
        "P1 withdraws": sign(node, 4, market.call("withdraw", ETH), nonce[4] + 2),
    }
    replacement = {
        "R posts B": posted_b,  # the same signed bytes: re-included, now as job 3
        "P2 claims X": sign(node, 5, market.call("claimJob", x), nonce[5]),
        "P3 claims Y": sign(node, 6, market.call("claimJob", y), nonce[6]),
        "R2 posts D": sign(node, 3, job("d", replicas=3), nonce[3]),
        "P2 submits X": sign(node, 5, market.call("submitResult", x, result_hash("x2")), nonce[5] + 1),
    }
    return Fork(node, world, base, x, y, original, replacement)


def reorg(fork: Fork, depth: int) -> None:
    """Replaces the last `depth` blocks by `depth` blocks holding the replacement branch."""
    first, rest = list(fork.replacement.values())[:2], list(fork.replacement.values())[2:]
    pairs = [[raw, 0] for raw in first] + [[raw, depth - 1] for raw in rest]
    fork.node.call("anvil_reorg", depth, pairs)
    assert_mined(fork.node, list(fork.replacement.values()))


@pytest.mark.parametrize("depth", [1, 2, 3, 5, FINALITY])
def test_reorg_within_the_finality_depth_is_undone_and_reindexed(
    node: Devnet, dbs: Databases, depth: int
) -> None:
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), depth))
    assert_mined(node, list(fork.original.values()))
    _, engine = dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    with engine.connect() as connection:
        assert connection.execute(select(Job.id)).scalars().all() == [1, 2, 3, 4]  # A is job 3 here

    reorg(fork, depth)
    later = []
    if depth < FINALITY:  # a block on top of the new branch (it would make an 8-block reorg final)
        later.append(post(fork.world.actor(node, 2), "after the reorg"))
    results = index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert [r.reorged_to for r in results if r.reorged_to is not None] == [fork.base]

    # The branch's effects: A is gone, B appears once (as job 3 now), X went to P2 instead of P1,
    # Y's second slot to P3 instead of P2, and P2's unstaking and P1's withdrawal never happened.
    b_hash = tx_hash(fork.original["R posts B"])
    p1, p2, p3 = (node.accounts[index].address for index in (4, 5, 6))
    with engine.connect() as connection:
        jobs = {row.id: row for row in connection.execute(select(Job.__table__))}
        events = connection.execute(select(RawEvent.__table__)).all()
        seats = {(row.job_id, row.provider) for row in connection.execute(select(Assignment.__table__))}
        unbonding = connection.execute(select(Provider.unbonding).where(Provider.address == p2)).scalar_one()
    assert sorted(jobs) == [1, 2, 3, 4, *later]
    assert keccak(text="a").hex() not in {row.spec_hash[2:] for row in jobs.values()}
    assert (jobs[3].spec_hash, jobs[3].posted_tx) == ("0x" + keccak(text="b").hex(), b_hash)
    assert jobs[4].spec_hash == "0x" + keccak(text="d").hex()
    assert [e.name for e in events if e.tx_hash == b_hash] == ["JobPosted"]
    assert not {e.tx_hash for e in events} & fork.dropped()
    assert {e.block_hash for e in events} <= {
        node.call("eth_getBlockByNumber", hex(n), False)["hash"] for n in {e.block_number for e in events}
    }
    assert seats == {(fork.x, p2), (fork.y, p1), (fork.y, p3)}
    assert (jobs[fork.x].status, jobs[fork.y].status, unbonding) == ("completed", "running", "0")
    assert_projections_match_chain(engine, fork.world.market, accounts_of(node))

    _, fresh = dbs.new("fresh")
    index_to_head(fresh, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert_same_store(engine, fresh, node.rpc_url, finality_depth=FINALITY)


def stream(engine: Any, tmp_path: Path, **params: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of each message of a finite `GET /v1/events` over `engine`."""
    app = create_app(engine, FilesystemBlobStore(tmp_path / "blobs"))
    messages: list[tuple[str, str, dict[str, Any]]] = []
    current: dict[str, str] = {}
    headers = {"Last-Event-ID": str(params.pop("last_event_id"))} if "last_event_id" in params else {}
    with (
        TestClient(app) as client,
        client.stream("GET", "/v1/events", params=params, headers=headers) as reply,
    ):
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if not line and "id" in current:
                messages.append((current["id"], current["event"], json.loads(current["data"])))
            if not line:
                current = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                current[name] = value
    return messages


def test_a_stream_resumed_across_a_reorg_announces_it_then_sends_the_replacements(
    node: Devnet, sqlite_dbs: Databases, tmp_path: Path
) -> None:
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), 3))
    _, engine = sqlite_dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    before = stream(engine, tmp_path, after=0, timeout=0.5)
    in_branch = [m for m in before if m[2]["block_number"] > fork.base]
    assert in_branch, "the original branch emitted events"
    resume_from = in_branch[0][0]  # a client that saw the branch's first event, then went away

    reorg(fork, 3)
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    after = stream(engine, tmp_path, last_event_id=resume_from, timeout=0.5)
    (notice_id, kind, notice), *replacements = after
    assert kind == "reorg"
    assert notice == {
        "seq": int(notice_id), "ancestor_block": fork.base, "replaced_to_block": fork.base + 3,
        "ancestor_hash": node.call("eth_getBlockByNumber", hex(fork.base), False)["hash"],
        "events_removed": len(in_branch),
    }  # fmt: skip
    assert int(notice_id) > max(int(m[0]) for m in before)  # numbered after everything it voids
    assert [int(m[0]) for m in replacements] == list(
        range(int(notice_id) + 1, int(notice_id) + 1 + len(replacements))
    )
    assert all(m[2]["block_number"] > fork.base for m in replacements)
    with engine.connect() as connection:
        stored = (
            connection.execute(
                select(RawEvent.position).where(RawEvent.block_number > fork.base).order_by(RawEvent.position)
            )
            .scalars()
            .all()
        )
    assert [m[2]["position"] for m in replacements] == stored  # the new branch, each event once
    assert {m[2]["tx_hash"] for m in replacements} & fork.dropped() == set()
    # A client that was already past the reorg hears nothing of it again.
    assert stream(engine, tmp_path, last_event_id=after[-1][0], timeout=0.3) == []


def test_a_reorg_of_blocks_that_were_reindexed_after_a_reorg(node: Devnet, sqlite_dbs: Databases) -> None:
    """The re-indexed blocks are journaled like any others, so they can be undone in turn."""
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), 4))
    _, engine = sqlite_dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    reorg(fork, 4)
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    node.call("anvil_reorg", 2, [])  # the replacement's last blocks give way to empty ones
    results = index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert results[0].reorged_to == fork.base + 2
    with engine.connect() as connection:
        assert connection.execute(select(Job.id)).scalars().all() == [1, 2, 3]  # D is gone too
    _, fresh = sqlite_dbs.new("fresh")
    index_to_head(fresh, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert_same_store(engine, fresh, node.rpc_url, finality_depth=FINALITY)
    assert_projections_match_chain(engine, fork.world.market, accounts_of(node))


def test_reorg_while_the_indexer_is_partway_through_the_replaced_blocks(
    node: Devnet, sqlite_dbs: Databases
) -> None:
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), 5))
    _, engine = sqlite_dbs.new("index")
    rpc = RpcClient(node.rpc_url)
    indexer = Indexer(engine, rpc, fork.address, finality_depth=FINALITY, initial_range=1, max_range=1)
    indexer.initialize()
    while indexer.checkpoint().last_block < fork.base + 2:
        indexer.step()
    reorg(fork, 5)
    results = index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert results[0].reorged_to == fork.base
    _, fresh = sqlite_dbs.new("fresh")
    index_to_head(fresh, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert_same_store(engine, fresh, node.rpc_url, finality_depth=FINALITY)
    assert_projections_match_chain(engine, fork.world.market, accounts_of(node))
    rpc.close()


def test_a_chain_that_got_shorter_is_undone(node: Devnet, sqlite_dbs: Databases) -> None:
    """Blocks rolled back and fewer mined in their place: the store is ahead of the new head."""
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), 6))
    _, engine = sqlite_dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    node.call("anvil_rollback", 6)
    assert int(node.call("eth_blockNumber"), 16) == fork.base
    mine(node, [list(fork.replacement.values())[:2], list(fork.replacement.values())[2:]])
    assert int(node.call("eth_blockNumber"), 16) == fork.base + 2
    results = index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert results[0].reorged_to == fork.base
    _, fresh = sqlite_dbs.new("fresh")
    index_to_head(fresh, node.rpc_url, fork.address, finality_depth=FINALITY)
    pruned = fork.base + 6 - FINALITY  # the boundary of the old, higher head
    assert_same_store(engine, fresh, node.rpc_url, finality_depth=FINALITY, pruned_through=pruned)
    assert_projections_match_chain(engine, fork.world.market, accounts_of(node))


def test_reorg_found_after_the_chain_moved_on_past_the_finality_depth(
    node: Devnet, sqlite_dbs: Databases
) -> None:
    """The indexer was stopped while a 3-block reorg happened and many blocks were mined after it:
    the replaced blocks are now deeper than the finality depth, but they are still in its window
    of stored headers and journal, so it must notice and repair them, not keep the stale branch."""
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), 3))
    _, engine = sqlite_dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    reorg(fork, 3)
    node.call("anvil_mine", hex(3 * FINALITY))
    results = index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert results[0].reorged_to == fork.base
    _, fresh = sqlite_dbs.new("fresh")
    index_to_head(fresh, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert_same_store(engine, fresh, node.rpc_url, finality_depth=FINALITY)
    assert_projections_match_chain(engine, fork.world.market, accounts_of(node))


class ReorgDuringStep(RpcClient):
    """An RPC client that runs `action` (a reorg) right after the next eth_getLogs answer."""

    def __init__(self, url: str, action: Callable[[], None]) -> None:
        super().__init__(url)
        self.action: Callable[[], None] | None = action

    def logs(
        self, address: str, from_block: int, to_block: int | str, topics: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        found = super().logs(address, from_block, to_block, topics)
        action, self.action = self.action, None
        if action is not None:
            action()
        return found


def test_reorg_between_the_logs_and_the_headers_of_a_step_commits_nothing(
    node: Devnet, sqlite_dbs: Databases
) -> None:
    """The logs come from one branch and the headers from another: the step must not mix them."""
    fork = make_fork(node)
    _, engine = sqlite_dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    mine(node, spread(list(fork.original.values()), 3))
    before = (dump(engine, STORE_AND_BOOKKEEPING), chain_state(engine))
    rpc = ReorgDuringStep(node.rpc_url, lambda: reorg(fork, 3))
    indexer = Indexer(engine, rpc, fork.address, finality_depth=FINALITY)
    indexer.initialize()
    with pytest.raises(ChainMoved, match="changed between eth_getLogs and its header"):
        indexer.step()
    rpc.close()
    assert (dump(engine, STORE_AND_BOOKKEEPING), chain_state(engine)) == before
    results = index_to_head(engine, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert all(result.reorged_to is None for result in results)  # nothing of the old branch was kept
    _, fresh = sqlite_dbs.new("fresh")
    index_to_head(fresh, node.rpc_url, fork.address, finality_depth=FINALITY)
    assert_same_store(engine, fresh, node.rpc_url, finality_depth=FINALITY)


# ── 3. deeper than the finality depth: halt loudly ──


def test_reorg_deeper_than_the_finality_depth_halts_the_indexer_and_the_cli(
    node: Devnet, sqlite_dbs: Databases
) -> None:
    finality = 3
    fork = make_fork(node)
    mine(node, spread(list(fork.original.values()), finality + 1))
    url, engine = sqlite_dbs.new("index")
    index_to_head(engine, node.rpc_url, fork.address, finality_depth=finality)
    before = (dump(engine, STORE_AND_BOOKKEEPING), chain_state(engine))
    reorg(fork, finality + 1)  # one block deeper than a reorg it repairs (see the tests above)

    rpc = RpcClient(node.rpc_url)
    indexer = Indexer(engine, rpc, fork.address, finality_depth=finality)
    indexer.initialize()
    for _ in range(2):  # and again: it stays halted, it does not guess
        with pytest.raises(ReorgTooDeep, match="deeper than the finality depth of 3 blocks") as raised:
            indexer.step()
        assert "re-index into a fresh database" in str(raised.value)
    assert indexer.halted is raised.value
    rpc.close()
    assert (dump(engine, STORE_AND_BOOKKEEPING), chain_state(engine)) == before, "a halt must change nothing"

    command = [
        sys.executable, "-m", "marketplace.cli", "market", "index", "--market", fork.address,
        "--rpc", node.rpc_url, "--db", url, "--finality-depth", str(finality), "--until-caught-up",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "300"}
    )
    assert done.returncode != 0
    output = " ".join((done.stdout + done.stderr).split())
    assert "deeper than the finality depth of 3 blocks" in output, output
    assert (dump(engine, STORE_AND_BOOKKEEPING), chain_state(engine)) == before
