"""Computing the jobs a provider holds: dispatch to the executor, results made durable (with
their salts) before anything about them is sent, and results handed to the marketplace.

Small results are kept in the state file itself (one fsync a round covers a whole round's results
and salts); larger ones in files of their own beside it, until the marketplace has them.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from marketplace.client import ClientError, MarketplaceApi
from marketplace.protocol.hashing import Hash32, sha256
from marketplace.protocol.spec import JobSpec

from .byzantine import Behaviour
from .executor import Executor
from .metrics import ProviderMetrics
from .policy import Refusal
from .state import LocalState, Stage, WorkRecord
from .workloads import Plan, TaskResult, WorkloadError

log = logging.getLogger("cmarket.provider")

SMALL_RESULT = 1024 * 1024  # results up to this size are kept in the state file, larger ones beside it


class Compute:
    def __init__(
        self,
        state: LocalState,
        executor: Callable[[], Executor],
        api: MarketplaceApi,
        behaviour: Behaviour,
        metrics: ProviderMetrics,
        results_dir: Path,
    ) -> None:
        self.state = state
        self._executor = executor
        self.api = api
        self.behaviour = behaviour
        self.metrics = metrics
        self.results_dir = results_dir
        self.plans: dict[int, Plan] = {}
        self.outputs: dict[int, bytes] = {}

    @property
    def executor(self) -> Executor:
        return self._executor()

    # ── running ──

    def dispatch(self, prepare: Callable[[int, Hash32], tuple[JobSpec, Plan] | Refusal | None]) -> bool:
        """Starts computing the claimed jobs not running yet (planning them again after a restart,
        through `prepare`, which answers None while it fetches)."""
        if self.behaviour.copies:  # the copier computes nothing: its "result" is someone else's
            return False
        start: list[tuple[int, Plan]] = []
        for record in self.state.active():
            if record.stage is not Stage.CLAIMED or self.executor.running(record.job_id):
                continue
            job_plan = self.plans.get(record.job_id)
            if job_plan is None:
                prepared = prepare(record.job_id, record.spec_hash)
                if prepared is None:
                    continue
                if isinstance(prepared, Refusal):  # it planned before the claim: a changed blob store?
                    self.fail(record, WorkloadError(prepared.reason), code=prepared.code)
                    continue
                job_plan = prepared[1]
                self.plans[record.job_id] = job_plan
            start.append((record.job_id, job_plan))
        if start:
            self.executor.submit(start)
        return bool(start)

    def collect(self, timeout: float) -> bool:
        """Takes the executor's finished jobs: results and salts made durable, then uploaded."""
        if not self.executor.in_flight:
            return False
        ended = self.executor.finished(timeout)
        if not ended:
            return False
        computed = []
        for job_id, outcome in ended:
            record = self.state.get(job_id)
            if record is None or record.stage is not Stage.CLAIMED:
                continue  # settled or lost meanwhile (or computed twice): nothing to do
            self.plans.pop(job_id, None)
            if isinstance(outcome, WorkloadError):
                self.fail(record, outcome)
                continue
            computed.append(self._computed(record, outcome))
        small = {
            r.computed_hash.digest: self.outputs[r.job_id]
            for r in computed
            if r.computed_hash is not None and len(self.outputs[r.job_id]) <= SMALL_RESULT
        }
        # Salts and small results are durable (one fsync) before any commit can be sent.
        computed = self.state.save(computed, results=small)
        self.upload(computed)
        return True

    def _computed(self, record: WorkRecord, result: TaskResult) -> WorkRecord:
        digest = sha256(result.output)
        if len(result.output) > SMALL_RESULT:
            self._store_output(digest, result.output)
        self.outputs[record.job_id] = result.output
        claimed = Hash32(self.behaviour.committed_hash(result.output))
        salt = Hash32(secrets.token_bytes(32)) if record.replicas > 1 else None
        self.metrics.tasks.inc()
        self.metrics.fuel.inc(result.fuel_used)
        return record.with_(
            stage=Stage.COMPUTED,
            result_hash=claimed,
            computed_hash=digest,
            salt=salt,
            fuel_used=result.fuel_used,
        )

    def _store_output(self, digest: Hash32, output: bytes) -> None:
        """Keeps a large result in a file of its own (fsynced) until the marketplace has it."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / digest.digest
        if path.exists():
            return
        temporary = path.with_suffix(".partial")
        with temporary.open("wb") as file:
            file.write(output)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)

    def fail(self, record: WorkRecord, error: WorkloadError, *, code: str | None = None) -> None:
        code = code or error.code
        self.state.save(
            [record.with_(stage=Stage.FAILED, error_code=code, error=error.message[:2000], outcome="failed")]
        )
        self.metrics.failures.labels(code).inc()
        self.metrics.jobs.labels("failed").inc()
        log.warning(
            "job failed; no result will be committed",
            extra={"job_id": record.job_id, "code": code, "error": error.message},
        )

    def forget(self, job_id: int) -> None:
        """Stops caring about a job that ended (its task, if still running, is left to finish)."""
        self.plans.pop(job_id, None)
        self.executor.forget(job_id)

    # ── results to the marketplace ──

    def upload(self, records: Sequence[WorkRecord] | None = None) -> None:
        """Puts computed results into the marketplace's blob store (batch requests), so a requester
        finds a result as soon as its job settles. What the marketplace does not take now is tried
        again next round (it is kept meanwhile); the settlement never waits for it."""
        pending = [r for r in (self.state.unuploaded() if records is None else records) if not r.uploaded]
        outputs: dict[int, bytes] = {}
        for record in pending:
            assert record.computed_hash is not None
            output = self.outputs.get(record.job_id)
            if output is None:
                output = self._stored_output(record.computed_hash.digest)
            if output is not None:
                outputs[record.job_id] = output
        if not outputs:
            return
        try:
            self.api.upload_many(list(outputs.values()))
        except ClientError as exc:
            log.warning("results not uploaded yet: %s", exc)
            return
        done = [record.with_(uploaded=True) for record in pending if record.job_id in outputs]
        for record in done:
            self.outputs.pop(record.job_id, None)
        self.state.save(done, drop_results=[r.computed_hash.digest for r in done if r.computed_hash])
        for record in done:
            assert record.computed_hash is not None
            (self.results_dir / record.computed_hash.digest).unlink(missing_ok=True)

    def _stored_output(self, digest: str) -> bytes | None:
        stored = self.state.result(digest)
        if stored is not None:
            return stored
        path = self.results_dir / digest
        return path.read_bytes() if path.exists() else None
