"""The provider daemon: hears of jobs, claims what its policy accepts, runs them on Ray, and
settles them on-chain (commit, reveal, finalize, or one submit for a single replica), then
withdraws what it earned.

One loop does everything, in rounds: intake (intake.py) picks what to claim, the executor
computes (compute.py), the settler (settler.py) asks the planner (planner.py) what each held job
needs next from the chain's view of it and has the gateway (gateway.py) send it, pipelined, then
moves the rows on by what got mined.
Crash safety comes from the order of things: a job's row (with its salt and result) is committed
to the local state before any transaction that depends on it is sent, and after a restart the
transactions a previous run left pending are settled or replaced, then every unfinished row is
reconciled with what the chain says happened. Rows follow the chain until what moved them is final,
so a reorg that undoes a step is noticed and the step done again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import httpx
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3Exception

from marketplace.chain.deploy import connect
from marketplace.chain.market import Market
from marketplace.chain.rpc import RpcClient
from marketplace.client import MarketplaceApi
from marketplace.protocol.errors import ChainError, MarketError
from marketplace.protocol.hashing import Hash32
from marketplace.protocol.views import ETH

from .byzantine import Copier, behaviour_for
from .compute import Compute
from .config import ProviderConfig
from .errors import ProviderError
from .executor import Executor, RayExecutor
from .feed import JobFeed
from .gateway import ChainGateway
from .intake import Candidate, Intake, Prepared
from .metrics import ProviderMetrics
from .planner import HOLDING, SENDING, ChainTime, Conduct
from .policy import Capacity
from .settler import CLAIM, Settler
from .state import LocalState, Stage, StateLock, WorkRecord

# What a round survives: a node or marketplace that is down or answers nonsense for a while.
TRANSIENT = (MarketError, OSError, Web3Exception, httpx.HTTPError)
WITHDRAW_CHECK_SECONDS = 5.0

log = logging.getLogger("cmarket.provider")


class DaemonError(ProviderError):
    """The daemon cannot start or go on."""


class ProviderDaemon:
    def __init__(
        self, config: ProviderConfig, account: LocalAccount, *, executor: Executor | None = None
    ) -> None:
        self.config = config
        self.address = account.address
        self.w3 = connect(config.rpc_url)
        self.rpc = RpcClient(config.rpc_url)
        self.market = Market(self.w3, config.market)
        self.gateway = ChainGateway(
            self.w3, self.rpc, self.market, account, finality_depth=config.finality_depth
        )
        self.reader = self.gateway.reader
        self.calls = self.market.calls
        self.api = MarketplaceApi(config.api_url, timeout=15.0)
        self.state = LocalState(config.db_path)
        self.lock = StateLock(config.state_path)
        self.behaviour = behaviour_for(config.byzantine)
        self.conduct = Conduct(reveals=self.behaviour.reveals, copies=self.behaviour.copies)
        self.copier = Copier(self.w3, self.rpc, self.market, self.address) if self.behaviour.copies else None
        self.metrics = ProviderMetrics()
        self.feed = JobFeed(config.api_url, RpcClient(config.rpc_url), self.market)
        self.intake = Intake(
            config, self.address, self.feed, self.reader, self.api, self.behaviour, self.metrics
        )
        self._executor = executor
        self.compute = Compute(
            self.state, lambda: self.executor, self.api, self.behaviour, self.metrics, config.results_dir
        )
        self.settler = Settler(
            config, self.state, self.gateway, self.compute, self.conduct, self.copier, self.metrics
        )
        self._next_withdraw_check = 0.0
        self._time = ChainTime(0, 1.0)
        self.draining = threading.Event()
        self.metrics_port: int | None = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = RayExecutor(self.config.ray_address, num_cpus=self.config.ray_cpus)
        return self._executor

    # ── start-up ──

    def start(self) -> None:
        """Locks the state, checks the chain, stakes, settles what a previous run left pending,
        reconciles unfinished work, starts the feed."""
        self.lock.acquire()
        try:
            chain_id = int(self.w3.eth.chain_id)
            if not self.w3.eth.get_code(self.market.address):
                raise DaemonError(f"no contract at {self.market.address} on chain {chain_id}")
            stake_token = self.market.stake_token
        except ChainError as exc:
            raise DaemonError(f"cannot reach the chain at {self.config.rpc_url}: {exc}") from exc
        self.state.bind(chain_id, self.market.address, self.address)
        self.gateway.settle_previous_run()
        self._ensure_stake(stake_token)
        head = self.gateway.head()
        recent = self.state.moved_since(head.number - self.config.finality_depth + 1)
        self.settler.reconcile(
            {r.job_id: r for r in [*self.state.active(), *recent] if not r.stage.terminal}.values()
        )
        self.feed.last_block = int(self.state.meta("feed_block") or 0)
        self.feed.start()
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.metrics_port)
        if isinstance(self.executor, RayExecutor):
            self.executor.warm_up()  # connects to Ray and starts a worker before the first job
        log.info(
            "provider started",
            extra={
                "provider": self.address, "market": self.market.address, "chain_id": chain_id,
                "resumed_jobs": [record.job_id for record in self.state.active()],
                "byzantine": self.behaviour.mode, "metrics_port": self.metrics_port,
            },
        )  # fmt: skip

    def _ensure_stake(self, stake_token: str) -> None:
        info = self.market.provider(self.address)
        if not info.registered:
            self.gateway.send_now(self.calls.register_provider(self.config.metadata_uri))
            log.info("registered", extra={"metadata_uri": self.config.metadata_uri})
        missing = self.config.stake - self.market.provider(self.address).free_stake
        if missing > 0:
            self.gateway.allow(stake_token, missing)
            self.gateway.send_now(self.calls.stake(missing))
            log.info("staked", extra={"amount": str(missing)})

    # ── the loop ──

    def run(self, stop: threading.Event) -> None:
        """Runs rounds until `stop` is set; then drains (see `drain`)."""
        try:
            while not stop.is_set():
                if not self.step():
                    self._idle(self.config.poll_interval)
            self.drain()
        finally:
            self.close()

    def drain(self) -> None:
        """Stops taking jobs and finishes in-flight work up to the point where nothing is lost by
        stopping (results committed or submitted), for at most `drain_timeout` seconds. Jobs that
        wait for a reveal or finalization stay in the state and go on at the next start."""
        self.draining.set()
        deadline = time.monotonic() + self.config.drain_timeout
        while time.monotonic() < deadline and (self._unsent() or self.gateway.in_flight()):
            if not self.step():
                self._idle(self.config.poll_interval)
        left = self.state.active()
        unsent = (Stage.CLAIMED, Stage.COMPUTED)
        log.info(
            "provider stopped",
            extra={
                "unsent": [r.job_id for r in left if r.stage in unsent],
                "waiting": [r.job_id for r in left if r.stage not in unsent],
            },
        )

    def _unsent(self) -> bool:
        return any(r.stage in (Stage.CLAIMED, Stage.COMPUTED, *SENDING) for r in self.state.active())

    def _idle(self, seconds: float) -> None:
        """Waits for work: receipts, results from the executor, or the next round."""
        if self.gateway.in_flight():
            seconds = min(seconds, self.gateway.receipt_poll_seconds())
        if self._executor is not None and self._executor.in_flight:
            self.compute.collect(timeout=seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        self.feed.stop()
        self.intake.close()
        if self._executor is not None:
            self._executor.close()
        self.api.close()
        self.rpc.close()
        self.state.close()
        self.lock.release()

    def step(self) -> bool:
        """One round of everything; whether anything happened."""
        progressed = False
        try:
            self._time = self.gateway.time()
            progressed |= self.settler.take_mined()
            if self.settler.too_early:  # claims the draw did not allow yet: candidates again
                self.intake.reconsider(self.settler.too_early)
                self.settler.too_early = set()
            if not self.draining.is_set():
                if self.intake.hear(self.state.known):
                    self.state.set_meta("feed_block", str(self.feed.last_block))
                progressed |= self._claim_round()
            progressed |= self.compute.dispatch(self._prepare)
            progressed |= self.compute.collect(timeout=0.0)
            progressed |= self.settler.settle_round(self._time)
            self.compute.upload()
            self._withdraw_earnings()
            self.settler.follow_finality()
        except TRANSIENT as exc:
            log.warning("round failed, retrying: %s: %s", exc.__class__.__name__, exc)
            time.sleep(min(1.0, self.config.poll_interval * 5))
        self._record_gauges()
        return progressed

    # ── claiming ──

    def _claim_round(self) -> bool:
        if not self.intake.candidates:
            return False
        held = [r for r in self.state.active() if r.stage in HOLDING]
        collateral = self.market.provider(self.address).free_stake
        if self.config.collateral_budget is not None:
            locked = sum(record.collateral for record in held)
            collateral = max(0, min(collateral, self.config.collateral_budget - locked))
        capacity = Capacity(jobs=self.config.max_concurrent_jobs - len(held), collateral=collateral)
        head = self.gateway.head_number
        chosen = self.intake.due(self._time.next_block, head, capacity)
        if chosen:
            self._claim(chosen)
        return bool(chosen)

    def _claim(self, chosen: Sequence[Candidate]) -> None:
        records = []
        for candidate in chosen:
            posted = candidate.posted
            assert candidate.plan is not None
            self.compute.plans[candidate.job_id] = candidate.plan
            records.append(
                WorkRecord(
                    job_id=posted.job_id, stage=Stage.CLAIMING, replicas=posted.replicas,
                    spec_hash=posted.spec_hash, token=posted.token, reward=posted.reward_per_replica,
                    collateral=posted.collateral_per_replica,
                )
            )  # fmt: skip
        self.state.add(records)  # before the claim is sent: a crash after it is reconciled, not forgotten
        ids = [record.job_id for record in records]
        self.settler.send(CLAIM, records, self.calls.claim_jobs(ids))

    def _prepare(self, job_id: int, spec_hash: Hash32) -> Prepared | None:
        """A claimed job's spec and plan (fetched again after a restart); None while fetching."""
        self.intake.start_preparing([(job_id, spec_hash)])
        return self.intake.prepared(job_id)

    # ── settling ──

    # ── earnings ──

    def _withdraw_earnings(self) -> None:
        """Withdraws credits over the threshold, in rounds that send nothing else (off the path of
        the jobs' own transactions)."""
        if time.monotonic() < self._next_withdraw_check or self.gateway.in_flight():
            return
        self._next_withdraw_check = time.monotonic() + WITHDRAW_CHECK_SECONDS
        tokens = {ETH, self.market.stake_token, *(r.token for r in self.state.all()[-500:])}
        for token, amount in self.reader.credits(self.address, tokens).items():
            self.metrics.credits.labels(token).set(amount)
            if amount > self.config.withdraw_threshold:
                self.settler.send_plain("withdraw", [], self.calls.withdraw(token))
                self.metrics.withdrawn.labels(token).inc(amount)
                self.metrics.credits.labels(token).set(0)
                log.info("withdrew earnings", extra={"token": token, "amount": str(amount)})

    # ── reporting ──

    def _record_gauges(self) -> None:
        counts: dict[str, int] = {}
        for record in self.state.active():
            counts[record.stage.value] = counts.get(record.stage.value, 0) + 1
        for stage in Stage:
            if not stage.terminal:
                self.metrics.stages.labels(stage.value).set(counts.get(stage.value, 0))
        self.metrics.api_up.set(1 if self.feed.api_up else 0)

    def outcome_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.state.all():
            key = record.outcome or record.stage.value
            counts[key] = counts.get(key, 0) + 1
        return counts
