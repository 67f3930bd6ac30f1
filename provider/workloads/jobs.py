"""The entry points: plan a job (refusing what cannot run), run one task, or run a whole job."""

from __future__ import annotations

from collections.abc import Mapping

from marketplace.protocol.spec import JobSpec, WasmWorkload

from .base import Plan, Task, TaskResult
from .builtin.planning import plan_builtin, run_builtin
from .deadline import Deadline
from .errors import InvalidInput
from .registry import builtin
from .wasm import plan_module, run_module


def _blob(blobs: Mapping[str, bytes], digest: str, what: str) -> bytes:
    try:
        return blobs[digest]
    except KeyError:
        raise InvalidInput(f"{what} (blob {digest}) was not provided") from None


def plan(spec: JobSpec, blobs: Mapping[str, bytes]) -> Plan:
    """Validates everything that can be validated before running, and splits the job into tasks.

    `blobs` maps digest -> bytes for every blob `spec.blobs()` lists (digests already verified).
    Raises a WorkloadError subclass for a job that must be refused: unknown workload, bad args,
    missing or malformed inputs, a module that does not compile or imports what it may not, or
    a job whose fuel or memory would exceed `spec.limits`.
    """
    if isinstance(spec.workload, WasmWorkload):
        module = _blob(blobs, spec.workload.module, "the WebAssembly module")
        return plan_module(spec, spec.workload, module, _inputs(spec, blobs))
    workload = builtin(spec.workload.name)
    return plan_builtin(workload, spec, _inputs(spec, blobs))


def _inputs(spec: JobSpec, blobs: Mapping[str, bytes]) -> list[bytes]:
    return [_blob(blobs, digest, f"input {index}") for index, digest in enumerate(spec.inputs)]


def run_task(task: Task) -> TaskResult:
    """Runs one task of a plan, in any process: deterministic bit for bit, within the task's fuel,
    memory and wall-clock limits (its `limits.timeout_s` counts from now)."""
    return _run(task, Deadline(task.limits.timeout_s))


def _run(task: Task, deadline: Deadline) -> TaskResult:
    if isinstance(task.workload, WasmWorkload):
        return run_module(task, deadline)
    return run_builtin(builtin(task.workload.name), task, deadline)


def run_job(spec: JobSpec, blobs: Mapping[str, bytes]) -> TaskResult:
    """Plans the job and runs every task in this process, then reduces: the job's result, as a
    requester checks it locally. One wall-clock limit covers the whole job."""
    job = plan(spec, blobs)
    deadline = Deadline(spec.limits.timeout_s)
    results = [_run(task, deadline) for task in job.tasks]
    return job.reduce_within(results, deadline)
