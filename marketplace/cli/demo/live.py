"""`cmarket demo`: the real marketplace on a fresh devnet, end to end, with a summary a person can read.

Anvil, the marketplace service (indexer, API, dashboard), one local Ray and three provider daemons
(alice and bob honest, mallory dishonest) run as their own processes. A requester, carol, posts a
mix of built-in and WebAssembly jobs with one and three replicas, in ETH and in an ERC-20, and
follows them through the marketplace API. At the end every result is downloaded, checked against
the hash settled on-chain and recomputed locally, and the summary shows outcomes, earnings,
slashes and gas per job.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ...chain.devnet import ChainKind
from ...chain.market import MarketActor, bind, encode_call
from ...client import ClientError, MarketplaceApi, Requester
from ...protocol.errors import MarketError
from ...protocol.hashing import sha256
from ...protocol.status import TERMINAL_JOB_STATUSES
from ...protocol.views import ETH
from ..sandbox import ETHER, ProviderSpec, Sandbox

DEFAULT_JOBS = 24
COLLATERAL = ETHER // 10
SETTLE_TIMEOUT = 150.0


@dataclass(frozen=True)
class JobKind:
    """One kind of job the requester posts: a label, a spec maker and its inputs."""

    label: str
    replicas: int
    token: str  # "ETH" or "TUSD"
    make: Callable[[int], tuple[dict[str, Any], list[bytes]]]  # variant -> (spec, inputs)


@dataclass
class PostedJob:
    job_id: int
    kind: JobKind
    spec: dict[str, Any]
    inputs: list[bytes]
    status: str = "open"
    assignments: list[dict[str, Any]] = field(default_factory=list)
    result_hash: str | None = None
    verified: bool | None = None  # downloaded bytes match the on-chain hash AND a local run
    gas: int = 0
    seconds: float | None = None


def limits(fuel: int, memory_mb: int = 64, timeout_s: int = 60) -> dict[str, int]:
    return {"fuel": fuel, "memory_mb": memory_mb, "timeout_s": timeout_s}


def builtin(name: str, args: dict[str, Any], fuel: int) -> dict[str, Any]:
    return {"workload": {"kind": "builtin", "name": name}, "args": args, "limits": limits(fuel)}


def wasm(module: bytes, fuel: int) -> dict[str, Any]:
    return {
        "workload": {"kind": "wasm", "module": sha256(module).hex(), "entry": "run"},
        "limits": limits(fuel),
    }


TEXT = (
    "the market pays the honest majority and slashes the rest",
    "providers stake collateral and claim jobs they can run",
    "every result hash is committed before any is revealed",
)


def job_kinds() -> list[JobKind]:
    """The mix, in the order it is posted (then again, with other arguments, to the count asked)."""
    from provider.workloads import example_module

    fnv, histogram, rle = (example_module(name) for name in ("fnv1a64", "byte-histogram", "rle"))

    def text(variant: int) -> list[bytes]:
        return [f"{line} {variant}\n".encode() * 50 for line in TEXT[: 2 + variant % 2]]

    def records(variant: int) -> list[bytes]:
        return [
            b"\n".join(f"record-{(i * 7 + variant) % 40}".encode() for i in range(60 + j)) for j in range(2)
        ]

    def matrix(variant: int) -> list[list[int]]:
        return [[(i * 3 + j + variant) % 11 - 5 for j in range(8)] for i in range(8)]

    def sha(v: int) -> tuple[dict[str, Any], list[bytes]]:
        return builtin("iterated-sha256", {"seed": f"demo-{v}", "rounds": 20_000}, 20_000), []

    def pi(v: int) -> tuple[dict[str, Any], list[bytes]]:
        return builtin("monte-carlo-pi", {"seed": v, "samples": 200_000}, 200_000), []

    def words(v: int) -> tuple[dict[str, Any], list[bytes]]:
        return builtin("word-count", {"lowercase": True, "top": 5}, 10_000), text(v)

    def product(v: int) -> tuple[dict[str, Any], list[bytes]]:
        return builtin("matrix-multiply", {"a": matrix(v), "b": matrix(v + 1)}, 512), []

    def dedup(v: int) -> tuple[dict[str, Any], list[bytes]]:
        return builtin("sort-dedup", {}, 10_000), records(v)

    def life(v: int) -> tuple[dict[str, Any], list[bytes]]:
        args = {"width": 24, "height": 24, "generations": 40, "seed": v}
        return builtin("game-of-life", args, 24 * 24 * 41), []

    return [
        JobKind("iterated-sha256", 1, "ETH", sha),
        JobKind("monte-carlo-pi", 3, "ETH", pi),
        JobKind("word-count", 1, "TUSD", words),
        JobKind("matrix-multiply", 3, "ETH", product),
        JobKind("sort-dedup", 1, "ETH", dedup),
        JobKind("game-of-life", 3, "TUSD", life),
        JobKind("wasm fnv1a64", 1, "ETH", lambda v: (wasm(fnv, 2_000_000), text(v)[:1])),
        JobKind("wasm byte-histogram", 3, "ETH", lambda v: (wasm(histogram, 5_000_000), text(v))),
        JobKind("wasm rle", 3, "ETH", lambda v: (wasm(rle, 5_000_000), records(v)[:1])),
    ]


def job_mix(count: int) -> Iterator[tuple[JobKind, dict[str, Any], list[bytes]]]:
    kinds = job_kinds()
    for index in range(count):
        kind = kinds[index % len(kinds)]
        spec, inputs = kind.make(index)
        yield kind, spec, inputs


class LiveDemo:
    def __init__(self, console: Console, sandbox: Sandbox) -> None:
        self.console = console
        self.sandbox = sandbox
        assert sandbox.world is not None
        self.world = sandbox.world
        self.api = MarketplaceApi(sandbox.api_url)
        self.carol = Requester(self.api, self.world.actor(sandbox.node, 2))
        self.names = {sandbox.address_of(spec.name): spec.name for spec in sandbox.specs}
        self.roles = {
            sandbox.address_of(spec.name): f"{spec.name}{f' ({spec.byzantine})' if spec.byzantine else ''}"
            for spec in sandbox.specs
        }
        self.jobs: list[PostedJob] = []

    # ── posting and following ──

    def fund_requester(self) -> None:
        token = bind(self.world.w3, "TestToken", self.world.token)
        actor: MarketActor = self.carol.actor
        actor.send(encode_call(token, "mint", actor.address, 1_000 * ETHER))
        actor.send(encode_call(token, "approve", self.world.market.address, 2**256 - 1))

    def post(self, count: int) -> None:
        modules: set[str] = set()
        with self.progress() as progress:
            task = progress.add_task("carol posts jobs", total=count)
            for kind, spec, inputs in job_mix(count):
                workload = spec["workload"]
                if workload["kind"] == "wasm" and workload["module"] not in modules:
                    self.api.upload(self.module_bytes(kind))
                    modules.add(workload["module"])
                reward = 10 * ETHER if kind.token == "TUSD" else ETHER // 50
                submitted = self.carol.submit(
                    spec, inputs, reward_per_replica=reward, replicas=kind.replicas,
                    token=self.world.token if kind.token == "TUSD" else ETH,
                    collateral_per_replica=COLLATERAL, claim_window=300, run_timeout=120, reveal_window=120,
                )  # fmt: skip
                self.jobs.append(PostedJob(submitted.job_id, kind, spec, inputs))
                progress.advance(task)

    @staticmethod
    def module_bytes(kind: JobKind) -> bytes:
        from provider.workloads import example_module

        return example_module(kind.label.removeprefix("wasm "))

    def follow(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Progress bars from the marketplace API until every job is settled (or `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.progress() as progress:
            settled = progress.add_task("settled", total=len(self.jobs))
            stages = {
                name: progress.add_task(name, total=len(self.jobs)) for name in ("claimed", "committed")
            }
            while True:
                self.refresh()
                done = sum(job.status in TERMINAL_JOB_STATUSES for job in self.jobs)
                progress.update(settled, completed=done)
                claimed = sum(
                    len(job.assignments) == job.kind.replicas or job.status in TERMINAL_JOB_STATUSES
                    for job in self.jobs
                )
                committed = sum(job.status in ("revealing", *TERMINAL_JOB_STATUSES) for job in self.jobs)
                progress.update(stages["claimed"], completed=claimed)
                progress.update(stages["committed"], completed=committed)
                if done == len(self.jobs) or time.monotonic() > deadline:
                    return
                time.sleep(0.5)

    def refresh(self) -> None:
        pending = {job.job_id: job for job in self.jobs if job.status not in TERMINAL_JOB_STATUSES}
        if not pending:
            return
        with contextlib.suppress(ClientError):
            for page in self.pages():
                for entry in page:
                    job = pending.get(int(entry["id"]))
                    if job is not None:
                        job.status = entry["status"]
                        job.assignments = entry["assignments"]
                        job.result_hash = entry["result_hash"]

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        for _ in range(1000):
            params: dict[str, Any] = {"limit": 200, "requester": self.carol.actor.address}
            if cursor:
                params["cursor"] = cursor
            body = self.api.jobs(**params)
            yield body["jobs"]
            cursor = body["next_cursor"]
            if cursor is None:
                return

    def progress(self) -> Progress:
        return Progress(
            TextColumn("  {task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=False,
        )  # fmt: skip

    # ── checking ──

    def verify(self) -> None:
        """Each completed job's result: downloaded, checked against the on-chain hash, recomputed."""
        from provider.workloads import run_job

        from ...protocol.spec import parse_spec

        for job in self.jobs:
            if job.status != "completed":
                continue
            try:
                data = self.carol.result(job.job_id)  # raises unless it hashes to the settled hash
            except MarketError:
                job.verified = False
                continue
            spec = parse_spec({**job.spec, "inputs": [sha256(data).hex() for data in job.inputs]})
            blobs = {sha256(blob).hex(): blob for blob in job.inputs}
            if spec.workload.kind == "wasm":
                blobs[spec.workload.module] = self.module_bytes(job.kind)
            job.verified = run_job(spec, blobs).output == data

    def measure(self) -> None:
        """Gas per job (a batch transaction's gas shared among its jobs) and time to settle."""
        timelines = {job.job_id: self.api.job(job.job_id) for job in self.jobs}
        jobs_of_tx: dict[str, set[int]] = defaultdict(set)
        gas_of_tx: dict[str, int] = {}
        for job_id, detail in timelines.items():
            for event in detail["timeline"]:
                jobs_of_tx[event["tx_hash"]].add(job_id)
                gas_of_tx[event["tx_hash"]] = event["gas_used"] or 0
        for job in self.jobs:
            detail = timelines[job.job_id]
            txs = {event["tx_hash"] for event in detail["timeline"]}
            job.gas = sum(gas_of_tx[tx] // len(jobs_of_tx[tx]) for tx in txs)
            if detail["finished_at"] is not None:
                job.seconds = detail["finished_at"] - detail["posted_at"]

    # ── summary ──

    def summary(self, started: float) -> None:
        console = self.console
        jobs = Table(title="Jobs by kind (results downloaded, checked against the chain, recomputed locally)")
        for column in (
            "kind",
            "replicas",
            "paid in",
            "jobs",
            "outcomes",
            "results",
            "gas per job",
            "settled in",
        ):
            jobs.add_column(
                column, justify="right" if column in ("replicas", "jobs", "gas per job") else "left"
            )
        groups: dict[str, list[PostedJob]] = defaultdict(list)
        for job in self.jobs:
            groups[job.kind.label].append(job)
        for label, group in groups.items():
            kind = group[0].kind
            outcomes = Counter(job.status for job in group)
            checked = [job for job in group if job.verified is not None]
            good = sum(bool(job.verified) for job in checked)
            results = f"{good}/{len(checked)} verified" + (
                " [green]✓[/]" if good == len(checked) else " [red]✗[/]"
            )
            wrong = [job for job in checked if not job.verified]
            if wrong:
                winners = {
                    self.names.get(a["provider"], a["provider"][:8]) for j in wrong for a in j.assignments
                }
                results += f" (wrong from {', '.join(sorted(winners))})"
            times = sorted(job.seconds for job in group if job.seconds is not None)
            jobs.add_row(
                label, str(kind.replicas), kind.token, str(len(group)),
                ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())),
                results if checked else "—", f"{sum(j.gas for j in group) // len(group):,}",
                f"{times[len(times) // 2]}s median" if times else "—",
            )  # fmt: skip
        console.print(jobs)

        providers = Table(title="Providers (as the marketplace indexed them)")
        for column in (
            "provider",
            "jobs won",
            "jobs slashed",
            "slashed",
            "earned ETH",
            "earned TUSD",
            "stake free",
        ):
            providers.add_column(column, justify="left" if column == "provider" else "right")
        for address, role in self.roles.items():
            entry = self.api.provider(address)
            earned = entry["earned"]
            slashed = int(entry["slashed_amount"])
            providers.add_row(
                role, str(entry["jobs_completed"]), str(entry["jobs_slashed"]),
                f"[red]{slashed / ETHER:g} ETH[/]" if slashed else "—",
                f"{int(earned.get(ETH, 0)) / ETHER:g}", f"{int(earned.get(self.world.token, 0)) / ETHER:g}",
                f"{int(entry['staked']) / ETHER:g} ETH",
            )  # fmt: skip
        console.print(providers)

        outcomes = Counter(job.status for job in self.jobs)
        checked = [job for job in self.jobs if job.verified is not None]
        good = sum(bool(job.verified) for job in checked)
        gas = sum(job.gas for job in self.jobs) // max(1, len(self.jobs))
        console.print(
            f"[bold]{len(self.jobs)} jobs[/]: "
            + ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
            + f". Results verified: {good}/{len(checked)}. Gas per job: {gas:,}. "
            f"Wall time {time.monotonic() - started:.1f}s."
        )
        if good < len(checked):
            console.print(
                "  A single-replica job trusts its one provider: mallory's wrong answers there were paid. "
                "Post 3 replicas for work you cannot check yourself."
            )
        console.print(f"Dashboard: [bold]{self.sandbox.api_url}/[/]")


def run_live_demo(
    console: Console, kind: ChainKind = ChainKind.ANVIL, *, jobs: int = DEFAULT_JOBS,
    byzantine: str = "wrong-result", keep_running: bool = False, workdir: Path | None = None,
) -> dict[str, int]:  # fmt: skip
    """Runs the demo; returns the count of jobs by final status."""
    started = time.monotonic()
    if not console.is_terminal:
        console = Console(width=120)  # logs and CI: no terminal to size the tables to
    temporary = workdir is None
    root = Path(tempfile.mkdtemp(prefix="cmarket-demo-")) if workdir is None else workdir
    specs = [
        ProviderSpec("alice", 4),
        ProviderSpec("bob", 5),
        ProviderSpec("mallory", 6, byzantine=byzantine),
    ]
    console.print(
        f"[bold]ComputeMarket demo[/]: {jobs} jobs on a fresh {kind} devnet (logs in {root / 'logs'})"
    )
    sandbox = Sandbox(root, specs, chain=kind, ray_cpus=max(1, min(2, os.cpu_count() or 1)))
    try:
        sandbox.start(on_step=lambda step: console.print(f"[bold cyan]▸[/] {step}"))
        console.print(f"  dashboard [bold]{sandbox.api_url}/[/]  (open it to watch the market live)")
        demo = LiveDemo(console, sandbox)
        demo.fund_requester()
        console.print(
            "[bold cyan]▸[/] carol posts built-in and WebAssembly jobs, 1 and 3 replicas, ETH and TUSD"
        )
        demo.post(jobs)
        console.print("[bold cyan]▸[/] providers claim, run on Ray, commit, reveal and settle")
        demo.follow()
        console.print("[bold cyan]▸[/] checking every result and reading the index")
        demo.verify()
        demo.measure()
        demo.summary(started)
        if keep_running:
            console.print("The market keeps running: press Ctrl-C to stop it.")
            for _ in itertools.count():
                time.sleep(1)
        outcome = dict(Counter(job.status for job in demo.jobs))
    except BaseException:
        console.print(f"[red]the demo stopped early[/]; the logs of every process are in {root / 'logs'}")
        raise
    finally:
        console.print("stopping providers, marketplace, Ray and the devnet ...")
        sandbox.stop()
    if temporary:
        shutil.rmtree(root, ignore_errors=True)
    return outcome
