"""The deterministic workloads a provider runs: a catalog of built-ins and WebAssembly modules.

An executor calls `plan(spec, blobs)` before claiming a job (it raises a WorkloadError for any
job that must be refused), runs each of the plan's Tasks with `run_task` (one Ray task each;
Tasks and TaskResults pickle), and combines the results with `Plan.reduce`. The result blob is
the reduced `TaskResult.output`; the job's `resultHash` is its SHA-256. `run_job` does all of
that in one process. WASM.md documents the module ABI.
"""

from __future__ import annotations

from .base import Plan, Task, TaskResult, WorkloadInfo
from .errors import (
    ForbiddenImport,
    FuelExhausted,
    InvalidArguments,
    InvalidInput,
    InvalidModule,
    MemoryExceeded,
    UnknownWorkload,
    WorkloadError,
    WorkloadTimeout,
    WorkloadTrap,
)
from .jobs import plan, run_job, run_task
from .modules import example_module, example_names
from .registry import catalog

__all__ = [
    "ForbiddenImport",
    "FuelExhausted",
    "InvalidArguments",
    "InvalidInput",
    "InvalidModule",
    "MemoryExceeded",
    "Plan",
    "Task",
    "TaskResult",
    "UnknownWorkload",
    "WorkloadError",
    "WorkloadInfo",
    "WorkloadTimeout",
    "WorkloadTrap",
    "catalog",
    "example_module",
    "example_names",
    "plan",
    "run_job",
    "run_task",
]
