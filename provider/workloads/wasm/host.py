"""What the host gives a module: the `cm.fail` import, and a store capped by the job's limits."""

from __future__ import annotations

from wasmtime import Caller, Engine, FuncType, Linker, Memory, Store, ValType

from marketplace.protocol.spec import Limits

from ..base import MIB
from . import abi

FAIL_PARAMS = (ValType.i32(), ValType.i32())
FAIL_RESULTS: tuple[ValType, ...] = ()


class ModuleFailed(Exception):
    """Raised inside `cm.fail` to unwind the module; the runner turns it into a WorkloadTrap."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _fail(caller: Caller, pointer: int, length: int) -> None:
    memory = caller.get(abi.MEMORY_EXPORT)
    pointer, length = pointer & abi.U32, min(length & abi.U32, abi.FAIL_MESSAGE_MAX)
    if not isinstance(memory, Memory) or pointer + length > memory.data_len(caller):
        raise ModuleFailed("(the module's failure message is outside its memory)")
    text = bytes(memory.read(caller, pointer, pointer + length)).decode("utf-8", errors="replace")
    raise ModuleFailed(text)


def new_linker(engine: Engine) -> Linker:
    linker = Linker(engine)
    # A FuncType belongs to the engine it is first used with (wasmtime aborts the process on
    # a mix-up), so each linker gets its own.
    fail_type = FuncType(list(FAIL_PARAMS), list(FAIL_RESULTS))
    linker.define_func(abi.HOST_MODULE, abi.FAIL_IMPORT, fail_type, _fail, access_caller=True)
    return linker


def new_store(engine: Engine, limits: Limits, fuel: int) -> Store:
    """A store for one instance: linear memory capped at `memory_mb`, `fuel` to spend, and an
    epoch deadline one tick away (the runner's timer makes that tick at the wall-clock limit)."""
    store = Store(engine)
    store.set_limits(
        memory_size=limits.memory_mb * MIB,
        table_elements=abi.MAX_TABLE_ELEMENTS,
        instances=1,
        tables=1,
        memories=1,
    )
    store.set_fuel(fuel)
    store.set_epoch_deadline(1)
    return store
