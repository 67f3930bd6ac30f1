"""The scripted story (`cmarket demo --scripted`): the protocol alone, every role played by this process.

Three scripted providers (one of them dishonest) run a tiny deterministic workload, iterated
SHA-256, for a requester who posts single-replica and three-replica jobs in ETH and in an
ERC-20; the summary shows each job's outcome, who was paid and slashed, and the gas of each step.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from ...chain.bootstrap import DevnetMarket, setup_devnet_market
from ...chain.devnet import ChainKind, Devnet
from ...chain.market import Market, MarketActor, TxResult, bind, encode_call
from ...chain.sender import Call, TxSender
from ...protocol.hashing import commitment, sha256
from ...protocol.spec import spec_hash
from ...protocol.status import JobStatus
from ...protocol.views import ETH, JobParams

ETHER = 10**18
STAKE = 5 * ETHER
COLLATERAL = ETHER // 10


@dataclass
class GasLedger:
    """Gas used per contract function, across every account."""

    by_function: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def record(self, function: str, gas: int) -> None:
        self.by_function[function].append(gas)

    def total(self) -> int:
        return sum(sum(values) for values in self.by_function.values())


class DemoActor(MarketActor):
    """A named account whose transactions are recorded in the gas ledger."""

    def __init__(self, name: str, market: Market, sender: TxSender, ledger: GasLedger) -> None:
        super().__init__(market, sender)
        self.name = name
        self.ledger = ledger

    def send(self, call: Call) -> TxResult:
        result = super().send(call)
        self.ledger.record(call.label, result.gas_used)
        return result


def iterated_sha256(seed: str, rounds: int) -> bytes:
    """The demo workload: SHA-256 applied `rounds` times to the seed. Deterministic everywhere."""
    digest = seed.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest


def workload_spec(seed: str, rounds: int) -> dict[str, object]:
    return {
        "workload": {"kind": "builtin", "name": "iterated-sha256"},
        "args": {"seed": seed, "rounds": rounds},
        "inputs": [],
        "limits": {"fuel": rounds, "memory_mb": 16, "timeout_s": 60},
    }


@dataclass
class DemoJob:
    job_id: int
    label: str
    replicas: int
    token: str
    reward: int
    spec: dict[str, object]
    outcome: JobStatus = JobStatus.OPEN
    result_hash: bytes = b""
    winners: list[str] = field(default_factory=list)
    gas: int = 0

    def honest_result(self) -> bytes:
        args = self.spec["args"]
        assert isinstance(args, dict)
        return sha256(iterated_sha256(str(args["seed"]), int(args["rounds"])))


class Demo:
    def __init__(self, console: Console, node: Devnet, world: DevnetMarket) -> None:
        self.console = console
        self.node = node
        self.world = world
        self.market = world.market
        self.ledger = GasLedger()
        w3 = world.w3
        self.token = bind(w3, "TestToken", world.token)

        def actor(name: str, index: int) -> DemoActor:
            return DemoActor(name, self.market, TxSender(w3, node.accounts[index]), self.ledger)

        self.requester = actor("carol", 2)
        self.alice = actor("alice", 4)
        self.bob = actor("bob", 5)
        self.mallory = actor("mallory", 6)
        self.providers = [self.alice, self.bob, self.mallory]
        self.treasury = actor("treasury", 1)
        self.jobs: list[DemoJob] = []
        self.names: dict[str, str] = {
            a.address: a.name for a in [self.requester, *self.providers, self.treasury]
        }
        self.roles: dict[str, str] = {
            self.requester.address: "carol, requester",
            self.mallory.address: "mallory, dishonest",
        }

    # ── narration ──

    def say(self, message: str) -> None:
        self.console.print(f"  {message}")

    def step(self, title: str) -> None:
        self.console.print(f"[bold cyan]▸ {title}[/]")

    # ── set-up ──

    def set_up(self) -> None:
        self.step("Providers register and stake 5 ETH each; the requester mints 1,000 TUSD")
        for provider in self.providers:
            provider.register(f"demo://{provider.name.split()[0]}")
            provider.stake(STAKE)
        self.requester.send(encode_call(self.token, "mint", self.requester.address, 1000 * ETHER))
        self.requester.send(encode_call(self.token, "approve", self.market.address, 2**256 - 1))

    def post(self, label: str, replicas: int, token: str, reward: int, rounds: int = 20_000) -> DemoJob:
        spec = workload_spec(f"{label}-{len(self.jobs)}", rounds)
        params = JobParams(
            spec_hash=spec_hash(spec),
            reward_per_replica=reward,
            replicas=replicas,
            token=token,
            collateral_per_replica=COLLATERAL,
            claim_window=600,
            run_timeout=600,
            reveal_window=600,
        )
        job_id, result = self.requester.post_job(params)
        job = DemoJob(job_id, label, replicas, token, reward, spec, gas=result.gas_used)
        self.jobs.append(job)
        return job

    def settle(self, job: DemoJob, result: TxResult) -> None:
        job.gas += result.gas_used
        finalized = result.named("JobFinalized")
        if finalized:
            event = finalized[0]
            job.outcome = event["outcome"]
            raw_hash = bytes(event["resultHash"])
            job.result_hash = raw_hash if any(raw_hash) else b""  # a failed job has no result
            job.winners = list(event["winners"])
        for slash in result.named("Slashed"):
            amount = slash["amount"] / ETHER
            self.say(f"[red]{self.names[slash['provider']]} slashed {amount:g} ETH on job {job.job_id}[/]")

    def run_replicated(
        self,
        job: DemoJob,
        answers: dict[DemoActor, Callable[[DemoJob], bytes] | None],
        reveal: set[DemoActor],
    ) -> None:
        """Each provider claims, commits its answer (None: never commits), and reveals if in `reveal`."""
        self.wait_for_seats([job.job_id], list(answers))
        for provider in answers:
            job.gas += provider.claim(job.job_id).gas_used
        salts = {provider: sha256(f"{provider.address}/{job.job_id}".encode()) for provider in answers}
        results: dict[DemoActor, bytes] = {}
        for provider, answer in answers.items():
            if answer is None:
                self.say(f"{provider.name} crashed and never commits")
                continue
            results[provider] = answer(job)
            digest = commitment(job.job_id, provider.address, results[provider], salts[provider])
            job.gas += provider.commit(job.job_id, digest).gas_used
        if len(results) < job.replicas:
            self.node.increase_time(601)  # the commit deadline passes
        for provider, result_hash in results.items():
            if provider in reveal:
                job.gas += provider.reveal(job.job_id, result_hash, salts[provider]).gas_used
            else:
                self.say(f"{provider.name} committed but never reveals")
        if len(reveal & results.keys()) < len(results):
            self.node.increase_time(601)  # the reveal deadline passes
        self.settle(job, self.alice.finalize(job.job_id))

    def wait_for_seats(self, job_ids: list[int], providers: Sequence[MarketActor]) -> None:
        """Seats go by stake-weighted sortition: lets the chain's clock run until each of
        `providers` may claim each job (at most half the claim window, when all may)."""
        self.node.mine()  # the posting block's hash seeds the draw: it is known from the next block on
        ready = {
            (self.names.get(provider.address, provider.address), job_id): self.market.eligible_from(
                job_id, provider.address
            )
            for job_id in job_ids
            for provider in providers
        }
        latest = self.node.latest_timestamp()
        wait = max((at or latest) - latest for at in ready.values())
        if wait > 0:
            later = sorted({name for (name, _), at in ready.items() if (at or 0) > latest})
            self.say(
                f"the draw makes {', '.join(later)} eligible only {wait} s after posting: the clock runs on"
            )
            self.node.set_next_block_timestamp(latest + wait)
            self.node.mine()

    # ── the story ──

    def run(self) -> None:
        honest: Callable[[DemoJob], bytes] = DemoJob.honest_result

        def lie(job: DemoJob) -> bytes:
            return sha256(b"made up " + job.label.encode())

        eth, tusd = ETH, self.token.address
        self.step("Single-replica jobs: the provider submits and is paid in the same transaction")
        for provider, token, reward in ((self.alice, eth, ETHER // 20), (self.bob, tusd, 20 * ETHER)):
            job = self.post("iterated-sha256", 1, token, reward)
            self.wait_for_seats([job.job_id], [provider])
            job.gas += provider.claim(job.job_id).gas_used
            self.settle(job, provider.submit_result(job.job_id, job.honest_result()))
            self.say(f"job {job.job_id}: {provider.name} ran it and was paid")

        self.step("Three replicas, mallory reveals a wrong result")
        job = self.post("iterated-sha256", 3, eth, ETHER // 20)
        self.run_replicated(
            job, {self.alice: honest, self.bob: honest, self.mallory: lie}, set(self.providers)
        )

        self.step("Three replicas in TUSD, mallory commits but never reveals")
        job = self.post("iterated-sha256", 3, tusd, 10 * ETHER)
        self.run_replicated(
            job, {self.alice: honest, self.bob: honest, self.mallory: lie}, {self.alice, self.bob}
        )

        self.step("Three replicas with no majority: bob crashes, mallory lies")
        job = self.post("iterated-sha256", 3, eth, ETHER // 20)
        self.run_replicated(job, {self.alice: honest, self.bob: None, self.mallory: lie}, set(self.providers))
        self.say(
            f"job {job.job_id}: no quorum, the requester is refunded; bob's collateral goes to the treasury"
        )

        self.step("A job nobody claims is cancelled by its requester")
        job = self.post("iterated-sha256", 1, eth, ETHER // 20)
        self.settle(job, self.requester.cancel(job.job_id))
        job.outcome = JobStatus.CANCELLED

        self.step("Ten small jobs in one batch: postJobs, claimJobs, submitResults")
        specs = [workload_spec(f"batch-{i}", 1_000) for i in range(10)]
        params = [
            JobParams(
                spec_hash=spec_hash(s), reward_per_replica=ETHER // 100, collateral_per_replica=COLLATERAL
            )
            for s in specs
        ]
        job_ids, posted = self.requester.post_jobs(params)
        batch = [DemoJob(j, "batch", 1, eth, ETHER // 100, s) for j, s in zip(job_ids, specs, strict=True)]
        self.wait_for_seats(job_ids, [self.bob])
        claimed = self.bob.claim_many(job_ids)
        settled = self.bob.submit_results(job_ids, [job.honest_result() for job in batch])
        per_job = (posted.gas_used + claimed.gas_used + settled.gas_used) // len(batch)
        for job, event in zip(batch, settled.named("JobFinalized"), strict=True):
            job.outcome = event["outcome"]
            job.result_hash = bytes(event["resultHash"])
            job.winners = list(event["winners"])
            job.gas = per_job
        self.jobs.extend(batch)
        self.say(f"10 jobs settled at {per_job:,} gas each")

        self.step("Everyone withdraws what they are owed")
        self.balances_before = {a.address: self.market.credits(a.address, eth) for a in self.everyone()}
        self.token_before = {a.address: self.market.credits(a.address, tusd) for a in self.everyone()}
        for account in self.everyone():
            for token in (eth, tusd):
                if self.market.credits(account.address, token):
                    account.withdraw(token)

    def job_groups(self) -> list[list[DemoJob]]:
        """Jobs in posting order, with each batch as one group."""
        groups: list[list[DemoJob]] = []
        for job in self.jobs:
            if groups and job.label == "batch" and groups[-1][0].label == "batch":
                groups[-1].append(job)
            else:
                groups.append([job])
        return groups

    def everyone(self) -> list[DemoActor]:
        return [self.requester, *self.providers, self.treasury]

    # ── summary ──

    def summary(self, seconds: float) -> None:
        def amount(wei: int, token: str) -> str:
            return f"{wei / ETHER:g} {'ETH' if token == ETH else 'TUSD'}"

        jobs = Table(title="Jobs (result hashes checked against a local run of the workload)")
        for column in ("job", "replicas", "reward each", "outcome", "result", "paid", "gas per job"):
            jobs.add_column(
                column, justify="right" if column in {"job", "replicas", "gas per job"} else "left"
            )
        styles = {JobStatus.COMPLETED: "green", JobStatus.FAILED: "red", JobStatus.CANCELLED: "yellow"}

        def result_text(group: list[DemoJob]) -> str:
            settled = [job for job in group if job.result_hash]
            if not settled:
                return "—"
            verified = sum(job.result_hash == job.honest_result() for job in settled)
            mark = "[green]✓[/]" if verified == len(settled) else "[red]✗[/]"
            if len(group) == 1:
                return f"0x{settled[0].result_hash.hex()[:8]}… {mark}"
            return f"{verified}/{len(settled)} verified {mark}"

        for group in self.job_groups():
            first = group[0]
            outcomes = {job.outcome for job in group}
            outcome = first.outcome if len(outcomes) == 1 else None
            outcome_text = f"[{styles.get(first.outcome, '')}]{first.outcome}[/]" if outcome else "mixed"
            if len(group) > 1:
                outcome_text = f"{len(group)} × {outcome_text}"
            winners = {self.names[w].split()[0]: None for job in group for w in job.winners}
            ids = str(first.job_id) if len(group) == 1 else f"{first.job_id}–{group[-1].job_id}"
            jobs.add_row(
                ids, str(first.replicas), amount(first.reward, first.token), outcome_text,
                result_text(group), ", ".join(winners) or "—", f"{sum(j.gas for j in group) // len(group):,}",
            )  # fmt: skip
        self.console.print(jobs)

        accounts = Table(title="Accounts (everything credited was withdrawn at the end)")
        for column in ("account", "ETH credited", "TUSD credited", "slashed", "stake free/locked"):
            accounts.add_column(column)
        slashed: dict[str, int] = defaultdict(int)
        for event in self.market.decode_logs(
            self.world.w3.eth.get_logs({"address": self.market.address, "fromBlock": 0, "toBlock": "latest"})
        ):
            if event.name == "Slashed":
                slashed[event["provider"]] += event["amount"]
        for account in self.everyone():
            info = self.market.provider(account.address)
            stake = (
                f"{info.free_stake / ETHER:g}/{info.locked_stake / ETHER:g} ETH" if info.registered else "—"
            )
            accounts.add_row(
                self.roles.get(account.address, account.name),
                f"{self.balances_before[account.address] / ETHER:g}",
                f"{self.token_before[account.address] / ETHER:g}",
                f"[red]{slashed[account.address] / ETHER:g} ETH[/]" if slashed[account.address] else "—",
                stake,
            )
        self.console.print(accounts)

        gas = Table(title="Gas by contract function")
        for column in ("function", "calls", "average", "max"):
            gas.add_column(column, justify="left" if column == "function" else "right")
        for function, values in sorted(self.ledger.by_function.items()):
            gas.add_row(function, str(len(values)), f"{sum(values) // len(values):,}", f"{max(values):,}")
        self.console.print(gas)

        counts: dict[JobStatus, int] = defaultdict(int)
        for job in self.jobs:
            counts[job.outcome] += 1
        outcome_text = ", ".join(
            f"{count} {status}" for status, count in sorted(counts.items(), key=lambda item: item[0].code)
        )
        transactions = sum(len(values) for values in self.ledger.by_function.values())
        self.console.print(
            f"[bold]{len(self.jobs)} jobs[/]: {outcome_text}. "
            f"{self.ledger.total():,} gas in {transactions} transactions. Wall time {seconds:.1f}s."
        )


def run_scripted_demo(console: Console, kind: ChainKind = ChainKind.ANVIL) -> None:
    started = time.monotonic()
    if not console.is_terminal:
        console = Console(width=110)  # logs and CI: no terminal to size the tables to
    console.print(f"[bold]ComputeMarket demo[/] on a fresh {kind} devnet")
    with Devnet(kind) as node:
        world = setup_devnet_market(node)
        console.print(f"  market {world.deployment.market} at {node.rpc_url} (chain {node.chain_id})")
        demo = Demo(console, node, world)
        demo.set_up()
        demo.run()
        demo.summary(time.monotonic() - started)
