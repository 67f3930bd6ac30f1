"""Planning a WebAssembly job: everything about the module is checked before it is claimed."""

from __future__ import annotations

from collections.abc import Sequence

from marketplace.protocol.spec import JobSpec, WasmWorkload

from ..base import Plan, Task
from ..budget import require_memory
from ..deadline import Deadline
from . import abi
from .engine import new_engine
from .validate import check_exports, check_imports, check_instantiates, compile_module


def only_output(outputs: Sequence[bytes], deadline: Deadline) -> bytes:
    """A module job is one task: its output is the job's result."""
    (output,) = outputs
    return output


def plan_module(spec: JobSpec, workload: WasmWorkload, module: bytes, inputs: Sequence[bytes]) -> Plan:
    """One task holding the module and every input; its fuel is the job's whole fuel limit."""
    args_json = abi.args_frame(spec.args)
    engine = new_engine()
    compiled = compile_module(engine, module)
    check_imports(compiled)
    shape = check_exports(compiled, workload.entry)
    # At the least, the module's declared memory, and the input it must hold.
    memory_bytes = max(shape.min_memory_bytes, abi.frame_size(args_json, inputs))
    require_memory(memory_bytes, spec.limits, "the module with its input")
    check_instantiates(engine, compiled, spec.limits)
    task = Task(
        index=0,
        workload=workload,
        args=dict(spec.args),
        inputs=tuple(inputs),
        limits=spec.limits,
        fuel=spec.limits.fuel,
        memory_bytes=memory_bytes,
        module=module,
    )
    return Plan(
        workload=workload,
        tasks=(task,),
        fuel_estimate=spec.limits.fuel,
        memory_estimate=memory_bytes,
        reduce_fuel=0,
        limits=spec.limits,
        combine=only_output,
    )
