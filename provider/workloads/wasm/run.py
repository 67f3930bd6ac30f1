"""Running one WebAssembly task: metered by fuel, capped in memory, interrupted at the deadline."""

from __future__ import annotations

import threading

from wasmtime import Func, Memory, Store, Trap, TrapCode, WasmtimeError

from marketplace.protocol.spec import WasmWorkload

from ..base import MIB, Task, TaskResult
from ..deadline import Deadline
from ..errors import (
    FuelExhausted,
    MemoryExceeded,
    WorkloadError,
    WorkloadTimeout,
    WorkloadTrap,
)
from . import abi
from .engine import new_engine
from .host import ModuleFailed, new_linker, new_store
from .validate import check_exports, check_imports, compile_module, instantiation_error, reason_of


def run_module(task: Task, deadline: Deadline) -> TaskResult:
    """The module's output for the task's framed input, and the fuel it used."""
    if not isinstance(task.workload, WasmWorkload):
        raise TypeError("run_module runs WebAssembly tasks only")
    engine = new_engine()
    module = compile_module(engine, task.module)
    check_imports(module)
    check_exports(module, task.workload.entry)
    payload = abi.frame(abi.args_frame(task.args), task.inputs)
    # wasmtime checks fuel only at calls and loop heads, and reports what is left saturated at
    # zero; one unit of headroom makes "fuel left > 0" mean "used <= limit", whatever the limit.
    budget = min(task.fuel, task.limits.fuel)
    store = new_store(engine, task.limits, fuel=budget + 1)
    memory: Memory | None = None
    # The timer ends the epoch the store's deadline waits for: running code then traps with
    # INTERRUPT at its next loop back-edge or call, wherever it is.
    timer = threading.Timer(deadline.remaining(), engine.increment_epoch)
    timer.daemon = True
    timer.start()
    try:
        instance = new_linker(engine).instantiate(store, module)
        exports = instance.exports(store)
        exported_memory = exports[abi.MEMORY_EXPORT]
        alloc, entry = exports[abi.ALLOC_EXPORT], exports[task.workload.entry]
        # check_exports vetted the kinds; these narrow the types.
        assert isinstance(exported_memory, Memory) and isinstance(alloc, Func) and isinstance(entry, Func)
        memory = exported_memory
        output = _call(store, memory, alloc, entry, payload)
    except Trap as trap:
        raise _trap_error(trap, store, memory, task, budget) from None
    except ModuleFailed as failure:
        raise WorkloadTrap(f"the module failed: {failure.message}") from None
    except WasmtimeError as exc:
        raise instantiation_error(exc, task.limits) from None
    finally:
        timer.cancel()
    left = store.get_fuel()
    if left == 0:
        raise _out_of_fuel(budget)
    return TaskResult(output=output, fuel_used=budget + 1 - left)


def _out_of_fuel(budget: int) -> FuelExhausted:
    return FuelExhausted(f"the module needs more than the {budget} fuel of the job's limit")


def _call(store: Store, memory: Memory, alloc: Func, entry: Func, payload: bytearray) -> bytes:
    pointer = int(alloc(store, abi.to_i32(len(payload)))) & abi.U32
    if pointer + len(payload) > memory.data_len(store):
        raise WorkloadTrap(
            f"alloc({len(payload)}) returned {pointer}, which does not leave room for the input "
            f"in the module's {memory.data_len(store)} bytes of memory"
        )
    memory.write(store, payload, pointer)
    out_pointer, out_length = abi.split_result(
        int(entry(store, abi.to_i32(pointer), abi.to_i32(len(payload))))
    )
    if out_pointer + out_length > memory.data_len(store):
        raise WorkloadTrap(
            f"the module returned a result at {out_pointer} of {out_length} bytes, outside its "
            f"{memory.data_len(store)} bytes of memory"
        )
    return bytes(memory.read(store, out_pointer, out_pointer + out_length))


def _trap_error(trap: Trap, store: Store, memory: Memory | None, task: Task, budget: int) -> WorkloadError:
    code = trap.trap_code
    if code is TrapCode.OUT_OF_FUEL:
        return _out_of_fuel(budget)
    if code is TrapCode.INTERRUPT:
        return WorkloadTimeout(f"the module ran past its wall-clock limit of {task.limits.timeout_s} s")
    # memory.grow past the cap returns -1; a module that then traps (as allocators do) ran out
    # of the memory it may use. A trap with less than a page left is taken to be that.
    if memory is not None and memory.data_len(store) + abi.PAGE_SIZE > task.limits.memory_mb * MIB:
        return MemoryExceeded(
            f"the module trapped ({reason_of(trap)}) after using all {task.limits.memory_mb} MiB "
            "of memory the job allows"
        )
    return WorkloadTrap(f"the module trapped: {reason_of(trap)}")
