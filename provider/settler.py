"""Settling the jobs a provider holds: each round, what the planner says each job needs is sent
through the gateway (commits, reveals, submits, finalizations, cancels); what gets mined moves the
local rows; a send that fails, a crash or a reorg sends the rows back to what the chain shows; and
rows whose end is final become terminal.

Every send follows one path: the row's sending stage is saved first, then the transaction goes out;
when its receipt comes, the event that marks each job done (by this provider) moves its row on, and
every job it did not do is read from the chain again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from web3.exceptions import Web3Exception

from marketplace.chain.market import MarketCalls
from marketplace.chain.reads import MarketReader
from marketplace.chain.sender import Call
from marketplace.protocol.errors import ChainError, ContractRevert
from marketplace.protocol.hashing import Hash32, commitment
from marketplace.protocol.reverts import selector
from marketplace.protocol.views import Settlement

from . import planner
from .byzantine import Copier
from .compute import Compute
from .config import ProviderConfig
from .gateway import ChainGateway, Head, Mined
from .metrics import ProviderMetrics
from .planner import SENDING, ChainTime, Conduct
from .state import LocalState, Stage, WorkRecord

FINALITY_CHECK_SECONDS = 1.0
# Why a claim may be skipped now and succeed later (the selectors of the contract's errors).
NOT_YET = frozenset(selector(name) for name in ("NotEligible", "SeedNotReady"))
BACKOFF_SECONDS = (1.0, 60.0)  # first and longest wait before an action that failed is tried again

log = logging.getLogger("cmarket.provider")


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


class Settler:
    def __init__(
        self,
        config: ProviderConfig,
        state: LocalState,
        gateway: ChainGateway,
        compute: Compute,
        conduct: Conduct,
        copier: Copier | None,
        metrics: ProviderMetrics,
    ) -> None:
        self.config = config
        self.state = state
        self.gateway = gateway
        self.reader: MarketReader = gateway.reader
        self.calls: MarketCalls = gateway.calls
        self.address = gateway.address
        self.compute = compute
        self.conduct = conduct
        self.copier = copier
        self.metrics = metrics
        self._watched: set[int] = set()  # single-replica jobs read on-chain each round (see settle_round)
        self._ready_since: dict[int, float] = {}  # jobs seen ready to finalize, and since when
        self._backoff: dict[int, tuple[float, float]] = {}  # job -> (when to try again, the last wait)
        self._next_finality_check = 0.0
        self.too_early: set[int] = set()  # claims the draw did not allow yet when they were mined

    def settle_round(self, time_: ChainTime) -> bool:
        """Sends whatever the held jobs need next: submits, commits, reveals, finalizations, cancels."""
        busy = self.gateway.busy_jobs()
        records = [r for r in self.state.active() if r.job_id not in busy and r.stage is not Stage.ENDED]
        stale = [r for r in records if r.stage in SENDING]  # a send that failed, or a crash mid-send
        if stale:
            self.reconcile(stale)
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
            ended = {r.job_id for r in watched if r.job_id not in views or views[r.job_id].status.terminal}
            if ended:
                self._settle_from_chain([r for r in watched if r.job_id in ended])

            def waited(job_id: int) -> float:
                return now - self._ready_since.setdefault(job_id, now)

            found = planner.plan(
                [r for r in watched if r.job_id not in ended], views, time_, self.conduct,
                waited=waited, finalize_grace=max(2.0, 3 * time_.interval),
            )  # fmt: skip
            plan.submit += found.submit
            plan.commit, plan.reveal, plan.finalize, plan.cancel = (
                found.commit, found.reveal, found.finalize, found.cancel,
            )  # fmt: skip
        for chunk in self._batches(plan.submit):
            ids, hashes = [r.job_id for r in chunk], [self._hash(r) for r in chunk]
            self.send(SUBMIT, chunk, self.calls.submit_results(ids, hashes))
        for chunk in self._batches(plan.commit):
            self._commit(chunk)
        for chunk in self._batches(plan.reveal):
            self._reveal(chunk)
        for chunk in self._batches(plan.finalize):
            self.send_plain("finalize", chunk, self.calls.finalize_jobs([r.job_id for r in chunk]))
        for record in plan.cancel:
            self.send_plain("cancel", [record], self.calls.cancel_job(record.job_id))
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
        self.send(COMMIT, records, self.calls.commit_results(ids, [self._commitment_of(r) for r in records]))

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
        self.send(REVEAL, records, self.calls.reveal_results(ids, [self._hash(r) for r in records], salts))

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

    def send(self, step: Step, records: list[WorkRecord], call: Call) -> None:
        """Saves the sending stage, then sends; a send that fails at once is reconciled."""
        records = self.state.save(r.with_(stage=step.sending) for r in records)
        self.send_plain(step.action, records, call)

    def send_plain(self, action: str, records: list[WorkRecord], call: Call) -> None:
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
        self.reconcile([r for r in (self.state.get(r.job_id) for r in records) if r is not None])

    def take_mined(self) -> bool:
        """Acts on what the gateway saw mined (or fail, or move in a reorg) since the last round."""
        moved = self.gateway.reorged()  # first: what it sends again is then followed like the rest
        if moved:
            log.warning(
                "a reorg took transactions out of their blocks", extra={"actions": [s.action for s in moved]}
            )
            gone = [s for s in moved if s not in self.gateway.in_flight()]
            self.reconcile(self._live(job_id for sent in gone for job_id in sent.job_ids))
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
            self.reconcile(self._live(job_id for sent in gone for job_id in sent.job_ids))
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
                self.reconcile(r for r in records if r.job_id not in settled)
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
            early = {int(e["jobId"]) for e in result.named("BatchItemSkipped") if e["reason"] in NOT_YET}
            self.too_early |= early & {r.job_id for r in missed}  # the draw's turn came later: try again
            for record in missed:
                self.compute.plans.pop(record.job_id, None)
                self.metrics.claims_lost.inc()
        if missed or moved_on:
            self.reconcile([*missed, *moved_on])
        log.info(step.past, extra={"jobs": sorted(done), "skipped": [r.job_id for r in missed]})

    # ── what the chain says ──

    def reconcile(self, records: Iterable[WorkRecord]) -> None:
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

    def follow_finality(self) -> None:
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
            self.reconcile(r for r in recent if r.block not in kept)
        ripe = [r for r in self.state.active() if r.stage is Stage.ENDED and (r.block or 0) <= final_block]
        if not ripe:
            return
        # What ended them is final if the block it was seen in is still on the chain, this deep.
        kept = self.gateway.canonical({r.block: r.block_hash for r in ripe if r.block and r.block_hash})
        self.state.save(r.with_(stage=planner.final_stage(r)) for r in ripe if r.block in kept)
        self.reconcile(r for r in ripe if r.block not in kept)
