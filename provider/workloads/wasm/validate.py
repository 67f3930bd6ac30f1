"""Checking a module before it runs: it compiles, imports only what the ABI provides, exports
what the ABI requires, and fits the job's memory limit."""

from __future__ import annotations

from dataclasses import dataclass

from wasmtime import (
    Engine,
    FuncType,
    GlobalType,
    MemoryType,
    Module,
    TableType,
    Trap,
    TrapCode,
    ValType,
    WasmtimeError,
)

from marketplace.protocol.spec import Limits

from ..errors import ForbiddenImport, InvalidModule, MemoryExceeded, WorkloadError
from . import abi
from .host import FAIL_PARAMS, FAIL_RESULTS, ModuleFailed, new_linker, new_store

_WASM_MAGIC = b"\0asm"
# Fuel for the trial instantiation: enough to initialise data segments, a few microseconds of work.
_TRIAL_FUEL = 10_000


@dataclass(frozen=True)
class ModuleShape:
    min_memory_bytes: int


def compile_module(engine: Engine, wasm: bytes) -> Module:
    """The compiled module; InvalidModule for text, garbage, or features the engine refuses."""
    # wasmtime would parse bytes not starting with the magic number as WAT text: a module is binary.
    if not wasm.startswith(_WASM_MAGIC):
        raise InvalidModule(
            "the module is not a WebAssembly binary (no \\0asm header); compile .wat text first, "
            "e.g. with wasmtime.wat2wasm"
        )
    try:
        return Module(engine, wasm)
    except WasmtimeError as exc:
        raise InvalidModule(f"the module does not compile: {reason_of(exc)}") from None


def reason_of(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _kind(extern_type: object) -> str:
    if isinstance(extern_type, FuncType):
        params = ", ".join(str(param) for param in extern_type.params)
        results = ", ".join(str(result) for result in extern_type.results)
        return f"func ({params}) -> ({results})"
    for kind, cls in (("memory", MemoryType), ("table", TableType), ("global", GlobalType)):
        if isinstance(extern_type, cls):
            return kind
    return "extern"


def _signature_is(extern_type: object, params: list[ValType], results: list[ValType]) -> bool:
    return (
        isinstance(extern_type, FuncType) and extern_type.params == params and extern_type.results == results
    )


def check_imports(module: Module) -> None:
    """ForbiddenImport, naming every import but `cm.fail(i32, i32)` (clocks, randomness, WASI...)."""
    forbidden = []
    for item in module.imports:
        name = item.name or ""
        allowed = (item.module, name) == (abi.HOST_MODULE, abi.FAIL_IMPORT) and _signature_is(
            item.type, list(FAIL_PARAMS), list(FAIL_RESULTS)
        )
        if not allowed:
            forbidden.append(f"{item.module}.{name} ({_kind(item.type)})")
    if forbidden:
        wasi = any(entry.startswith("wasi") for entry in forbidden)
        hint = " (WASI is not provided: build for wasm32-unknown-unknown, not wasm32-wasi)" if wasi else ""
        raise ForbiddenImport(
            f"the module imports {', '.join(forbidden)}; the only import provided is "
            f"{abi.HOST_MODULE}.{abi.FAIL_IMPORT} (func (param i32 i32)){hint}"
        )


def check_exports(module: Module, entry: str) -> ModuleShape:
    """The module's memory, `alloc` and entry exports, or InvalidModule listing what is wrong."""
    exports = {item.name: item.type for item in module.exports}
    i32, i64 = ValType.i32(), ValType.i64()
    problems = []
    memory = exports.get(abi.MEMORY_EXPORT)
    if not isinstance(memory, MemoryType):
        problems.append(f"export its linear memory as {abi.MEMORY_EXPORT!r}")
    if not _signature_is(exports.get(abi.ALLOC_EXPORT), [i32], [i32]):
        problems.append(f"export {abi.ALLOC_EXPORT}: (func (param i32) (result i32))")
    if not _signature_is(exports.get(entry), [i32, i32], [i64]):
        problems.append(f"export its entry {entry!r}: (func (param i32 i32) (result i64))")
    if problems or not isinstance(memory, MemoryType):
        raise InvalidModule(f"the module must {'; '.join(problems)}")
    return ModuleShape(min_memory_bytes=memory.limits.min * memory.page_size)


def check_instantiates(engine: Engine, module: Module, limits: Limits) -> None:
    """Instantiates the module on a little fuel: memories, tables and data segments are set up
    and checked against the limits, and at most a start function's first steps run (with no
    input and nothing to touch but its own memory, so this has no effects)."""
    store = new_store(engine, limits, fuel=min(limits.fuel, _TRIAL_FUEL))
    try:
        new_linker(engine).instantiate(store, module)
    except Trap as trap:
        if trap.trap_code is not TrapCode.OUT_OF_FUEL:  # a long start function is fine
            raise InvalidModule(f"the module traps while being instantiated: {reason_of(trap)}") from None
    except ModuleFailed as failure:
        raise InvalidModule(f"the module fails while being instantiated: {failure.message}") from None
    except WasmtimeError as exc:
        raise instantiation_error(exc, limits) from None


def instantiation_error(error: WasmtimeError, limits: Limits) -> WorkloadError:
    """What a failed instantiation means: too big for the limits, or a broken module."""
    reason = reason_of(error)
    if "exceeds" in reason and "limit" in reason:
        return MemoryExceeded(
            f"the module needs more than the job's limits allow: {reason} "
            f"(memory_mb={limits.memory_mb}, at most {abi.MAX_TABLE_ELEMENTS} table elements)"
        )
    return InvalidModule(f"the module cannot be instantiated: {reason}")
