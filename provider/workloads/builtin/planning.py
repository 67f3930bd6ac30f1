"""Planning and running built-in jobs: exact prices up front, the same prices reported after."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from marketplace.protocol.spec import BuiltinWorkload, JobSpec

from ..base import Plan, Task, TaskResult
from ..budget import require_fuel, require_memory
from ..deadline import Deadline
from ..errors import MemoryExceeded, WorkloadError, WorkloadTrap
from .base import Builtin


def plan_builtin(workload: Builtin[Any, Any], spec: JobSpec, inputs: Sequence[bytes]) -> Plan:
    """The job's tasks, one per part; refuses it if its exact fuel or estimated memory is too much."""
    assert isinstance(spec.workload, BuiltinWorkload)
    args = workload.parse_args(spec.args)
    parts = workload.split(args, inputs)
    tasks = []
    for index, part in enumerate(parts):
        cost = workload.cost(part.args, part.inputs)
        require_memory(cost.memory_bytes, spec.limits, f"task {index} of {workload.name}")
        tasks.append(
            Task(
                index=index,
                workload=spec.workload,
                args=part.args.model_dump(mode="json"),
                inputs=part.inputs,
                limits=spec.limits,
                fuel=cost.fuel,
                memory_bytes=cost.memory_bytes,
            )
        )
    reduce_cost = workload.reduce_cost(args, parts)
    require_memory(reduce_cost.memory_bytes, spec.limits, f"combining the results of {workload.name}")
    fuel = sum(task.fuel for task in tasks) + reduce_cost.fuel
    require_fuel(fuel, spec.limits.fuel, f"this {workload.name} job")
    return Plan(
        workload=spec.workload,
        tasks=tuple(tasks),
        fuel_estimate=fuel,
        memory_estimate=max([reduce_cost.memory_bytes, *(task.memory_bytes for task in tasks)]),
        reduce_fuel=reduce_cost.fuel,
        limits=spec.limits,
        combine=partial(_combine, workload, args),
    )


def _combine(workload: Builtin[Any, Any], args: Any, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
    return _guarded(workload, lambda: workload.combine(args, outputs, deadline))


def run_builtin(workload: Builtin[Any, Any], task: Task, deadline: Deadline) -> TaskResult:
    """Runs one task, after pricing it again from its own arguments and inputs (a Task may have
    been built or altered outside `plan`): it uses exactly the fuel it reports."""
    part = workload.parse_part(task.args)
    cost = workload.cost(part, task.inputs)
    require_fuel(
        cost.fuel, min(task.fuel, task.limits.fuel), f"task {task.index} of {workload.name}", "its allowance"
    )
    require_memory(cost.memory_bytes, task.limits, f"task {task.index} of {workload.name}")
    deadline.check()
    output = _guarded(workload, lambda: workload.run(part, task.inputs, deadline))
    return TaskResult(output=output, fuel_used=cost.fuel)


def _guarded(workload: Builtin[Any, Any], step: Callable[[], bytes]) -> bytes:
    """Runs `step`, reporting a crash as a WorkloadTrap and running out of memory as MemoryExceeded."""
    try:
        result = step()
    except WorkloadError:
        raise
    except MemoryError:
        raise MemoryExceeded(f"{workload.name} ran out of memory") from None
    except Exception as exc:
        raise WorkloadTrap(f"{workload.name} crashed: {type(exc).__name__}: {exc}") from exc
    return result
