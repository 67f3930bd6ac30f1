"""The provider daemon: hears of jobs, claims what its policy accepts, runs them on Ray, and
settles them on-chain (commit, reveal, finalize, or one submit for a single replica), then
withdraws what it earned.

One loop does everything, in rounds: intake (intake.py) picks what to claim, the executor
computes (compute.py), the planner (planner.py) decides what each held job needs next from the
chain's view of it, and the gateway (gateway.py) sends it, pipelined, and reports what got mined.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3Exception

from marketplace.chain.deploy import connect
from marketplace.chain.market import Market
from marketplace.chain.rpc import RpcClient
from marketplace.chain.sender import Call
from marketplace.client import MarketplaceApi
from marketplace.protocol.errors import ChainError, ContractRevert, MarketError
from marketplace.protocol.hashing import Hash32, commitment
from marketplace.protocol.views import ETH, Settlement

from . import planner
from .byzantine import Copier, behaviour_for
from .compute import Compute
from .config import ProviderConfig
from .errors import ProviderError
from .executor import Executor, RayExecutor
from .feed import JobFeed
from .gateway import ChainGateway, Head, Mined
from .intake import Candidate, Intake, Prepared
from .metrics import ProviderMetrics
from .planner import HOLDING, SENDING, ChainTime, Conduct
from .policy import Capacity
from .state import LocalState, Stage, StateLock, WorkRecord

# What a round survives: a node or marketplace that is down or answers nonsense for a while.
TRANSIENT = (MarketError, OSError, Web3Exception, httpx.HTTPError)
WITHDRAW_CHECK_SECONDS = 5.0
FINALITY_CHECK_SECONDS = 1.0
BACKOFF_SECONDS = (1.0, 60.0)  # first and longest wait before an action that failed is tried again

log = logging.getLogger("cmarket.provider")


class DaemonError(ProviderError):
    """The daemon cannot start or go on."""


@dataclass(frozen=True)
class Step:
    """A settlement transaction: the stage saved before sending it, and the event (by this
    provider) that marks a job done, with the stage it then takes (None: the event ends the job)."""

    action: str
    past: str  # what the log says when it is done
    sending: Stage
    event: str
    done: Stage | None


SUBMIT = Step("submit", "submitted", Stage.COMMITTING, "JobFinalized", None)
COMMIT = Step("commit", "committed", Stage.COMMITTING, "ResultCommitted", Stage.COMMITTED)
REVEAL = Step("reveal", "revealed", Stage.REVEALING, "ResultRevealed", Stage.REVEALED)
CLAIM = Step("claim", "claimed", Stage.CLAIMING, "JobClaimed", Stage.CLAIMED)
STEPS = {step.action: step for step in (SUBMIT, COMMIT, REVEAL, CLAIM)}


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
        self._watched: set[int] = set()  # single-replica jobs read on-chain each round (see _settle_round)
        self._ready_since: dict[int, float] = {}  # jobs seen ready to finalize, and since when
        self._backoff: dict[int, tuple[float, float]] = {}  # job -> (when to try again, the last wait)
        self._next_withdraw_check = 0.0
        self._next_finality_check = 0.0
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
        self._reconcile(
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
        """Waits for work: results from the executor, or the next round."""
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
            progressed |= self._take_mined()
            if not self.draining.is_set():
                if self.intake.hear(self.state.known):
                    self.state.set_meta("feed_block", str(self.feed.last_block))
                progressed |= self._claim_round()
            progressed |= self.compute.dispatch(self._prepare)
            progressed |= self.compute.collect(timeout=0.0)
            progressed |= self._settle_round()
            self.compute.upload()
            self._withdraw_earnings()
            self._follow_finality()
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
        chosen = self.intake.due(self._time.next_block, capacity)
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
        self._send(CLAIM, records, self.calls.claim_jobs(ids))

    def _prepare(self, job_id: int, spec_hash: Hash32) -> Prepared | None:
        """A claimed job's spec and plan (fetched again after a restart); None while fetching."""
        self.intake.start_preparing([(job_id, spec_hash)])
        return self.intake.prepared(job_id)

    # ── settling ──

    def _settle_round(self) -> bool:
        """Sends whatever the held jobs need next: submits, commits, reveals, finalizations, cancels."""
        busy = self.gateway.busy_jobs()
        records = [r for r in self.state.active() if r.job_id not in busy and r.stage is not Stage.ENDED]
        stale = [r for r in records if r.stage in SENDING]  # a send that failed, or a crash mid-send
        if stale:
            self._reconcile(stale)
            records = [r for r in self.state.active() if r.job_id not in busy and r.stage is not Stage.ENDED]
        now = time.monotonic()
        records = [r for r in records if self._backoff.get(r.job_id, (0.0, 0.0))[0] <= now]
        # A single replica needs no reading: it is computed, then submitted; only one whose submit
        # did not go through is watched on-chain like the replicated ones.
        self._watched &= {r.job_id for r in records}
        direct = [r for r in records if r.replicas == 1 and r.job_id not in self._watched]
        plan = planner.SettlePlan(submit=[r for r in direct if r.stage is Stage.COMPUTED])
        watched = [r for r in records if r.replicas > 1 or r.job_id in self._watched]
        if watched:
            views = self.reader.jobs(r.job_id for r in watched)
            ended = [r for r in watched if r.job_id not in views or views[r.job_id].status.terminal]
            if ended:
                self._settle_from_chain(ended)

            def waited(job_id: int) -> float:
                return now - self._ready_since.setdefault(job_id, now)

            found = planner.plan(
                [r for r in watched if r not in ended], views, self._time, self.conduct,
                waited=waited, finalize_grace=max(2.0, 3 * self._time.interval),
            )  # fmt: skip
            plan.submit += found.submit
            plan.commit, plan.reveal, plan.finalize, plan.cancel = (
                found.commit, found.reveal, found.finalize, found.cancel,
            )  # fmt: skip
        for chunk in self._batches(plan.submit):
            ids, hashes = [r.job_id for r in chunk], [self._hash(r) for r in chunk]
            self._send(SUBMIT, chunk, self.calls.submit_results(ids, hashes))
        for chunk in self._batches(plan.commit):
            self._commit(chunk)
        for chunk in self._batches(plan.reveal):
            self._reveal(chunk)
        for chunk in self._batches(plan.finalize):
            self._send_plain("finalize", chunk, self.calls.finalize_jobs([r.job_id for r in chunk]))
        for record in plan.cancel:
            self._send_plain("cancel", [record], self.calls.cancel_job(record.job_id))
        return plan.any()

    def _batches(self, records: list[WorkRecord]) -> list[list[WorkRecord]]:
        size = self.config.max_batch
        return [records[start : start + size] for start in range(0, len(records), size)]

    @staticmethod
    def _hash(record: WorkRecord) -> Hash32:
        assert record.result_hash is not None
        return record.result_hash

    def _commit(self, records: list[WorkRecord]) -> None:
        if self.copier is not None:
            records = self._copy_commitments(records)
            if not records:
                return
        ids = [r.job_id for r in records]
        self._send(COMMIT, records, self.calls.commit_results(ids, [self._commitment_of(r) for r in records]))

    def _commitment_of(self, record: WorkRecord) -> Hash32:
        if self.copier is not None:
            return self._hash(record)  # what the copier "commits to" is the copied commitment itself
        assert record.salt is not None
        return commitment(record.job_id, self.address, self._hash(record), record.salt)

    def _copy_commitments(self, records: list[WorkRecord]) -> list[WorkRecord]:
        assert self.copier is not None
        copied = []
        for record in records:
            found = self.copier.commitment(record.job_id)
            if found is not None:  # nothing to copy yet: wait for an honest provider to commit
                copied.append(record.with_(result_hash=Hash32(found), salt=None))
        return self.state.save(copied)

    def _reveal(self, records: list[WorkRecord]) -> None:
        if self.copier is not None:
            self._replay_reveals(records)
            return
        ids = [r.job_id for r in records]
        salts = [r.salt for r in records if r.salt is not None]
        self._send(REVEAL, records, self.calls.reveal_results(ids, [self._hash(r) for r in records], salts))

    def _replay_reveals(self, records: list[WorkRecord]) -> None:
        """The copy mode's reveal: another provider's result hash and salt, which cannot match."""
        assert self.copier is not None
        for record in records:
            found = self.copier.reveal(record.job_id)
            if found is None:
                continue
            try:
                self.gateway.send(
                    REVEAL.action, self.calls.reveal_result(record.job_id, *found), [record.job_id]
                )
            except ContractRevert as exc:
                log.warning("copied reveal refused", extra={"job_id": record.job_id, "error": str(exc)})
                self.state.save([record.with_(stage=Stage.REVEALED, error_code="copied", error=str(exc))])
                continue
            self.state.save([record.with_(stage=REVEAL.sending)])

    # ── sending, and what got mined ──

    def _send(self, step: Step, records: list[WorkRecord], call: Call) -> None:
        """Saves the sending stage, then sends; a send that fails at once is reconciled."""
        records = self.state.save(r.with_(stage=step.sending) for r in records)
        self._send_plain(step.action, records, call)

    def _send_plain(self, action: str, records: list[WorkRecord], call: Call) -> None:
        ids = [r.job_id for r in records]
        try:
            self.gateway.send(action, call, ids, seats=sum(r.replicas for r in records))
        except (ChainError, Web3Exception) as exc:
            log.warning("%s of %s not sent: %s", action, ids, exc)
            self._failed(action, records)
            return
        self.metrics.transactions.labels(call.label).inc()

    def _failed(self, action: str, records: list[WorkRecord]) -> None:
        """After a send that failed: back off from the jobs a while, and follow the chain again."""
        now = time.monotonic()
        for record in records:
            _, wait = self._backoff.get(record.job_id, (0.0, BACKOFF_SECONDS[0] / 2))
            wait = min(BACKOFF_SECONDS[1], wait * 2)
            self._backoff[record.job_id] = (now + wait, wait)
            if action == SUBMIT.action:
                self._watched.add(record.job_id)
        self._reconcile([r for r in (self.state.get(r.job_id) for r in records) if r is not None])

    def _take_mined(self) -> bool:
        """Acts on what the gateway saw mined (or fail, or move in a reorg) since the last round."""
        moved = self.gateway.reorged()  # first: what it sends again is then followed like the rest
        if moved:
            log.warning(
                "a reorg took transactions out of their blocks", extra={"actions": [s.action for s in moved]}
            )
            gone = [s for s in moved if s not in self.gateway.in_flight()]
            self._reconcile(self._live(job_id for sent in gone for job_id in sent.job_ids))
        mined = self.gateway.poll()
        for outcome in mined:
            if outcome.result is not None:
                self.metrics.gas.labels(outcome.sent.pending.call.label).inc(outcome.result.gas_used)
            self._mined(outcome)
        moved = self.gateway.reorged()
        if moved:
            log.warning(
                "a reorg took transactions out of their blocks", extra={"actions": [s.action for s in moved]}
            )
            # Those sent again are followed when they are mined again; the others are gone.
            gone = [s for s in moved if s not in self.gateway.in_flight()]
            self._reconcile(self._live(job_id for sent in gone for job_id in sent.job_ids))
        return bool(mined)

    def _live(self, job_ids: Iterable[int]) -> list[WorkRecord]:
        """The non-terminal records of these jobs."""
        return [r for r in map(self.state.get, job_ids) if r is not None and not r.stage.terminal]

    def _mined(self, outcome: Mined) -> None:
        sent = outcome.sent
        records = self._live(sent.job_ids)
        if outcome.result is None:
            log.warning("%s of %s failed: %s", sent.action, list(sent.job_ids), outcome.error)
            self._failed(sent.action, records)
            return
        result = outcome.result
        where = {"block": result.block_number, "block_hash": result.receipt["blockHash"].to_0x_hex()}
        step = STEPS.get(sent.action)
        if step is None:  # finalize, cancel, withdraw: read the settlement of the jobs from the events
            ends = result.named("JobFinalized") + result.named("JobCancelled")
            settled = {s.job_id: s for s in map(Settlement.from_event, ends)}
            self._record_settlements([r for r in records if r.job_id in settled], settled)
            if sent.action == "cancel":
                self._reconcile(r for r in records if r.job_id not in settled)
            return
        # A record that moved on meanwhile (a reorg sent its transaction again) is read from the chain.
        moved_on = [r for r in records if r.stage is not step.sending]
        records = [r for r in records if r.stage is step.sending]
        mine = [e for e in result.named(step.event) if step.done is None or e["provider"] == self.address]
        done = {int(e["jobId"]): e for e in mine}
        if step.done is None:  # a submit: the job ended in the same transaction
            settled = {job_id: Settlement.from_event(e) for job_id, e in done.items()}
            self._record_settlements([r for r in records if r.job_id in settled], settled)
        else:
            slots = {job_id: e.args.get("slot") for job_id, e in done.items()}
            self.state.save(
                r.with_(stage=step.done, slot=slots[r.job_id] if step is CLAIM else r.slot, **where)
                for r in records if r.job_id in done
            )  # fmt: skip
        missed = [r for r in records if r.job_id not in done]
        if step is CLAIM:
            for record in missed:
                self.compute.plans.pop(record.job_id, None)
                self.metrics.claims_lost.inc()
        if missed or moved_on:
            self._reconcile([*missed, *moved_on])
        log.info(step.past, extra={"jobs": sorted(done), "skipped": [r.job_id for r in missed]})

    # ── what the chain says ──

    def _reconcile(self, records: Iterable[WorkRecord]) -> None:
        """Sets each record to the stage the chain shows for it (after a failed send, a crash or a reorg)."""
        records = list(records)
        if not records:
            return
        ids = [r.job_id for r in records]
        views = self.reader.jobs(ids)
        seats = self.reader.assignments(ids, self.address)
        head = self.gateway.head()
        ended, fixed = [], []
        for record in records:
            changed = planner.reconciled(record, views.get(record.job_id), seats.get(record.job_id))
            if changed is None:
                ended.append(record)
            elif changed.stage is Stage.ENDED:  # no seat: lost, as of the head
                fixed.append(changed.with_(block=head.number, block_hash=head.hash))
            else:
                fixed.append(changed)
        self._save_ended(fixed)
        if ended:
            self._settle_from_chain(ended)

    def _settle_from_chain(self, records: list[WorkRecord]) -> None:
        settlements = self.reader.settlements(r.job_id for r in records)
        self._record_settlements([r for r in records if r.job_id in settlements], settlements)

    def _record_settlements(self, records: list[WorkRecord], settlements: dict[int, Settlement]) -> None:
        self._save_ended(
            planner.settled(record, settlements[record.job_id], self.address).with_(
                block=settlements[record.job_id].block_number or None,
                block_hash=settlements[record.job_id].block_hash or None,
            )
            for record in records
        )

    def _save_ended(self, records: Iterable[WorkRecord]) -> None:
        """Saves records; those that just ended are counted, and their work forgotten."""
        saved = self.state.save(records)
        for record in saved:
            if record.stage is Stage.ENDED:
                self.compute.forget(record.job_id)
                self._ready_since.pop(record.job_id, None)
                self.metrics.jobs.labels(record.outcome or "ended").inc()
                if record.outcome == "slashed":
                    self.metrics.slashed.inc(record.collateral)

    def _follow_finality(self) -> None:
        """Rows a receipt moved in a block a reorg took away are reconciled again; ended rows whose
        end is final (checked once more against the chain) become terminal."""
        if time.monotonic() < self._next_finality_check:
            return
        self._next_finality_check = time.monotonic() + FINALITY_CHECK_SECONDS
        head: Head = self.gateway.head()
        final_block = head.number - self.config.finality_depth
        recent = [r for r in self.state.moved_since(final_block + 1) if not r.stage.terminal]
        blocks = {r.block: r.block_hash for r in recent if r.block is not None and r.block_hash is not None}
        if blocks:
            kept = self.gateway.canonical(blocks)
            self._reconcile(r for r in recent if r.block not in kept)
        ripe = [r for r in self.state.active() if r.stage is Stage.ENDED and (r.block or 0) <= final_block]
        if not ripe:
            return
        views = self.reader.jobs(r.job_id for r in ripe)
        seats = self.reader.assignments([r.job_id for r in ripe], self.address)
        still = [r for r in ripe if planner.still_ended(r, views.get(r.job_id), seats.get(r.job_id))]
        self.state.save(r.with_(stage=planner.final_stage(r)) for r in still)
        self._reconcile(r for r in ripe if r not in still)

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
                self._send_plain("withdraw", [], self.calls.withdraw(token))
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
