"""The provider daemon: hears of jobs, claims what its policy accepts, runs them on Ray, and
settles them on-chain (commit, reveal, finalize, or one submit for a single replica), then
withdraws what it earned.

One loop does everything that touches the chain, in rounds, each round's transactions batched;
workloads run on the executor meanwhile, and fetching specs and inputs runs in a small thread
pool. Crash safety comes from the order of things: a job's row (with its salt and result) is
committed to the local state before any transaction that depends on it is sent, and after a
restart every unfinished row is reconciled with what the chain says happened, once the account's
pending transactions have been mined. So a `kill -9` at any instant neither loses a reveal nor
sends anything twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field

import httpx
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3Exception

from marketplace.chain.deploy import connect
from marketplace.chain.market import ETH, JobView, Market, MarketActor, TxResult
from marketplace.chain.reads import MarketReader, PostedJob, Settlement
from marketplace.chain.rpc import RpcClient
from marketplace.chain.sender import Call, TxSender
from marketplace.client import ClientError, MarketplaceApi
from marketplace.errors import AssignmentStatus, ChainError, ContractRevert, JobStatus, MarketError
from marketplace.hashing import commitment, sha256
from marketplace.spec import InvalidSpec, JobSpec, parse_spec

from .byzantine import Copier, behaviour_for
from .config import ProviderConfig
from .errors import ProviderError
from .executor import Executor, RayExecutor
from .feed import JobFeed
from .metrics import ProviderMetrics
from .policy import Capacity, Refusal, claim_now, refuse_before_fetching, refuse_plan, rendezvous_rank
from .state import LocalState, Stage, WorkRecord
from .workloads import Plan, TaskResult, WorkloadError, plan

# What a round survives: a node or marketplace that is down or answers nonsense for a while.
TRANSIENT = (MarketError, OSError, Web3Exception, httpx.HTTPError)

log = logging.getLogger("cmarket.provider")

TERMINAL_JOB = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
SENDING = frozenset({Stage.CLAIMING, Stage.COMMITTING, Stage.REVEALING})
HOLDING = frozenset({Stage.CLAIMED, Stage.COMPUTED, Stage.COMMITTED, Stage.REVEALED, *SENDING})
FETCH_RETRY_SECONDS = 2.0
PREPARE_WAIT_SECONDS = 0.25
LEFTOVER_CHECK_SECONDS = 1.0
SMALL_RESULT = 1024 * 1024  # results up to this size are kept in the state file, larger ones beside it
PROVIDERS_REFRESH_SECONDS = 10.0
WITHDRAW_CHECK_SECONDS = 5.0
BLOB_CACHE_BYTES = 256 * 1024 * 1024


class DaemonError(ProviderError):
    """The daemon cannot start or go on."""


@dataclass
class Candidate:
    """An open job the provider heard of and is considering."""

    job_id: int
    seen_at: float
    posted: PostedJob | None = None
    spec: JobSpec | None = None
    plan: Plan | None = None
    refusal: Refusal | None = None
    retry_at: float = 0.0
    checked_at: float = 0.0  # when its on-chain state was last read


@dataclass
class BlobCache:
    """Verified blobs by digest, least recently used dropped beyond `max_bytes` (specs and modules
    are shared by many jobs)."""

    max_bytes: int
    _blobs: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    _size: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get_many(
        self, digests: Iterable[str], fetch: Callable[[list[str]], dict[str, bytes]]
    ) -> dict[str, bytes]:
        """The blobs held, fetching the missing ones with one call; one not found is left out."""
        wanted = list(dict.fromkeys(digests))
        with self._lock:
            found = {digest: self._blobs[digest] for digest in wanted if digest in self._blobs}
            for digest in found:
                self._blobs.move_to_end(digest)
        missing = [digest for digest in wanted if digest not in found]
        if missing:
            fetched = fetch(missing)
            found.update(fetched)
            with self._lock:
                for digest, data in fetched.items():
                    if digest not in self._blobs:
                        self._blobs[digest] = data
                        self._size += len(data)
                while self._size > self.max_bytes and len(self._blobs) > 1:
                    _, dropped = self._blobs.popitem(last=False)
                    self._size -= len(dropped)
        return found


class ProviderDaemon:
    def __init__(
        self, config: ProviderConfig, account: LocalAccount, *, executor: Executor | None = None
    ) -> None:
        self.config = config
        self.account = account
        self.address = account.address
        self.w3 = connect(config.rpc_url)
        self.rpc = RpcClient(config.rpc_url)
        self.market = Market(self.w3, config.market)
        self.reader = MarketReader(self.rpc, self.market)
        self.actor = MarketActor(self.market, TxSender(self.w3, account))
        self.api = MarketplaceApi(config.api_url, timeout=15.0)
        self.state = LocalState(config.db_path)
        self.behaviour = behaviour_for(config.byzantine)
        self.copier = Copier(self.w3, self.rpc, self.market, self.address) if self.behaviour.copies else None
        self.metrics = ProviderMetrics()
        self.feed = JobFeed(config.api_url, RpcClient(config.rpc_url), self.market)
        self._executor = executor
        self.blobs = BlobCache(BLOB_CACHE_BYTES)
        self.candidates: dict[int, Candidate] = {}
        self.plans: dict[int, Plan] = {}
        self.preparing: dict[int, Future[dict[int, tuple[JobSpec, Plan] | Refusal]]] = {}
        self.outputs: dict[int, bytes] = {}
        self.refused: set[int] = set()
        self._watched: set[int] = set()  # single-replica jobs read on-chain each round (see _settle_round)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fetch")
        self._providers: tuple[float, list[str]] = (0.0, [])
        self._next_withdraw_check = 0.0
        self._stake_token = ETH
        self.draining = threading.Event()
        self.metrics_port: int | None = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = RayExecutor(self.config.ray_address, num_cpus=self.config.ray_cpus)
        return self._executor

    # ── start-up ──

    def start(self) -> None:
        """Checks the chain, binds the state file, stakes, reconciles unfinished work, starts the feed."""
        try:
            chain_id = int(self.w3.eth.chain_id)
            if not self.w3.eth.get_code(self.market.address):
                raise DaemonError(f"no contract at {self.market.address} on chain {chain_id}")
            self._stake_token = self.market.stake_token()
        except ChainError as exc:
            raise DaemonError(f"cannot reach the chain at {self.config.rpc_url}: {exc}") from exc
        self.state.bind(chain_id, self.market.address, self.address)
        self._ensure_stake()
        self._wait_for_pending_transactions()
        self._reconcile(self.state.active())
        self.feed.last_block = int(self.state.meta("feed_block") or 0)
        self.feed.start()
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.metrics_port)
        if isinstance(self.executor, RayExecutor):
            self.executor.warm_up()  # connects to Ray and starts a worker before the first job
        active = self.state.active()
        log.info(
            "provider started",
            extra={
                "provider": self.address, "market": self.market.address, "chain_id": chain_id,
                "resumed_jobs": [record.job_id for record in active], "byzantine": self.behaviour.mode,
                "metrics_port": self.metrics_port,
            },
        )  # fmt: skip

    def _ensure_stake(self) -> None:
        info = self.market.provider(self.address)
        if not info.registered:
            self._send(self.market.call("registerProvider", self.config.metadata_uri))
            log.info("registered", extra={"metadata_uri": self.config.metadata_uri})
        missing = self.config.stake - self.market.provider(self.address).free_stake
        if missing > 0:
            native = self._stake_token == ETH
            self._send(self.market.call("stake", missing, value=missing if native else 0))
            log.info("staked", extra={"amount": str(missing)})

    def _wait_for_pending_transactions(self, timeout: float = 120.0) -> None:
        """Waits until everything this account sent before (a crash, say) is mined or dropped, so
        the chain's answers to the reconciliation are final."""
        deadline = time.monotonic() + timeout
        while True:
            pending = self.w3.eth.get_transaction_count(self.address, "pending")
            mined = self.w3.eth.get_transaction_count(self.address, "latest")
            if pending <= mined:
                return
            if time.monotonic() > deadline:
                raise DaemonError(
                    f"{pending - mined} transactions of {self.address} still pending after {timeout:.0f}s"
                )
            time.sleep(0.2)

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
        while time.monotonic() < deadline and self._unsent():
            if not self.step():
                self._idle(self.config.poll_interval)
        left = self.state.active()
        log.info(
            "provider stopped",
            extra={
                "unsent": [r.job_id for r in left if r.stage in (Stage.CLAIMED, Stage.COMPUTED)],
                "waiting": [r.job_id for r in left if r.stage not in (Stage.CLAIMED, Stage.COMPUTED)],
            },
        )

    def _unsent(self) -> bool:
        return any(
            record.stage in (Stage.CLAIMED, Stage.COMPUTED, *SENDING) for record in self.state.active()
        )

    def _idle(self, seconds: float) -> None:
        """Waits for work: results from the executor, or the next round."""
        if self._executor is not None and self._executor.in_flight:
            self._collect(timeout=seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        self.feed.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._executor is not None:
            self._executor.close()
        self.api.close()
        self.rpc.close()
        self.state.close()

    def step(self) -> bool:
        """One round of everything; whether anything happened."""
        progressed = False
        try:
            # The next block's time: a devnet mines no block while idle, so its latest block can lag
            # the clock (which the next block will carry), or lead it after time travel.
            now = max(self.reader.timestamp(), int(time.time()) - 1)
            if not self.draining.is_set():
                progressed |= self._intake()
                progressed |= self._claim_round(now)
            progressed |= self._dispatch()
            progressed |= self._collect(timeout=0.0)
            progressed |= self._settle_round(now)
            self._upload_results()
            self._withdraw_earnings()
        except TRANSIENT as exc:
            log.warning("round failed, retrying: %s: %s", exc.__class__.__name__, exc)
            time.sleep(min(1.0, self.config.poll_interval * 5))
        self._record_gauges()
        return progressed

    # ── hearing of jobs ──

    def _intake(self) -> bool:
        for job_id in self.feed.drain_full() & self.candidates.keys():
            self._drop(self.candidates[job_id])  # every slot was taken: nothing to claim
        fresh = self.feed.drain()
        if not self.feed.api_up:
            fresh |= self._poll_chain()
        fresh -= self.candidates.keys() | self.refused
        fresh -= self.state.known(fresh)
        if not fresh:
            return False
        posted = self.reader.posted(fresh)
        now = time.monotonic()
        for job_id in fresh:
            job = posted.get(job_id)
            if job is None:
                continue  # not (or no longer) on this chain: the suggestion was wrong or reorged
            refusal = refuse_before_fetching(job, self.config) or (
                None if self.behaviour.takes(job) else Refusal("mode", f"{self.behaviour.mode} skips it")
            )
            if refusal is not None:
                self._refuse(job_id, refusal)
                continue
            self.candidates[job_id] = Candidate(job_id, now, posted=job)
        self.state.set_meta("feed_block", str(self.feed.last_block))
        return True

    def _poll_chain(self) -> set[int]:
        self.feed.poll_chain()
        return self.feed.drain()

    def _refuse(self, job_id: int, refusal: Refusal) -> None:
        self.refused.add(job_id)
        self.candidates.pop(job_id, None)
        self.metrics.refusals.labels(refusal.code).inc()
        log.info("refused job", extra={"job_id": job_id, "code": refusal.code, "reason": refusal.reason})

    def _prepare(self, jobs: list[tuple[int, str]]) -> dict[int, tuple[JobSpec, Plan] | Refusal]:
        """Fetches (a batch request or two for all of them) and verifies the specs and blobs of
        `jobs` (id, spec digest), and plans each; runs in a fetch thread. A job whose spec or a blob
        the marketplace does not hold is left out, to be tried again later."""
        specs = self.blobs.get_many([spec_hash for _, spec_hash in jobs], self.api.download_many)
        parsed: dict[int, JobSpec | Refusal] = {}
        for job_id, spec_hash in jobs:
            if spec_hash not in specs:
                continue
            try:
                parsed[job_id] = parse_spec(specs[spec_hash])
            except InvalidSpec as exc:
                parsed[job_id] = Refusal("spec", str(exc))
        needed = [d for spec in parsed.values() if isinstance(spec, JobSpec) for d in spec.blobs()]
        blobs = self.blobs.get_many(needed, self.api.download_many)
        prepared: dict[int, tuple[JobSpec, Plan] | Refusal] = {}
        for job_id, spec in parsed.items():
            if isinstance(spec, Refusal):
                prepared[job_id] = spec
            elif all(digest in blobs for digest in spec.blobs()):
                try:
                    prepared[job_id] = (spec, plan(spec, {d: blobs[d] for d in spec.blobs()}))
                except WorkloadError as exc:
                    prepared[job_id] = Refusal(exc.code, exc.message)
        return prepared

    def _start_preparing(self, jobs: list[tuple[int, str]]) -> None:
        """Starts preparing the jobs that are not being prepared already, as one batch."""
        fresh = [(job_id, spec_hash) for job_id, spec_hash in jobs if job_id not in self.preparing]
        if not fresh:
            return
        future = self._pool.submit(self._prepare, fresh)
        for job_id, _ in fresh:
            self.preparing[job_id] = future

    def _prepared(self, job_id: int) -> tuple[JobSpec, Plan] | Refusal | None:
        """The finished preparation of a job, None while it runs; a failed fetch is retried later."""
        future = self.preparing.get(job_id)
        if future is None or not future.done():
            return None
        del self.preparing[job_id]
        try:
            return future.result().get(job_id)
        except (MarketError, OSError) as exc:
            log.warning("cannot fetch job %s yet: %s", job_id, exc)
            return None

    # ── claiming ──

    def _claim_round(self, chain_now: int) -> bool:
        """Claims, in one batch, the open jobs that are due (meant for this provider, or left by the
        others for `claim_delay`), planned, accepted by the policy and within capacity."""
        if not self.candidates:
            return False
        clock = time.monotonic()
        providers = self._known_providers()
        due = [
            candidate
            for candidate in self.candidates.values()
            if candidate.posted is not None
            and claim_now(
                candidate.posted, self.address, providers, clock - candidate.seen_at, self.config.claim_delay
            )
        ]
        if not due:
            return False
        # Jobs meant for others are due only after the delay, when they are likely taken: those are
        # read on-chain before anything is fetched for them. Jobs meant for this provider are not.
        leftovers = [
            c
            for c in due
            if c.posted is not None
            and not self._meant_for_me(c.posted, providers)
            and clock - c.checked_at > LEFTOVER_CHECK_SECONDS
        ]
        views = self.reader.jobs(c.job_id for c in leftovers)
        for candidate in leftovers:
            candidate.checked_at = clock
            view = views.get(candidate.job_id)
            if view is None or view.status is not JobStatus.OPEN or view.claims >= view.replicas:
                self._drop(candidate)  # taken, cancelled or expired: nothing to do
        due = [c for c in due if c.job_id in self.candidates]
        self._start_preparing(
            [
                (c.job_id, c.posted.spec_hash)
                for c in due
                if c.plan is None and c.posted is not None and c.retry_at <= clock
            ]
        )
        fetching = {self.preparing[c.job_id] for c in due if c.job_id in self.preparing}
        wait_for(fetching, timeout=PREPARE_WAIT_SECONDS)  # most specs are small: claim in this round
        ready: list[Candidate] = []
        for candidate in sorted(due, key=lambda c: c.job_id):
            assert candidate.posted is not None
            if chain_now + 1 > candidate.posted.claim_deadline:
                self._drop(candidate)
            elif self._planned(candidate, clock):
                ready.append(candidate)
        if not ready:
            return False
        capacity = self._capacity()
        chosen = [c for c in ready if c.posted is not None and capacity.take(c.posted)][
            : self.config.max_batch
        ]
        if not chosen:
            return False
        self._claim(chosen)
        return True

    def _meant_for_me(self, job: PostedJob, providers: list[str]) -> bool:
        return rendezvous_rank(job.job_id, self.address, providers) < job.replicas

    def _drop(self, candidate: Candidate) -> None:
        self.candidates.pop(candidate.job_id, None)
        self.preparing.pop(candidate.job_id, None)

    def _planned(self, candidate: Candidate, clock: float) -> bool:
        """Whether the candidate's spec and blobs are fetched and planned (starting that if not)."""
        if candidate.plan is not None:
            return True
        if candidate.retry_at > clock:
            return False
        assert candidate.posted is not None
        self._start_preparing([(candidate.job_id, candidate.posted.spec_hash)])
        prepared = self._prepared(candidate.job_id)
        if prepared is None:
            if candidate.job_id not in self.preparing:  # the fetch failed: try again in a while
                candidate.retry_at = clock + FETCH_RETRY_SECONDS
            return False
        if isinstance(prepared, Refusal):
            self._refuse(candidate.job_id, prepared)
            return False
        candidate.spec, candidate.plan = prepared
        refusal = refuse_plan(candidate.posted, candidate.spec, candidate.plan, self.config)
        if refusal is not None:
            self._refuse(candidate.job_id, refusal)
            return False
        return True

    def _known_providers(self) -> list[str]:
        fetched_at, providers = self._providers
        if time.monotonic() - fetched_at > PROVIDERS_REFRESH_SECONDS:
            try:
                providers = [entry["address"] for entry in self.api.providers()]
            except (ClientError, KeyError, ValueError):
                providers = providers or [self.address]
            self._providers = (time.monotonic(), providers)
        return providers

    def _capacity(self) -> Capacity:
        held = [record for record in self.state.active() if record.stage in HOLDING]
        collateral = self.market.provider(self.address).free_stake
        if self.config.collateral_budget is not None:
            locked = sum(record.collateral for record in held)
            collateral = max(0, min(collateral, self.config.collateral_budget - locked))
        return Capacity(jobs=self.config.max_concurrent_jobs - len(held), collateral=collateral)

    def _claim(self, chosen: Sequence[Candidate]) -> None:
        records = []
        for candidate in chosen:
            posted = candidate.posted
            assert posted is not None and candidate.plan is not None
            self.plans[candidate.job_id] = candidate.plan
            records.append(
                WorkRecord(
                    job_id=posted.job_id, stage=Stage.CLAIMING, replicas=posted.replicas,
                    spec_hash=posted.spec_hash, token=posted.token, reward=posted.reward_per_replica,
                    collateral=posted.collateral_per_replica,
                )
            )  # fmt: skip
            del self.candidates[candidate.job_id]
        self.state.add(records)  # before the claim is sent: a crash after it is reconciled, not forgotten
        ids = [record.job_id for record in records]
        try:
            result = self._send(self.market.call("claimJobs", ids))
        except (ContractRevert, ChainError) as exc:
            log.warning("claim of %s failed: %s", ids, exc)
            self._reconcile(records)
            return
        won = {int(e["jobId"]) for e in result.named("JobClaimed") if e["provider"] == self.address}
        self.state.save(r.with_(stage=Stage.CLAIMED if r.job_id in won else Stage.LOST) for r in records)
        lost = [job_id for job_id in ids if job_id not in won]
        for job_id in lost:
            self.plans.pop(job_id, None)
            self.metrics.claims_lost.inc()
            self.metrics.jobs.labels("lost").inc()
        log.info("claimed", extra={"jobs": sorted(won), "lost": lost})

    # ── computing ──

    def _dispatch(self) -> bool:
        """Starts computing claimed jobs (fetching their plans again after a restart)."""
        if self.copier is not None:  # the copier computes nothing: its "result" is someone else's
            return False
        waiting = [r for r in self.state.active() if r.stage is Stage.CLAIMED]
        start: list[tuple[int, Plan]] = []
        for record in waiting:
            if self.executor.running(record.job_id):
                continue
            job_plan = self.plans.get(record.job_id)
            if job_plan is None:
                self._start_preparing([(record.job_id, record.spec_hash)])
                prepared = self._prepared(record.job_id)
                if prepared is None:
                    continue
                if isinstance(prepared, Refusal):  # it planned before the claim: a changed blob store?
                    self._fail(record, WorkloadError(prepared.reason), code=prepared.code)
                    continue
                job_plan = prepared[1]
                self.plans[record.job_id] = job_plan
            start.append((record.job_id, job_plan))
        if start:
            self.executor.submit(start)
        return bool(start)

    def _collect(self, timeout: float) -> bool:
        if self._executor is None or not self._executor.in_flight:
            return False
        ended = self._executor.finished(timeout)
        if not ended:
            return False
        computed = []
        for job_id, outcome in ended:
            record = self.state.get(job_id)
            if record is None or record.stage is not Stage.CLAIMED:
                continue  # settled or lost meanwhile (or computed twice): nothing to do
            self.plans.pop(job_id, None)
            if isinstance(outcome, WorkloadError):
                self._fail(record, outcome)
                continue
            computed.append(self._computed(record, outcome))
        small = {
            r.computed_hash[2:]: self.outputs[r.job_id]
            for r in computed
            if r.computed_hash is not None and len(self.outputs[r.job_id]) <= SMALL_RESULT
        }
        # Salts and small results are durable (one fsync) before any commit can be sent.
        computed = self.state.save(computed, results=small)
        self._upload_results(computed)
        return True

    def _computed(self, record: WorkRecord, result: TaskResult) -> WorkRecord:
        digest = sha256(result.output)
        if len(result.output) > SMALL_RESULT:
            self._store_output(digest, result.output)
        self.outputs[record.job_id] = result.output
        claimed = self.behaviour.committed_hash(result.output)
        salt = "0x" + secrets.token_bytes(32).hex() if record.replicas > 1 else None
        self.metrics.tasks.inc()
        self.metrics.fuel.inc(result.fuel_used)
        return record.with_(
            stage=Stage.COMPUTED, result_hash="0x" + claimed.hex(), computed_hash="0x" + digest.hex(),
            salt=salt, fuel_used=result.fuel_used,
        )  # fmt: skip

    def _store_output(self, digest: bytes, output: bytes) -> None:
        """Keeps a large result in a file of its own (fsynced) until the marketplace has it."""
        directory = self.config.results_dir
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / digest.hex()
        if path.exists():
            return
        temporary = path.with_suffix(".partial")
        with temporary.open("wb") as file:
            file.write(output)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)

    def _fail(self, record: WorkRecord, error: WorkloadError, *, code: str | None = None) -> None:
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

    def _upload_results(self, records: Sequence[WorkRecord] | None = None) -> None:
        """Puts computed results into the marketplace's blob store (batch requests), so a requester
        finds a result as soon as its job settles. What the marketplace does not take now is tried
        again next round (it is kept meanwhile); the settlement never waits for it."""
        pending = [r for r in (self.state.unuploaded() if records is None else records) if not r.uploaded]
        outputs: dict[int, bytes] = {}
        for record in pending:
            assert record.computed_hash is not None
            output = self.outputs.get(record.job_id)
            if output is None:
                output = self._stored_output(record.computed_hash[2:])
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
        self.state.save(done, drop_results=[r.computed_hash[2:] for r in done if r.computed_hash])
        for record in done:
            assert record.computed_hash is not None
            (self.config.results_dir / record.computed_hash[2:]).unlink(missing_ok=True)

    def _stored_output(self, digest: str) -> bytes | None:
        stored = self.state.result(digest)
        if stored is not None:
            return stored
        path = self.config.results_dir / digest
        return path.read_bytes() if path.exists() else None

    # ── settling ──

    def _settle_round(self, chain_now: int) -> bool:
        """Sends whatever the jobs held need next: submits, commits, reveals, finalizations, cancels."""
        records = self.state.active()
        stale = [r for r in records if r.stage in SENDING]  # a send that failed, or a crash mid-send
        if stale:
            self._reconcile(stale)
            records = self.state.active()
        # A single replica needs no reading: it is computed, then submitted; only one whose submit
        # did not go through is watched on-chain like the replicated ones.
        self._watched &= {r.job_id for r in records}
        direct = [r for r in records if r.replicas == 1 and r.job_id not in self._watched]
        plan_ = SettlePlan(submit=[r for r in direct if r.stage is Stage.COMPUTED])
        records = [r for r in records if r.replicas > 1 or r.job_id in self._watched]
        if not records and not plan_.submit:
            return False
        views = self.reader.jobs(r.job_id for r in records)
        ended = [r for r in records if r.job_id not in views or views[r.job_id].status in TERMINAL_JOB]
        if ended:
            self._settle_from_chain(ended)
        for record in records:
            view = views.get(record.job_id)
            if view is not None and view.status not in TERMINAL_JOB:
                plan_.add(record, view, chain_now, self.behaviour.reveals, copies=self.copier is not None)
        for batch, action in (
            (plan_.submit, self._submit), (plan_.commit, self._commit), (plan_.reveal, self._reveal),
            (plan_.finalize, self._finalize),
        ):  # fmt: skip
            for start in range(0, len(batch), self.config.max_batch):
                action(batch[start : start + self.config.max_batch])
        for record in plan_.cancel:
            self._cancel(record)
        return bool(ended) or plan_.any()

    def _submit(self, records: list[WorkRecord]) -> None:
        records = self.state.save(r.with_(stage=Stage.COMMITTING) for r in records)
        ids = [r.job_id for r in records]
        hashes = [bytes.fromhex(r.result_hash[2:]) for r in records if r.result_hash]
        try:
            result = self._send(self.market.call("submitResults", ids, hashes))
        except (ContractRevert, ChainError) as exc:
            log.warning("submit of %s failed: %s", ids, exc)
            self._watched.update(ids)
            self._reconcile(records)
            return
        settled = {
            int(e["jobId"]): Settlement(
                int(e["jobId"]), JobStatus(e["outcome"]), bytes(e["resultHash"]), tuple(e["winners"])
            )
            for e in result.named("JobFinalized")
        }
        self._record_settlements([r for r in records if r.job_id in settled], settled)
        missed = [r for r in records if r.job_id not in settled]
        if missed:
            self._watched.update(r.job_id for r in missed)
            self._reconcile(missed)
        log.info("submitted", extra={"jobs": sorted(settled), "skipped": [r.job_id for r in missed]})

    def _commit(self, records: list[WorkRecord]) -> None:
        if self.copier is not None:
            records = self._copy_commitments(records)
            if not records:
                return
        records = self.state.save(r.with_(stage=Stage.COMMITTING) for r in records)
        ids = [r.job_id for r in records]
        digests = [self._commitment_of(r) for r in records]
        try:
            result = self._send(self.market.call("commitResults", ids, digests))
        except (ContractRevert, ChainError) as exc:
            log.warning("commit of %s failed: %s", ids, exc)
            self._reconcile(records)
            return
        done = {int(e["jobId"]) for e in result.named("ResultCommitted") if e["provider"] == self.address}
        self.state.save(r.with_(stage=Stage.COMMITTED) for r in records if r.job_id in done)
        missed = [r for r in records if r.job_id not in done]
        if missed:
            self._reconcile(missed)
        log.info("committed", extra={"jobs": sorted(done), "skipped": [r.job_id for r in missed]})

    def _commitment_of(self, record: WorkRecord) -> bytes:
        assert record.result_hash is not None
        result_hash = bytes.fromhex(record.result_hash[2:])
        if self.copier is not None:
            return result_hash  # what the copier "commits to" is the copied commitment itself
        assert record.salt is not None
        return commitment(record.job_id, self.address, result_hash, bytes.fromhex(record.salt[2:]))

    def _copy_commitments(self, records: list[WorkRecord]) -> list[WorkRecord]:
        assert self.copier is not None
        copied = []
        for record in records:
            found = self.copier.commitment(record.job_id)
            if found is not None:  # nothing to copy yet: wait for an honest provider to commit
                copied.append(record.with_(result_hash="0x" + found.hex(), salt=None))
        return self.state.save(copied)

    def _reveal(self, records: list[WorkRecord]) -> None:
        if self.copier is not None:
            self._replay_reveals(records)
            return
        records = self.state.save(r.with_(stage=Stage.REVEALING) for r in records)
        ids = [r.job_id for r in records]
        hashes = [bytes.fromhex(r.result_hash[2:]) for r in records if r.result_hash]
        salts = [bytes.fromhex(r.salt[2:]) for r in records if r.salt]
        try:
            result = self._send(self.market.call("revealResults", ids, hashes, salts))
        except (ContractRevert, ChainError) as exc:
            log.warning("reveal of %s failed: %s", ids, exc)
            self._reconcile(records)
            return
        done = {int(e["jobId"]) for e in result.named("ResultRevealed") if e["provider"] == self.address}
        self.state.save(r.with_(stage=Stage.REVEALED) for r in records if r.job_id in done)
        missed = [r for r in records if r.job_id not in done]
        if missed:
            self._reconcile(missed)
        log.info("revealed", extra={"jobs": sorted(done), "skipped": [r.job_id for r in missed]})

    def _replay_reveals(self, records: list[WorkRecord]) -> None:
        """The copy mode's reveal: another provider's result hash and salt, which cannot match."""
        assert self.copier is not None
        for record in records:
            found = self.copier.reveal(record.job_id)
            if found is None:
                continue
            result_hash, salt = found
            try:
                self._send(self.market.call("revealResult", record.job_id, result_hash, salt))
            except ContractRevert as exc:
                log.warning("copied reveal refused", extra={"job_id": record.job_id, "error": str(exc)})
                self.state.save([record.with_(stage=Stage.REVEALED, error_code="copied", error=str(exc))])
                continue
            self.state.save([record.with_(stage=Stage.REVEALED)])

    def _finalize(self, records: list[WorkRecord]) -> None:
        ids = [r.job_id for r in records]
        try:
            result = self._send(self.market.call("finalizeJobs", ids))
        except (ContractRevert, ChainError) as exc:
            log.warning("finalize of %s failed: %s", ids, exc)
            return
        finalized = {int(e["jobId"]) for e in result.named("JobFinalized")}
        if finalized:
            self._settle_from_chain([r for r in records if r.job_id in finalized])
        log.info("finalized", extra={"jobs": sorted(finalized)})

    def _cancel(self, record: WorkRecord) -> None:
        """A job whose other slots nobody claimed in time: cancelling frees the collateral."""
        try:
            self._send(self.market.call("cancelJob", record.job_id))
        except ContractRevert as exc:
            log.warning("cancel of %s failed: %s", record.job_id, exc)
            return
        self.executor.forget(record.job_id)
        self.state.save([record.with_(stage=Stage.CANCELLED, outcome="cancelled")])
        self.metrics.jobs.labels("cancelled").inc()
        log.info("cancelled an unfilled job", extra={"job_id": record.job_id})

    # ── what the chain says ──

    def _reconcile(self, records: Iterable[WorkRecord]) -> None:
        """Sets each record to the stage the chain shows for it (after a failed send or a crash)."""
        records = list(records)
        if not records:
            return
        ids = [r.job_id for r in records]
        views = self.reader.jobs(ids)
        seats = self.reader.assignments(ids, self.address)
        ended, fixed = [], []
        for record in records:
            view, seat = views.get(record.job_id), seats.get(record.job_id)
            status = seat.status if seat is not None else AssignmentStatus.NONE
            if view is None or status is AssignmentStatus.NONE:  # no slot: the claim never took
                fixed.append(record.with_(stage=Stage.LOST, outcome="lost"))
                self.plans.pop(record.job_id, None)
                self.metrics.jobs.labels("lost").inc()
                continue
            if view.status in TERMINAL_JOB:
                ended.append(record)
                continue
            if status is AssignmentStatus.CLAIMED:
                stage = Stage.COMPUTED if record.result_hash is not None else Stage.CLAIMED
            elif status is AssignmentStatus.COMMITTED:
                stage = Stage.COMMITTED
            else:
                stage = Stage.REVEALED
            fixed.append(record.with_(stage=stage))
        self.state.save(fixed)
        if ended:
            self._settle_from_chain(ended)

    def _settle_from_chain(self, records: list[WorkRecord]) -> None:
        settlements = self.reader.settlements(r.job_id for r in records)
        self._record_settlements([r for r in records if r.job_id in settlements], settlements)

    def _record_settlements(self, records: list[WorkRecord], settlements: dict[int, Settlement]) -> None:
        saved = []
        for record in records:
            settled = settlements[record.job_id]
            self.executor.forget(record.job_id)
            self.plans.pop(record.job_id, None)
            if settled.status is JobStatus.CANCELLED:
                outcome, stage = "cancelled", Stage.CANCELLED
            elif self.address in settled.winners:
                outcome, stage = "won", Stage.SETTLED
            elif (
                settled.status is JobStatus.FAILED
                and record.stage is Stage.REVEALED
                and record.error_code is None
            ):
                outcome, stage = "returned", Stage.SETTLED
            else:
                outcome, stage = "slashed", Stage.SETTLED
                self.metrics.slashed.inc(record.collateral)
            saved.append(record.with_(stage=stage, outcome=outcome))
            self.metrics.jobs.labels(outcome).inc()
        self.state.save(saved)

    # ── earnings ──

    def _withdraw_earnings(self) -> None:
        if time.monotonic() < self._next_withdraw_check:
            return
        self._next_withdraw_check = time.monotonic() + WITHDRAW_CHECK_SECONDS
        tokens = {ETH, self._stake_token, *(r.token for r in self.state.all()[-500:])}
        for token, amount in self.reader.credits(self.address, tokens).items():
            self.metrics.credits.labels(token).set(amount)
            if amount > self.config.withdraw_threshold:
                self._send(self.market.call("withdraw", token))
                self.metrics.withdrawn.labels(token).inc(amount)
                self.metrics.credits.labels(token).set(0)
                log.info("withdrew earnings", extra={"token": token, "amount": str(amount)})

    # ── plumbing ──

    def _send(self, call: Call) -> TxResult:
        result = self.actor.send(call)
        self.metrics.transactions.labels(call.label).inc()
        self.metrics.gas.labels(call.label).inc(result.gas_used)
        return result

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


@dataclass
class SettlePlan:
    """What a settle round sends, decided from each held job's on-chain view."""

    submit: list[WorkRecord] = field(default_factory=list)
    commit: list[WorkRecord] = field(default_factory=list)
    reveal: list[WorkRecord] = field(default_factory=list)
    finalize: list[WorkRecord] = field(default_factory=list)
    cancel: list[WorkRecord] = field(default_factory=list)

    def any(self) -> bool:
        return any((self.submit, self.commit, self.reveal, self.finalize, self.cancel))

    def add(self, record: WorkRecord, view: JobView, chain_now: int, reveals: bool, *, copies: bool) -> None:
        """`chain_now + 1` is the earliest time the next block can have: a deadline is met only if
        the transaction would still be mined in time."""
        next_block = chain_now + 1
        stage, status = record.stage, view.status
        if status is JobStatus.OPEN:
            if next_block > view.deadline:  # the other slots stayed empty: free the collateral
                self.cancel.append(record)
        elif status is JobStatus.RUNNING:
            ready = stage is Stage.COMPUTED or (copies and stage is Stage.CLAIMED and view.replicas > 1)
            if ready:
                (self.submit if view.replicas == 1 else self.commit).append(record)
        elif status is JobStatus.REVEALING:
            if stage is Stage.COMMITTED and reveals and next_block <= view.deadline:
                self.reveal.append(record)
            elif view.reveals >= view.commits or next_block > view.deadline:
                self.finalize.append(record)
