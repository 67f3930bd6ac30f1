"""End-to-end speed of the whole marketplace: jobs settled per second, and time to settle one job.

Usage: python bench/e2e.py [--jobs 3000] [--latency-samples 60]   (also part of `make bench`)
       python bench/e2e.py --block-time 2 [--jobs 300] [--latency-samples 20]

With --block-time the chain mines a block every N seconds, as a real one does, and the run
reports jobs in blocks: how many blocks a job takes from its posting to its settlement, against the
protocol's minimum (one replica: claim, then submit, 2 blocks; three: claim, commit, reveal,
finalize, 4 blocks), and how many jobs settle per block under load.

Runs the real system (`marketplace.cli.sandbox`): anvil with instant mining, the marketplace service,
one local Ray and three honest provider daemons, each its own process. Then, in one run:
  - latency at low load: one single-replica job at a time, posted -> Completed as the chain says
    it (polled every 10 ms), --latency-samples times;
  - throughput: --jobs tiny single-replica jobs (one SHA-256 round each, distinct seeds) posted in
    batches of 100 with postJobs, timed from the first posting to the last settlement;
  - the bare Ray task rate of the same workload on the same Ray, one task per job and in bundles
    as the executor sends them: what the protocol's overhead is measured against.
Writes the "## End to end" section of bench/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from marketplace.chain.reads import MarketReader
from marketplace.chain.rpc import RpcClient
from marketplace.cli.sandbox import ProviderSpec, Sandbox
from marketplace.client import MarketplaceApi, Requester
from marketplace.protocol.events import LogDecoder, topic
from marketplace.protocol.hashing import canonical_json
from marketplace.protocol.spec import parse_spec
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import JobParams

from report import write_section

TARGET_JOBS_PER_SECOND = 100
TARGET_MEDIAN_S, TARGET_P99_S = 2.0, 5.0
POST_BATCH = 100
REWARD = 10**12
PROVIDER_OPTIONS = ("--max-batch", "200", "--max-concurrent", "1000")


MINIMUM_BLOCKS = {1: 2, 3: 4}  # posting -> settlement, each step in the next block at the earliest


def tiny_spec(seed: str) -> dict[str, object]:
    return {
        "workload": {"kind": "builtin", "name": "iterated-sha256"},
        "args": {"seed": seed, "rounds": 1},
        "limits": {"fuel": 1, "memory_mb": 16, "timeout_s": 30},
    }


@dataclass(frozen=True)
class Results:
    latencies: list[float]
    jobs: int
    settle_seconds: float
    post_seconds: float
    ray_per_job: float
    ray_bundled: float
    settled: int


def measure_latency(requester: Requester, reader: MarketReader, samples: int) -> list[float]:
    latencies = []
    for index in range(samples):
        spec = tiny_spec(f"latency-{index}-{time.time()}")
        digest = requester.api.upload(canonical_json(spec)).digest
        started = time.monotonic()
        job_id, _ = requester.actor.post_job(JobParams(bytes.fromhex(digest), REWARD))
        while reader.jobs([job_id])[job_id].status is not JobStatus.COMPLETED:
            if time.monotonic() - started > 60:
                raise SystemExit(f"job {job_id} did not settle within 60 s")
            time.sleep(0.01)
        latencies.append(time.monotonic() - started)
        time.sleep(0.2)  # low load: the next job after the market went quiet
    return latencies


def measure_throughput(requester: Requester, reader: MarketReader, jobs: int) -> tuple[float, float, int]:
    """(seconds from the first posting to the last settlement, seconds spent posting, settled)."""
    specs = [canonical_json(tiny_spec(f"throughput-{i}")) for i in range(jobs)]
    digests = [ref.digest for ref in requester.api.upload_many(specs)]
    params = [JobParams(bytes.fromhex(digest), REWARD) for digest in digests]
    started = time.monotonic()
    ids: list[int] = []
    for offset in range(0, jobs, POST_BATCH):
        posted, _ = requester.actor.post_jobs(params[offset : offset + POST_BATCH])
        ids += posted
    posting = time.monotonic() - started
    pending = set(ids)
    deadline = started + max(120.0, jobs / 10)
    finalized = FinalizedLogs(reader)
    while pending and time.monotonic() < deadline:
        pending -= finalized.completed_since_last()  # reading logs costs little, unlike polling jobs
        time.sleep(0.05)
    return time.monotonic() - started, posting, jobs - len(pending)


class FinalizedLogs:
    """The ids of jobs completed since the last call, from JobFinalized logs read block by block."""

    def __init__(self, reader: MarketReader) -> None:
        self.reader = reader
        self.next_block = 0
        self.topic = topic("JobFinalized")
        self.decoder = LogDecoder()

    def completed_since_last(self) -> set[int]:
        head = int(self.reader.rpc.call("eth_blockNumber"), 16)
        if head < self.next_block:
            return set()
        logs = self.reader.rpc.logs(self.reader.address, self.next_block, head, [self.topic])
        self.next_block = head + 1
        events = [self.decoder.decode(log) for log in logs]
        return {
            int(e.args["jobId"])
            for e in events
            if e is not None and JobStatus.from_code(e.args["outcome"]) is JobStatus.COMPLETED
        }


def measure_ray(sandbox: Sandbox, jobs: int) -> tuple[float, float]:
    """Tasks per second of the same workload on the same Ray: one task per job, and bundled."""
    os.environ.update(sandbox.ray_environment)
    import ray

    from provider.executor import BUNDLE_SIZE, run_bundle
    from provider.workloads import plan

    ray.init(address=sandbox.ray_address, log_to_driver=False)
    try:
        remote = ray.remote(max_retries=3, retry_exceptions=False)(run_bundle)
        tasks = [plan(parse_spec(tiny_spec(f"ray-{i}")), {}).tasks[0] for i in range(jobs)]
        ray.get([remote.remote(tasks[:10]) for _ in range(4)])  # workers up
        started = time.monotonic()
        ray.get([remote.remote([task]) for task in tasks])
        per_job = jobs / (time.monotonic() - started)
        started = time.monotonic()
        ray.get([remote.remote(tasks[i : i + BUNDLE_SIZE]) for i in range(0, jobs, BUNDLE_SIZE)])
        bundled = jobs / (time.monotonic() - started)
    finally:
        ray.shutdown()
    return per_job, bundled


def run(jobs: int, samples: int) -> Results:
    specs = [
        ProviderSpec(name, account, PROVIDER_OPTIONS) for name, account in (("p1", 4), ("p2", 5), ("p3", 6))
    ]
    with (
        tempfile.TemporaryDirectory(prefix="cmarket-bench-") as directory,
        Sandbox(Path(directory), specs) as sandbox,
    ):
        assert sandbox.world is not None
        requester = Requester(MarketplaceApi(sandbox.api_url), sandbox.world.actor(sandbox.node, 2))
        reader = MarketReader(RpcClient(sandbox.node.rpc_url), sandbox.world.market)
        print(f"latency: {samples} jobs, one at a time", file=sys.stderr)
        latencies = measure_latency(requester, reader, samples)
        print(f"throughput: {jobs} jobs", file=sys.stderr)
        settle, posting, settled = measure_throughput(requester, reader, jobs)
        print("bare Ray task rate", file=sys.stderr)
        per_job, bundled = measure_ray(sandbox, jobs)
    return Results(latencies, jobs, settle, posting, per_job, bundled, settled)


@dataclass(frozen=True)
class BlockResults:
    block_time: float
    blocks: dict[int, list[int]]  # replicas -> blocks from posting to settlement, one per job
    jobs: int
    settled: int
    settle_blocks: int
    settle_seconds: float


def measure_blocks(requester: Requester, reader: MarketReader, replicas: int, samples: int) -> list[int]:
    """Blocks from each job's posting to its settlement, one job at a time."""
    counts = []
    for index in range(samples):
        spec = tiny_spec(f"blocks-{replicas}-{index}-{time.time()}")
        digest = requester.api.upload(canonical_json(spec)).digest
        job_id, posted = requester.actor.post_job(JobParams(bytes.fromhex(digest), REWARD, replicas=replicas))
        started = time.monotonic()
        while job_id not in (settled := reader.settlements([job_id])):
            if time.monotonic() - started > 120:
                raise SystemExit(f"job {job_id} did not settle within 120 s")
            time.sleep(0.2)
        counts.append(settled[job_id].block_number - posted.block_number)
    return counts


def run_blocks(jobs: int, samples: int, block_time: float) -> BlockResults:
    specs = [
        ProviderSpec(name, account, PROVIDER_OPTIONS) for name, account in (("p1", 4), ("p2", 5), ("p3", 6))
    ]
    with (
        tempfile.TemporaryDirectory(prefix="cmarket-bench-") as directory,
        Sandbox(Path(directory), specs, block_time=block_time) as sandbox,
    ):
        assert sandbox.world is not None
        requester = Requester(MarketplaceApi(sandbox.api_url), sandbox.world.actor(sandbox.node, 2))
        reader = MarketReader(RpcClient(sandbox.node.rpc_url), sandbox.world.market)
        blocks = {}
        for replicas in MINIMUM_BLOCKS:
            print(f"blocks per job: {samples} jobs of {replicas} replicas, one at a time", file=sys.stderr)
            blocks[replicas] = measure_blocks(requester, reader, replicas, samples)
        print(f"throughput: {jobs} jobs", file=sys.stderr)
        first = int(reader.rpc.call("eth_blockNumber"), 16)
        seconds, _, settled = measure_throughput(requester, reader, jobs)
        last = int(reader.rpc.call("eth_blockNumber"), 16)
    return BlockResults(block_time, blocks, jobs, settled, last - first, seconds)


def report_blocks(results: BlockResults, cpus: int) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    samples = len(results.blocks[1])
    rows = []
    for replicas, counts in results.blocks.items():
        minimum = MINIMUM_BLOCKS[replicas]
        rows.append(
            f"| {replicas} | {statistics.median(counts):g} | {max(counts)} | {minimum} "
            f"| {sum(c == minimum for c in counts)}/{len(counts)} |"
        )
    per_block = results.settled / max(1, results.settle_blocks)
    return "\n".join(
        [
            f"## End to end, {results.block_time:g}-second blocks",
            "",
            f"Produced by `python bench/e2e.py --block-time {results.block_time:g} --jobs {results.jobs} "
            f"--latency-samples {samples}` on {date} ({cpus} cores; the same system as above, but anvil "
            f"mines a block every {results.block_time:g} s instead of one per transaction).",
            "",
            "Blocks from a job's posting to its settlement, one job at a time, against the protocol's "
            "minimum (each step needs the block of the one before: one replica claims then submits; three "
            "claim, commit, reveal, finalize):",
            "",
            "| replicas | median | worst | minimum | jobs at the minimum |",
            "|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Under load: {results.settled:,} of {results.jobs:,} single-replica jobs settled in "
            f"{results.settle_blocks} blocks ({results.settle_seconds:.0f} s), "
            f"{per_block:.0f} jobs per block.",
            "",
        ]
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(results: Results, cpus: int) -> str:
    rate = results.settled / results.settle_seconds
    median, p99 = statistics.median(results.latencies), percentile(results.latencies, 0.99)
    date = datetime.now(UTC).strftime("%Y-%m-%d")

    def verdict(ok: bool) -> str:
        return "pass" if ok else "miss"

    options = " ".join(PROVIDER_OPTIONS)
    samples = len(results.latencies)
    return "\n".join(
        [
            "## End to end",
            "",
            f"Produced by `python bench/e2e.py --jobs {results.jobs} --latency-samples {samples}` "
            f"on {date} ({cpus} cores; anvil with instant mining, the marketplace service, one local Ray and "
            "three provider daemons, each its own process, all on this machine).",
            "",
            "Single-replica jobs of one SHA-256 round each, so what is measured is the marketplace, not the "
            f"work: posting (postJobs, {POST_BATCH} a transaction), indexing and the event stream, each "
            "provider's claim policy and batched claimJobs, the Ray round trip, the result upload and "
            f"batched submitResults. Providers run with `{options}`.",
            "",
            "| Measurement | Figure | Target | Result |",
            "|---|---:|---|:---:|",
            f"| throughput, posted → Completed, {results.jobs:,} jobs | {rate:,.0f} jobs/s "
            f"({results.settled:,} settled in {results.settle_seconds:.1f}s; posting took "
            f"{results.post_seconds:.1f}s) | ≥ {TARGET_JOBS_PER_SECOND} jobs/s "
            f"| {verdict(rate >= TARGET_JOBS_PER_SECOND)} |",
            f"| latency at low load, posted → Completed, median | {median:.2f}s | < {TARGET_MEDIAN_S:g}s "
            f"| {verdict(median < TARGET_MEDIAN_S)} |",
            f"| latency at low load, p99 ({len(results.latencies)} jobs) | {p99:.2f}s | < {TARGET_P99_S:g}s "
            f"| {verdict(p99 < TARGET_P99_S)} |",
            f"| bare Ray tasks of the same workload, one per job | {results.ray_per_job:,.0f} tasks/s | | |",
            f"| bare Ray tasks, bundled as the executor sends them | {results.ray_bundled:,.0f} jobs/s | | |",
            "",
            f"The marketplace settles {rate / results.ray_per_job:.2f}× as many jobs per second as Ray runs "
            "one-job tasks on the same machine; the rest is the protocol's cost (transactions, indexing, "
            "HTTP), paid on the same cores.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=None, help="default: 3000 (300 with --block-time)")
    parser.add_argument(
        "--latency-samples", type=int, default=None, help="default: 60 (20 with --block-time)"
    )
    parser.add_argument(
        "--block-time", type=float, default=None, help="seconds between blocks (default: instant)"
    )
    options = parser.parse_args()
    if options.block_time is not None:
        block_results = run_blocks(options.jobs or 300, options.latency_samples or 20, options.block_time)
        block_section = report_blocks(block_results, os.cpu_count() or 1)
        print(block_section)
        write_section(block_section.splitlines()[0], block_section)
        return
    results = run(options.jobs or 3000, options.latency_samples or 60)
    section = report(results, os.cpu_count() or 1)
    print(section)
    write_section("## End to end", section)


if __name__ == "__main__":
    main()
