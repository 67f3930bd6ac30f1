"""Executors run planned jobs and hand back their results: on Ray (the default), or in threads.

A job's plan is split into tasks; each Ray task runs one big task, or a bundle of small tasks of
several jobs (one Ray round trip for many tiny jobs). Task functions are pure, so Ray may retry
one whose worker died without anything happening twice: only the daemon acts on-chain, once per
job, on the reduced result. A workload error is returned as a value, not raised, so Ray does not
retry what would fail the same way again.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .workloads import Plan, Task, TaskResult, WorkloadError, WorkloadTimeout, WorkloadTrap, run_task

log = logging.getLogger("cmarket.provider.executor")

Outcome = TaskResult | WorkloadError

BUNDLE_FUEL = 2_000_000  # tasks whose fuel is below this may share a Ray task with others
BUNDLE_SIZE = 64
TIMEOUT_MARGIN = 5.0  # seconds past a task's own wall-clock guard before the executor gives up on it


def run_bundle(tasks: Sequence[Task]) -> list[Outcome]:
    """Runs tasks one after another; a workload error becomes that task's outcome."""
    outcomes: list[Outcome] = []
    for task in tasks:
        try:
            outcomes.append(run_task(task))
        except WorkloadError as exc:
            outcomes.append(exc)
        except Exception as exc:  # a bug or a crash inside a workload: the job fails, the bundle goes on
            outcomes.append(WorkloadTrap(f"{task.name} crashed: {exc.__class__.__name__}: {exc}"))
    return outcomes


@dataclass
class _Job:
    plan: Plan
    results: dict[int, TaskResult] = field(default_factory=dict)
    error: WorkloadError | None = None

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.results) == len(self.plan.tasks)


class Executor(ABC):
    """Runs jobs' plans; `finished` hands back each job's reduced result or its error."""

    def __init__(self) -> None:
        self._jobs: dict[int, _Job] = {}

    @property
    def in_flight(self) -> int:
        return len(self._jobs)

    def running(self, job_id: int) -> bool:
        return job_id in self._jobs

    def submit(self, jobs: Sequence[tuple[int, Plan]]) -> None:
        """Starts the jobs (ids not already running); small tasks of several jobs are bundled."""
        fresh = [(job_id, plan) for job_id, plan in jobs if job_id not in self._jobs]
        for job_id, plan in fresh:
            self._jobs[job_id] = _Job(plan)
        small: list[tuple[int, Task]] = []
        for job_id, plan in fresh:
            for task in plan.tasks:
                if task.fuel < BUNDLE_FUEL:
                    small.append((job_id, task))
                else:
                    self._start([(job_id, task)])
        for start in range(0, len(small), BUNDLE_SIZE):
            self._start(small[start : start + BUNDLE_SIZE])

    def finished(self, timeout: float = 0.0) -> list[tuple[int, Outcome]]:
        """Jobs that ended since the last call, waiting up to `timeout` seconds for the first."""
        for (job_id, index), outcome in self._collect(timeout):
            job = self._jobs.get(job_id)
            if job is None or job.error is not None:
                continue
            if isinstance(outcome, WorkloadError):
                job.error = outcome
            else:
                job.results[index] = outcome
        ended: list[tuple[int, Outcome]] = []
        for job_id, job in list(self._jobs.items()):
            if not job.done:
                continue
            del self._jobs[job_id]
            if job.error is not None:
                ended.append((job_id, job.error))
                continue
            try:
                ended.append((job_id, job.plan.reduce([job.results[i] for i in range(len(job.plan.tasks))])))
            except WorkloadError as exc:
                ended.append((job_id, exc))
        return ended

    def forget(self, job_id: int) -> None:
        """Stops caring about a job (its tasks may still run; their results are dropped)."""
        self._jobs.pop(job_id, None)

    @abstractmethod
    def _start(self, bundle: list[tuple[int, Task]]) -> None:
        """Starts running a bundle of tasks."""

    @abstractmethod
    def _collect(self, timeout: float) -> list[tuple[tuple[int, int], Outcome]]:
        """Outcomes of tasks that ended, keyed by (job id, task index)."""

    def close(self) -> None:
        """Releases the executor's resources; results still coming are dropped."""
        self._jobs.clear()


class RayExecutor(Executor):
    """Tasks as Ray tasks: a local Ray by default, or the cluster at `address`."""

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        super().__init__()
        import ray

        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options.update(
                    num_cpus=num_cpus,
                    object_store_memory=256 * 1024 * 1024,
                    # Idle workers stay: starting one on demand costs a second or more per task.
                    _system_config={"idle_worker_killing_time_threshold_ms": 3_600_000},
                )
            ray.init(address=address, **options)
        # Workload errors are returned, so a retry only happens when a worker died mid-task.
        self._remote = ray.remote(max_retries=3, retry_exceptions=False)(run_bundle)
        self._pending: dict[Any, tuple[list[tuple[int, int]], float]] = {}

    def _start(self, bundle: list[tuple[int, Task]]) -> None:
        tasks = [task for _, task in bundle]
        memory = max(task.memory_bytes for task in tasks)
        ref = self._remote.options(memory=max(memory, 1)).remote(tasks)
        guard = sum(task.limits.timeout_s for task in tasks) + TIMEOUT_MARGIN
        self._pending[ref] = ([(job_id, task.index) for job_id, task in bundle], time.monotonic() + guard)

    def warm_up(self) -> None:
        """Runs an empty bundle, so the first job does not wait for a worker to start."""
        self._ray.get(self._remote.remote([]))

    def close(self) -> None:
        super().close()
        if self._owns_ray:
            self._ray.shutdown()  # stops the local Ray this executor started (not a cluster it joined)

    def _collect(self, timeout: float) -> list[tuple[tuple[int, int], Outcome]]:
        if not self._pending:
            if timeout:
                time.sleep(timeout)
            return []
        ray = self._ray
        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=timeout)
        outcomes: list[tuple[tuple[int, int], Outcome]] = []
        for ref in ready:
            keys, _ = self._pending.pop(ref)
            try:
                values: list[Outcome] = ray.get(ref)
            except ray.exceptions.RayError as exc:
                log.warning("a Ray task of jobs %s failed for good: %s", sorted({k[0] for k in keys}), exc)
                values = [WorkloadTrap(f"the Ray task failed: {exc.__class__.__name__}")] * len(keys)
            outcomes += list(zip(keys, values, strict=True))
        now = time.monotonic()
        for ref, (keys, guard) in list(self._pending.items()):
            if now > guard:  # the task's own wall-clock guard did not stop it: stop its worker
                ray.cancel(ref, force=True)
                del self._pending[ref]
                outcomes += [(key, WorkloadTimeout("the task overran its time limit")) for key in keys]
        return outcomes


class ThreadExecutor(Executor):
    """Tasks in a pool of threads of this process (for machines without Ray)."""

    def __init__(self, workers: int = 2) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workload")
        self._pending: dict[Future[list[Outcome]], list[tuple[int, int]]] = {}

    def _start(self, bundle: list[tuple[int, Task]]) -> None:
        future = self._pool.submit(run_bundle, [task for _, task in bundle])
        self._pending[future] = [(job_id, task.index) for job_id, task in bundle]

    def _collect(self, timeout: float) -> list[tuple[tuple[int, int], Outcome]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        if not self._pending:
            if timeout:
                time.sleep(timeout)
            return []
        done, _ = wait(list(self._pending), timeout=timeout, return_when=FIRST_COMPLETED)
        outcomes: list[tuple[tuple[int, int], Outcome]] = []
        for future in done:
            keys = self._pending.pop(future)
            outcomes += list(zip(keys, future.result(), strict=True))
        return outcomes

    def close(self) -> None:
        super().close()
        self._pool.shutdown(wait=False, cancel_futures=True)
