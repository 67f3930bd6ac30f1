"""The data a provider's executor handles: a job's Plan, its Tasks and their TaskResults.

Everything here pickles and carries the bytes it needs, so an executor can ship a Task to any
process (a Ray worker) and get a TaskResult back. `plan` (in `jobs.py`) builds a Plan from a
spec; `run_task` turns one Task into one TaskResult; `Plan.reduce` combines the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketplace.protocol.spec import BuiltinWorkload, Limits, WasmWorkload

from .deadline import Deadline

MIB = 1024 * 1024

Combine = Callable[[Sequence[bytes], Deadline], bytes]
"""Turns the task outputs (in task order) into the job's result bytes, within a deadline."""


@dataclass(frozen=True, repr=False)
class Task:
    """One unit of work, run by `run_task` in one Ray task.

    `args` are the JSON arguments this task runs with: the job's own arguments, or for a
    workload that splits its work, the share this task computes. `fuel` is what the task may
    use: its exact cost for a built-in, the job's fuel limit for a WebAssembly module.
    `memory_bytes` is the peak memory the task was estimated to need. `module` holds the
    WebAssembly module's bytes (empty for a built-in).
    """

    index: int
    workload: BuiltinWorkload | WasmWorkload
    args: Mapping[str, Any]
    inputs: tuple[bytes, ...]
    limits: Limits
    fuel: int
    memory_bytes: int
    module: bytes = b""

    @property
    def name(self) -> str:
        """The built-in's name, or "wasm:<module digest prefix>" for a module."""
        if isinstance(self.workload, WasmWorkload):
            return f"wasm:{self.workload.module[:12]}"
        return self.workload.name

    def __repr__(self) -> str:
        # Inputs can be many MiB: a log line shows their sizes, not their bytes.
        sizes = ", ".join(str(len(data)) for data in self.inputs)
        return (
            f"Task(index={self.index}, workload={self.name!r}, inputs=[{sizes}] bytes, "
            f"fuel={self.fuel}, memory_bytes={self.memory_bytes})"
        )


@dataclass(frozen=True, repr=False)
class TaskResult:
    """What a task produced and the fuel it used (deterministic: part of what replicas agree on)."""

    output: bytes
    fuel_used: int

    def __repr__(self) -> str:
        return f"TaskResult(output={len(self.output)} bytes, fuel_used={self.fuel_used})"


@dataclass(frozen=True)
class Plan:
    """A validated job, ready to run: its tasks and how to combine their results.

    `fuel_estimate` is the exact fuel a built-in job uses (tasks plus reduce), or the fuel limit
    for a WebAssembly job (fuel used is only known after running). `memory_estimate` is the
    peak, in bytes, of the largest single step (one task, or the reduce).
    """

    workload: BuiltinWorkload | WasmWorkload
    tasks: tuple[Task, ...]
    fuel_estimate: int
    memory_estimate: int
    reduce_fuel: int
    limits: Limits
    combine: Combine = field(repr=False)

    def reduce(self, results: Sequence[TaskResult]) -> TaskResult:
        """The job's result from its tasks' results, given in task order; fuel used adds up."""
        return self.reduce_within(results, Deadline(self.limits.timeout_s))

    def reduce_within(self, results: Sequence[TaskResult], deadline: Deadline) -> TaskResult:
        """`reduce` under a deadline the caller already started (`run_job` shares one)."""
        if len(results) != len(self.tasks):
            raise ValueError(f"the plan has {len(self.tasks)} tasks but {len(results)} results were given")
        output = self.combine([result.output for result in results], deadline)
        fuel_used = sum(result.fuel_used for result in results) + self.reduce_fuel
        return TaskResult(output=output, fuel_used=fuel_used)


@dataclass(frozen=True)
class WorkloadInfo:
    """A catalog entry: what a built-in computes, what it reads, what it costs."""

    name: str
    description: str
    args_schema: Mapping[str, Any]
    inputs: str
    cost_model: str
