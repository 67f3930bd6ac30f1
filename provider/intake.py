"""Intake: the open jobs a provider hears of, fetched, planned and judged by its policy, until it
claims them or lets them go.

Job ids come from the feed (the marketplace's event stream, or the chain's logs while the
marketplace is away), each checked against its own JobPosted log. The contract's stake-weighted
draw says from when this provider may take a seat of each (computed here exactly as the contract
checks it); a job is due from then on. Specs and blobs are fetched in a small thread pool, a batch
request at a time, verified against their digests and planned; the claim round then picks the
jobs that are due, planned, accepted and within capacity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field

from marketplace.chain.reads import MarketReader
from marketplace.client import MarketplaceApi
from marketplace.protocol.errors import MarketError
from marketplace.protocol.hashing import Hash32
from marketplace.protocol.sortition import ahead_of, seed_block
from marketplace.protocol.spec import InvalidSpec, JobSpec, parse_spec
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import PostedJob

from .byzantine import Behaviour
from .config import ProviderConfig
from .feed import JobFeed
from .metrics import ProviderMetrics
from .policy import Capacity, Refusal, refuse_before_fetching, refuse_plan, refuse_windows
from .workloads import Plan, WorkloadError, plan

log = logging.getLogger("cmarket.provider")

FETCH_RETRY_SECONDS = 2.0
PREPARE_WAIT_SECONDS = 0.25
LEFTOVER_CHECK_SECONDS = 1.0
PROVIDERS_REFRESH_SECONDS = 10.0
BLOB_CACHE_BYTES = 256 * 1024 * 1024

Prepared = tuple[JobSpec, Plan] | Refusal


@dataclass
class Candidate:
    """An open job the provider heard of and is considering."""

    job_id: int
    seen_at: float
    posted: PostedJob
    posted_at: int = 0  # the posting block's time
    eligible_from: int | None = None  # block time from which the draw lets this provider claim
    ahead: int = 0  # known providers the draw makes eligible before this one (or with it)
    due_since: float | None = None  # when the draw first let it claim (monotonic clock)
    drawn: bool = False  # the draw is known (its seed was fixed, or the posting block is over)
    seed_block: int | None = None  # the block whose hash seeded the draw, while no claim fixed it
    spec: JobSpec | None = None
    plan: Plan | None = None
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


class Intake:
    def __init__(
        self,
        config: ProviderConfig,
        address: str,
        feed: JobFeed,
        reader: MarketReader,
        api: MarketplaceApi,
        behaviour: Behaviour,
        metrics: ProviderMetrics,
    ) -> None:
        self.config = config
        self.address = address
        self.feed = feed
        self.reader = reader
        self.api = api
        self.behaviour = behaviour
        self.metrics = metrics
        self.blobs = BlobCache(BLOB_CACHE_BYTES)
        self.candidates: dict[int, Candidate] = {}
        self.refused: set[int] = set()
        self._preparing: dict[int, Future[dict[int, Prepared]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fetch")
        self._stakes: tuple[float, dict[str, int]] = (-PROVIDERS_REFRESH_SECONDS, {})

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ── hearing of jobs ──

    def hear(self, known: Callable[[set[int]], set[int]]) -> bool:
        """Takes in the jobs the feed suggested (minus `known` ones); whether there were any."""
        for job_id in self.feed.drain_full() & self.candidates.keys():
            self.drop(job_id)  # every slot was taken: nothing to claim
        fresh = self.feed.drain()
        if not self.feed.api_up:
            self.feed.poll_chain()
            fresh |= self.feed.drain()
        fresh -= self.candidates.keys() | self.refused
        fresh -= known(fresh)
        if not fresh:
            return False
        posted = self.reader.posted(fresh)
        now = time.monotonic()
        accepted = []
        for job_id in fresh:
            job = posted.get(job_id)
            if job is None:
                continue  # not (or no longer) on this chain: the suggestion was wrong or reorged
            refusal = refuse_before_fetching(job, self.config) or (
                None if self.behaviour.takes(job) else Refusal("mode", f"{self.behaviour.mode} skips it")
            )
            if refusal is not None:
                self.refuse(job_id, refusal)
                continue
            self.candidates[job_id] = Candidate(job_id, now, posted=job)
            accepted.append(job_id)
        self._draw(accepted, windows=True)
        # Fetched and planned at once, whenever the draw lets this provider claim: a job it cannot
        # run is refused now, and one it can is ready when its turn comes.
        self.start_preparing(
            [(c.job_id, c.posted.spec_hash) for c in self.candidates.values() if c.plan is None]
        )
        return True

    def _draw(self, job_ids: list[int], *, windows: bool = False) -> None:
        """Reads the draw of these candidates: from when this provider may claim each (and, the
        first time, checks their windows against its limits)."""
        candidates = [self.candidates[job_id] for job_id in job_ids if job_id in self.candidates]
        if not candidates:
            return
        head = self.reader.head_number()
        draws = self.reader.draws([c.posted for c in candidates], self.address, head)
        stakes = self._known_stakes()
        views = self.reader.jobs(c.job_id for c in candidates) if windows else {}
        for candidate in candidates:
            found = draws.get(candidate.job_id)
            if found is None:
                self.drop(candidate.job_id)  # gone from the chain
                continue
            draw, stake_then = found
            view = views.get(candidate.job_id)
            refusal = refuse_windows(view, draw.claim_window, self.config) if view is not None else None
            if refusal is None and stake_then == 0:
                refusal = Refusal("stake", "this provider had no stake bonded when it was posted")
            if refusal is not None:
                self.refuse(candidate.job_id, refusal)
                continue
            candidate.drawn = draw.seed != 0
            candidate.seed_block = None if draw.fixed else seed_block(candidate.posted.block_number, head + 1)
            candidate.posted_at = draw.posted_at
            candidate.eligible_from = draw.eligible_from(self.address, stake_then)
            if draw.seed != 0:
                line = {**stakes, self.address: stake_then}
                candidate.ahead = ahead_of(draw.seed, candidate.job_id, self.address, line)

    def _known_stakes(self) -> dict[str, int]:
        """The stake of each provider the marketplace knows (refreshed every few seconds; empty
        while it is away, so nobody is known to be ahead): whom the draw puts ahead of this one
        in a job's line. Only a courtesy: the contract decides who may claim."""
        fetched_at, stakes = self._stakes
        if time.monotonic() - fetched_at >= PROVIDERS_REFRESH_SECONDS:
            try:
                entries = self.api.providers(limit=200)
                stakes = {e["address"]: int(e["staked"]) + int(e["locked"]) for e in entries}
            except (MarketError, OSError, KeyError, ValueError) as exc:
                log.info("no provider list from the marketplace: %s", exc)
                stakes = {}
            self._stakes = (time.monotonic(), stakes)
        return stakes

    def reconsider(self, job_ids: set[int]) -> None:
        """Takes back jobs whose claim came too early for the draw: they are candidates again."""
        if not job_ids:
            return
        posted = self.reader.posted(job_ids)
        now = time.monotonic()
        for job_id, job in posted.items():
            self.refused.discard(job_id)
            self.candidates[job_id] = Candidate(job_id, now, posted=job)
        self._draw(list(posted))

    def refuse(self, job_id: int, refusal: Refusal) -> None:
        self.refused.add(job_id)
        self.drop(job_id)
        self.metrics.refusals.labels(refusal.code).inc()
        log.info("refused job", extra={"job_id": job_id, "code": refusal.code, "reason": refusal.reason})

    def drop(self, job_id: int) -> None:
        self.candidates.pop(job_id, None)
        self._preparing.pop(job_id, None)

    # ── fetching and planning ──

    def _prepare(self, jobs: list[tuple[int, Hash32]]) -> dict[int, Prepared]:
        """Fetches (a batch request or two for all of them) and verifies the specs and blobs of
        `jobs` (id, spec hash), and plans each; runs in a fetch thread. A job whose spec or a blob
        the marketplace does not hold is left out, to be tried again later."""
        specs = self.blobs.get_many([spec_hash.digest for _, spec_hash in jobs], self.api.download_many)
        parsed: dict[int, JobSpec | Refusal] = {}
        for job_id, spec_hash in jobs:
            if spec_hash.digest not in specs:
                continue
            try:
                parsed[job_id] = parse_spec(specs[spec_hash.digest])
            except InvalidSpec as exc:
                parsed[job_id] = Refusal("spec", str(exc))
        needed = [d for spec in parsed.values() if isinstance(spec, JobSpec) for d in spec.blobs()]
        blobs = self.blobs.get_many(needed, self.api.download_many)
        prepared: dict[int, Prepared] = {}
        for job_id, spec in parsed.items():
            if isinstance(spec, Refusal):
                prepared[job_id] = spec
            elif all(digest in blobs for digest in spec.blobs()):
                try:
                    prepared[job_id] = (spec, plan(spec, {d: blobs[d] for d in spec.blobs()}))
                except WorkloadError as exc:
                    prepared[job_id] = Refusal(exc.code, exc.message)
        return prepared

    def start_preparing(self, jobs: list[tuple[int, Hash32]]) -> None:
        """Starts preparing the jobs that are not being prepared already, as one batch."""
        fresh = [(job_id, spec_hash) for job_id, spec_hash in jobs if job_id not in self._preparing]
        if not fresh:
            return
        future = self._pool.submit(self._prepare, fresh)
        for job_id, _ in fresh:
            self._preparing[job_id] = future

    def preparing(self, job_id: int) -> bool:
        return job_id in self._preparing

    def _finished(self, job_id: int) -> bool:
        future = self._preparing.get(job_id)
        return future is not None and future.done()

    def prepared(self, job_id: int) -> Prepared | None:
        """The finished preparation of a job, None while it runs; a failed fetch is retried later."""
        future = self._preparing.get(job_id)
        if future is None or not future.done():
            return None
        del self._preparing[job_id]
        try:
            return future.result().get(job_id)
        except (MarketError, OSError) as exc:
            log.warning("cannot fetch job %s yet: %s", job_id, exc)
            return None

    # ── choosing what to claim ──

    def due(self, next_block: int, head: int, capacity: Capacity) -> list[Candidate]:
        """The candidates to claim now, in one batch: eligible by the draw in the next block,
        planned, accepted by the policy and within `capacity`."""
        if not self.candidates:
            return []
        # Draw again where the seed was not known yet, or where no claim fixed it and the posting
        # block is now too old for the EVM, so the next claim draws with a newer block's hash.
        self._draw(
            [
                c.job_id
                for c in self.candidates.values()
                if not c.drawn
                or (c.seed_block is not None and c.seed_block != seed_block(c.posted.block_number, head + 1))
            ]
        )
        clock = time.monotonic()
        for candidate in list(self.candidates.values()):  # take in the plans (or refusals) fetched
            if candidate.plan is None and self._finished(candidate.job_id):
                self._planned(candidate, clock)
        due = []
        for candidate in self.candidates.values():
            if candidate.eligible_from is None or candidate.eligible_from > next_block:
                continue
            if candidate.due_since is None:
                candidate.due_since = clock
            # Enough providers ahead in the draw may claim it too: leave it to them for a while.
            behind = candidate.ahead >= candidate.posted.replicas
            if not behind or clock - candidate.due_since >= self.config.runner_up_delay:
                due.append(candidate)
        if not due:
            return []
        # A job this provider became eligible for only later than at once, or left to providers
        # ahead of it, may well be taken by now: those are read on-chain before they are claimed.
        late = [
            c
            for c in due
            if c.eligible_from is not None
            and (c.eligible_from > c.posted_at or c.ahead >= c.posted.replicas)
            and clock - c.checked_at > LEFTOVER_CHECK_SECONDS
        ]
        views = self.reader.jobs(c.job_id for c in late)
        for candidate in late:
            candidate.checked_at = clock
            view = views.get(candidate.job_id)
            if view is None or view.status is not JobStatus.OPEN or view.claims >= view.replicas:
                self.drop(candidate.job_id)  # taken, cancelled or expired: nothing to do
        due = [c for c in due if c.job_id in self.candidates]
        self.start_preparing(
            [(c.job_id, c.posted.spec_hash) for c in due if c.plan is None and c.retry_at <= clock]
        )
        fetching = {self._preparing[c.job_id] for c in due if c.job_id in self._preparing}
        wait_for(fetching, timeout=PREPARE_WAIT_SECONDS)  # most specs are small: claim in this round
        ready: list[Candidate] = []
        for candidate in sorted(due, key=lambda c: c.job_id):
            if next_block > candidate.posted.claim_deadline:
                self.drop(candidate.job_id)
            elif self._planned(candidate, clock):
                ready.append(candidate)
        chosen = [c for c in ready if capacity.take(c.posted)][: self.config.max_batch]
        for candidate in chosen:
            del self.candidates[candidate.job_id]
        return chosen

    def _planned(self, candidate: Candidate, clock: float) -> bool:
        """Whether the candidate's spec and blobs are fetched and planned (starting that if not)."""
        if candidate.plan is not None:
            return True
        if candidate.retry_at > clock:
            return False
        self.start_preparing([(candidate.job_id, candidate.posted.spec_hash)])
        prepared = self.prepared(candidate.job_id)
        if prepared is None:
            if candidate.job_id not in self._preparing:  # the fetch failed: try again in a while
                candidate.retry_at = clock + FETCH_RETRY_SECONDS
            return False
        if isinstance(prepared, Refusal):
            self.refuse(candidate.job_id, prepared)
            return False
        candidate.spec, candidate.plan = prepared
        refusal = refuse_plan(candidate.posted, candidate.spec, candidate.plan, self.config)
        if refusal is not None:
            self.refuse(candidate.job_id, refusal)
            return False
        return True
