"""The one wasmtime configuration every module is compiled and run with, chosen for determinism.

Every feature is set explicitly rather than left to the wasmtime version's defaults: replicas
must agree on what a module may do. Fuel metering and epoch interruption are on; NaNs are
canonicalized, so float results are bit-identical across CPUs; threads, shared memory, relaxed
SIMD, memory64, multiple memories, GC, typed function references, exceptions, custom page
sizes, stack switching, wide arithmetic and the component model are off, so modules using
them do not compile.
"""

from __future__ import annotations

from wasmtime import Config, Engine


def new_engine() -> Engine:
    """A fresh engine: each run gets its own, so one run's epoch timer cannot interrupt another's."""
    config = Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.cranelift_nan_canonicalization = True
    config.cranelift_opt_level = "speed"
    # A task already has its own core under Ray: compiling on more would compete with neighbours.
    config.parallel_compilation = False
    config.wasm_threads = False
    config.shared_memory = False
    config.wasm_relaxed_simd = False
    config.wasm_relaxed_simd_deterministic = True
    config.wasm_memory64 = False
    config.wasm_multi_memory = False
    config.wasm_gc = False
    config.wasm_function_references = False
    config.wasm_exceptions = False
    config.wasm_custom_page_sizes = False
    config.wasm_stack_switching = False
    config.wasm_wide_arithmetic = False
    config.wasm_component_model = False
    config.wasm_simd = True
    config.wasm_bulk_memory = True
    config.wasm_reference_types = True
    config.wasm_multi_value = True
    config.wasm_tail_call = True
    return Engine(config)
