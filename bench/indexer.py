"""Indexer catch-up speed: index a chain holding ~100,000 protocol events from block 0 into SQLite.

Usage: python bench/indexer.py [--events 100000] [--db-dir DIR]   (also `make bench-indexer`)

Builds the chain on a throwaway anvil with batched calls (postJobs, claimJobs, submitResults:
seven events per single-replica job), then measures, over the same block range:
  1. the raw `eth_getLogs` fetch of every market log, in the chunks the indexer uses, and
  2. a full catch-up by the indexer into an empty SQLite file (fetch, decode, project, commit).
The ratio of the two shows how close to the node's own limit the indexer runs. Writes the
"## Indexer" section of bench/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from marketplace.chain.bootstrap import setup_devnet_market
from marketplace.chain.devnet import Devnet
from marketplace.chain.market import MarketActor
from marketplace.chain.rpc import RpcClient
from marketplace.indexer.sync import Indexer
from marketplace.protocol.views import JobParams
from marketplace.store.database import make_engine, migrate
from marketplace.store.schema import Job, RawEvent

from report import write_section

EVENTS_PER_JOB = 7  # JobPosted, JobClaimed, JobStarted, ResultRevealed, 2x Credited, JobFinalized
BATCH = 200
TARGET_EVENTS_PER_SECOND = 5_000


@dataclass(frozen=True)
class Result:
    events: int
    jobs: int
    blocks: int
    build_seconds: float
    fetch_seconds: float
    index_seconds: float
    steps: int

    @property
    def fetch_rate(self) -> float:
        return self.events / self.fetch_seconds

    @property
    def index_rate(self) -> float:
        return self.events / self.index_seconds


def build_chain(node: Devnet, events: int) -> tuple[str, int]:
    """Posts and settles enough single-replica jobs for `events` market events; returns market, jobs."""
    world = setup_devnet_market(node)
    requester = world.actor(node, 2)
    providers: list[MarketActor] = [world.actor(node, index) for index in (4, 5, 6)]
    for provider in providers:
        provider.register("bench://provider")
        provider.stake(10**18)
    jobs = 0
    round_ = 0
    while jobs * EVENTS_PER_JOB < events:
        params = [
            JobParams(spec_hash=os.urandom(32), reward_per_replica=10**12, claim_window=6 * 3600)
            for _ in range(BATCH)
        ]
        job_ids, _ = requester.post_jobs(params)
        provider = providers[round_ % len(providers)]
        provider.claim_many(job_ids)
        provider.submit_results(job_ids, [os.urandom(32) for _ in job_ids])
        jobs += len(job_ids)
        round_ += 1
        if round_ % 10 == 0:
            print(f"  {jobs:,} jobs posted and settled", flush=True)
    return world.deployment.market, jobs


def measure_fetch(rpc: RpcClient, market: str, head: int, chunk_blocks: int) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    for first in range(0, head + 1, chunk_blocks):
        count += len(rpc.logs(market, first, min(head, first + chunk_blocks - 1)))
    return count, time.perf_counter() - started


def run(events: int, db_dir: Path) -> Result:
    with Devnet() as node:
        print(f"building a chain with ~{events:,} market events ...", flush=True)
        started = time.perf_counter()
        market, jobs = build_chain(node, events)
        build_seconds = time.perf_counter() - started
        rpc = RpcClient(node.rpc_url, timeout=120)
        head = rpc.block_number()

        db_path = db_dir / "bench-indexer.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{db_path}")
        migrate(engine)
        indexer = Indexer(engine, rpc, market, finality_depth=64)
        indexer.initialize()
        print("indexing from block 0 ...", flush=True)
        started = time.perf_counter()
        steps = 0
        chunks: list[int] = []
        while True:
            result = indexer.step()
            steps += 1
            chunks.append(result.to_block - result.from_block + 1)
            if result.caught_up:
                break
        index_seconds = time.perf_counter() - started
        with engine.connect() as connection:
            indexed = connection.execute(select(func.count()).select_from(RawEvent)).scalar_one()
            indexed_jobs = connection.execute(select(func.count()).select_from(Job)).scalar_one()
        assert indexed_jobs == jobs, f"indexed {indexed_jobs} jobs of {jobs}"

        print("fetching the same logs raw ...", flush=True)
        chunk = max(1, round(sum(chunks) / len(chunks)))
        fetched, fetch_seconds = measure_fetch(rpc, market, head, chunk)
        assert fetched == indexed, f"raw fetch saw {fetched} logs, the indexer {indexed}"
        return Result(indexed, jobs, head + 1, build_seconds, fetch_seconds, index_seconds, steps)


def render(result: Result, command: str) -> str:
    ratio = result.index_seconds / result.fetch_seconds
    verdict = "pass" if result.index_rate >= TARGET_EVENTS_PER_SECOND else "FAIL"
    return "\n".join(
        [
            "## Indexer",
            "",
            f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d} (anvil, SQLite file in WAL mode, "
            f"{os.cpu_count()} cores).",
            "",
            f"A chain of {result.blocks:,} blocks holding {result.events:,} ComputeMarket events "
            f"({result.jobs:,} single-replica jobs posted, claimed and settled in batches of {BATCH}; "
            f"built in {result.build_seconds:.0f}s), indexed from block 0 into an empty database.",
            "",
            "| Measurement | Time | Events/s | Target |",
            "|---|---:|---:|---|",
            f"| raw `eth_getLogs` of the whole range (no decoding, no database) "
            f"| {result.fetch_seconds:.2f}s | {result.fetch_rate:,.0f} | |",
            f"| indexer catch-up: fetch, decode, project, commit ({result.steps} steps) "
            f"| {result.index_seconds:.2f}s | {result.index_rate:,.0f} "
            f"| ≥ {TARGET_EVENTS_PER_SECOND:,} events/s: {verdict} |",
            "",
            f"The indexer takes {ratio:.1f}× the time of the bare fetch of the same logs.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="market events to put on the chain")
    parser.add_argument(
        "--db-dir", type=Path, default=None, help="where the SQLite file goes (default: temp)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.events, args.db_dir or Path(tmp))
    command = "python bench/indexer.py" + (f" --events {args.events}" if args.events != 100_000 else "")
    section = render(result, command)
    print(section)
    write_section("## Indexer", section)
    return 0 if result.index_rate >= TARGET_EVENTS_PER_SECOND else 1


if __name__ == "__main__":
    raise SystemExit(main())
