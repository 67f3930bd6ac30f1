"""WebAssembly workloads: the ABI, refusals before running (imports, exports, features, memory),
and the limits while running (fuel, memory cap, wall clock), with small test-only modules."""

from __future__ import annotations

import pickle
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from wasmtime import wat2wasm

from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import JobSpec, parse_spec
from provider.workloads import (
    ForbiddenImport,
    FuelExhausted,
    InvalidArguments,
    InvalidInput,
    InvalidModule,
    MemoryExceeded,
    WorkloadTimeout,
    WorkloadTrap,
    plan,
    run_job,
    run_task,
)

MEMORY = '(memory (export "memory") 1)'
# A bump allocator that grows memory as needed (the ABI's `alloc`).
ALLOC = """
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $pages i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (local.get $ptr) (local.get $len)))
    (local.set $pages (i32.shr_u (i32.add (global.get $heap) (i32.const 0xffff)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    (local.get $ptr))
"""
ECHO = (
    "(i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))"
    " (i64.extend_i32_u (local.get $len)))"
)
SPIN = "(loop $forever (br $forever)) (i64.const 0)"


def module(
    body: str = ECHO,
    *,
    imports: str = "",
    memory: str = MEMORY,
    alloc: str = ALLOC,
    extra: str = "",
    entry: str = "run",
) -> bytes:
    """A module with the ABI's exports whose entry runs `body` (params $ptr, $len; result i64)."""
    return bytes(
        wat2wasm(
            f"(module {imports} {memory} {alloc}"
            f' (func (export "{entry}") (param $ptr i32) (param $len i32) (result i64) {body}) {extra})'
        )
    )


def wasm_job(
    wasm: bytes,
    inputs: Sequence[bytes] = (),
    args: dict[str, Any] | None = None,
    entry: str = "run",
    **limits: int,
) -> tuple[JobSpec, dict[str, bytes]]:
    spec = parse_spec(
        {
            "workload": {"kind": "wasm", "module": sha256(wasm).hex(), "entry": entry},
            "args": args or {},
            "inputs": [sha256(data).hex() for data in inputs],
            "limits": {"fuel": 10**7, "memory_mb": 4, "timeout_s": 10, **limits},
        }
    )
    return spec, {sha256(wasm).hex(): wasm, **{sha256(data).hex(): data for data in inputs}}


def frame(*parts: bytes) -> bytes:
    return struct.pack("<I", len(parts)) + b"".join(struct.pack("<I", len(part)) + part for part in parts)


# The ABI


def test_input_frame_is_args_then_inputs_length_prefixed() -> None:
    result = run_job(*wasm_job(module(), [b"xy", b""], args={"b": 1, "a": "é"}))
    assert result.output == frame('{"a":"é","b":1}'.encode(), b"xy", b"")
    assert result.output[:4] == b"\x03\x00\x00\x00"  # little-endian count: args + 2 inputs
    assert run_job(*wasm_job(module())).output == frame(b"{}")


def test_entry_can_have_another_name() -> None:
    assert run_job(*wasm_job(module(entry="main"), [b"z"], entry="main")).output == frame(b"{}", b"z")
    with pytest.raises(InvalidModule, match="entry 'main'"):
        plan(*wasm_job(module(), entry="main"))


def test_fuel_used_is_deterministic_and_exactly_enough() -> None:
    spec, blobs = wasm_job(module(), [b"abc"])
    used = run_job(spec, blobs).fuel_used
    assert 0 < used == run_job(spec, blobs).fuel_used
    assert plan(spec, blobs).fuel_estimate == spec.limits.fuel  # only known after running
    exact, blobs = wasm_job(module(), [b"abc"], fuel=used)
    assert run_job(exact, blobs).fuel_used == used
    short, blobs = wasm_job(module(), [b"abc"], fuel=used - 1)
    with pytest.raises(FuelExhausted):
        run_job(short, blobs)


def test_wasm_task_pickles_and_carries_its_module() -> None:
    wasm = module()
    spec, blobs = wasm_job(wasm, [b"data"])
    (task,) = plan(spec, blobs).tasks
    assert task.module == wasm and task.inputs == (b"data",)
    copy = pickle.loads(pickle.dumps(task))
    assert run_task(copy) == run_task(task)
    assert task.name.startswith("wasm:")


def test_wasm_plan_pickles_and_reduces_to_the_module_output() -> None:
    spec, blobs = wasm_job(module(), [b"q"])
    job = pickle.loads(pickle.dumps(plan(spec, blobs)))
    assert job.reduce([run_task(task) for task in job.tasks]) == run_job(spec, blobs)


def test_nans_are_canonical() -> None:
    # 0/0 is 0xFFC00000 on x86 hardware and a NaN's payload would propagate through an add;
    # with canonicalization both are the one quiet NaN 0x7FC00000, on every CPU.
    body = """
      (i32.store (i32.const 0) (i32.reinterpret_f32
        (f32.div (f32.convert_i32_u (i32.sub (local.get $len) (local.get $len)))
                 (f32.convert_i32_u (i32.sub (local.get $len) (local.get $len))))))
      (i32.store (i32.const 4) (i32.reinterpret_f32
        (f32.add (f32.reinterpret_i32 (i32.add (i32.const 0x7fa00000) (local.get $len)))
                 (f32.const 1))))
      (i64.const 8)
    """
    assert run_job(*wasm_job(module(body))).output == struct.pack("<II", 0x7FC00000, 0x7FC00000)


# Refused in plan, before anything runs

WASI = "wasi_snapshot_preview1"
FORBIDDEN_IMPORTS = {
    "wasi clock": f'(import "{WASI}" "clock_time_get" (func (param i32 i64 i32) (result i32)))',
    "wasi random": f'(import "{WASI}" "random_get" (func (param i32 i32) (result i32)))',
    "wasi fd_write": f'(import "{WASI}" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
    "host clock": '(import "env" "now" (func (result f64)))',
    "host random": '(import "env" "random" (func (result i64)))',
    "imported global": '(import "env" "seed" (global i64))',
    "fail, wrong type": '(import "cm" "fail" (func (param i32)))',
}


@pytest.mark.parametrize("imports", FORBIDDEN_IMPORTS.values(), ids=FORBIDDEN_IMPORTS.keys())
def test_forbidden_imports_are_refused_by_plan_and_by_run_task(imports: str) -> None:
    wasm = module(imports=imports)
    with pytest.raises(ForbiddenImport, match=r"the only import provided is cm\.fail"):
        plan(*wasm_job(wasm))
    (task,) = plan(*wasm_job(module())).tasks
    with pytest.raises(ForbiddenImport):
        run_task(replace(task, module=wasm))


def test_forbidden_import_message_names_every_import_and_hints_at_wasi() -> None:
    imports = FORBIDDEN_IMPORTS["wasi clock"] + FORBIDDEN_IMPORTS["host random"]
    with pytest.raises(ForbiddenImport) as refused:
        plan(*wasm_job(module(imports=imports)))
    assert "wasi_snapshot_preview1.clock_time_get (func (i32, i64, i32) -> (i32))" in refused.value.message
    assert "env.random" in refused.value.message and "WASI is not provided" in refused.value.message


def test_imported_memory_is_forbidden() -> None:
    wasm = bytes(
        wat2wasm(f'(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)) {ALLOC})')
    )
    with pytest.raises(ForbiddenImport, match=r"env.memory \(memory\)"):
        plan(*wasm_job(wasm))


MALFORMED = {
    "no alloc": (module(alloc=""), "export alloc"),
    "no memory": (module(memory="(memory 1)"), "export its linear memory as 'memory'"),
    "entry returns i32": (
        bytes(
            wat2wasm(
                f'(module {MEMORY} {ALLOC} (func (export "run") (param i32 i32) (result i32) i32.const 0))'
            )
        ),
        "entry 'run'",
    ),
    "text, not binary": (b'(module (memory (export "memory") 1))', "not a WebAssembly binary"),
    "garbage": (b"\0asm\x01\0\0\0\xff\xff", "does not compile"),
    "shared memory": (module(memory='(memory (export "memory") 1 1 shared)'), "threads must be enabled"),
    "memory64": (module(memory='(memory (export "memory") i64 1)'), "memory64 must be enabled"),
    "relaxed simd": (
        module(extra="(func (result v128) (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 1 2 3 4)))"),
        "does not compile",
    ),
    "data out of bounds": (module(extra='(data (i32.const 65530) "0123456789")'), "instantiat"),
}


@pytest.mark.parametrize(("wasm", "match"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_modules_are_refused_by_plan(wasm: bytes, match: str) -> None:
    with pytest.raises(InvalidModule, match=match):
        plan(*wasm_job(wasm))


def test_declared_memory_beyond_the_limit_is_refused_by_plan() -> None:
    wasm = module(memory='(memory (export "memory") 40)')  # 40 pages = 2.5 MiB
    with pytest.raises(MemoryExceeded, match="limit is 2 MiB"):
        plan(*wasm_job(wasm, memory_mb=2))
    assert plan(*wasm_job(wasm, memory_mb=3)).memory_estimate == 40 * 65536


def test_input_larger_than_the_memory_limit_is_refused_by_plan() -> None:
    with pytest.raises(MemoryExceeded, match="the module with its input"):
        plan(*wasm_job(module(), [b"\0" * (2 * 1024 * 1024)], memory_mb=2))


def test_oversized_table_is_refused_by_plan() -> None:
    with pytest.raises(MemoryExceeded, match="table"):
        plan(*wasm_job(module(extra="(table 200000 funcref)")))


def test_missing_module_blob_and_non_json_args_are_refused() -> None:
    spec, blobs = wasm_job(module())
    with pytest.raises(InvalidInput, match="the WebAssembly module"):
        plan(spec, {})
    spec, blobs = wasm_job(module(), args={"x": float("nan")})
    with pytest.raises(InvalidArguments, match="NaN"):
        plan(spec, blobs)


# Limits while running


def test_infinite_loop_runs_out_of_fuel() -> None:
    spec, blobs = wasm_job(module(SPIN), fuel=100_000)
    started = time.monotonic()
    with pytest.raises(FuelExhausted, match="more than the 100000 fuel"):
        run_job(spec, blobs)
    assert time.monotonic() - started < 1


def test_start_function_is_metered_too() -> None:
    wasm = module(extra="(func $spin (loop $forever (br $forever))) (start $spin)")
    spec, blobs = wasm_job(wasm, fuel=100_000)
    plan(spec, blobs)  # plan instantiates with no fuel: nothing runs, nothing hangs
    with pytest.raises(FuelExhausted):
        run_job(spec, blobs)


def test_infinite_loop_with_huge_fuel_hits_the_wall_clock_limit() -> None:
    spec, blobs = wasm_job(module(SPIN), fuel=2**62, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(WorkloadTimeout, match="wall-clock limit of 1 s"):
        run_job(spec, blobs)
    assert 0.9 < time.monotonic() - started < 3


def test_one_runs_timer_does_not_interrupt_another_running_at_the_same_time() -> None:
    # Each run has its own engine, so the 1 s job's timer cannot end the 2 s job's epoch.
    elapsed: dict[int, float] = {}

    def spin(timeout_s: int) -> None:
        started = time.monotonic()
        with pytest.raises(WorkloadTimeout):
            run_job(*wasm_job(module(SPIN), fuel=2**62, timeout_s=timeout_s))
        elapsed[timeout_s] = time.monotonic() - started

    threads = [threading.Thread(target=spin, args=(seconds,)) for seconds in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.9 < elapsed[1] < 1.9 <= elapsed[2] < 4


GROW_UNTIL_REFUSED = (
    "(block $full (loop $more (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $more)))"
)


def test_memory_grower_is_stopped_at_the_cap() -> None:
    spec, blobs = wasm_job(module(GROW_UNTIL_REFUSED + " unreachable"), memory_mb=2)
    with pytest.raises(MemoryExceeded, match="all 2 MiB"):
        run_job(spec, blobs)


def test_memory_cap_is_exact_and_the_same_everywhere() -> None:
    # A module that copes with memory.grow failing sees exactly memory_mb MiB: 32 pages for 2.
    body = GROW_UNTIL_REFUSED + " (i32.store (i32.const 0) (memory.size)) (i64.const 4)"
    assert run_job(*wasm_job(module(body), memory_mb=2)).output == struct.pack("<I", 32)
    assert run_job(*wasm_job(module(body), memory_mb=3)).output == struct.pack("<I", 48)


def test_trap_is_reported_with_its_reason() -> None:
    body = "(drop (i32.div_u (i32.const 1) (i32.sub (local.get $len) (local.get $len)))) (i64.const 0)"
    with pytest.raises(WorkloadTrap, match="the module trapped: wasm trap: integer divide by zero"):
        run_job(*wasm_job(module(body)))


def test_module_can_fail_with_its_own_message() -> None:
    imports = '(import "cm" "fail" (func $fail (param i32 i32)))'
    body = "(call $fail (i32.const 0) (i32.const 23)) (i64.const 0)"
    wasm = module(body, imports=imports, extra='(data (i32.const 0) "bad input: need 8 bytes")')
    with pytest.raises(WorkloadTrap, match=r"^the module failed: bad input: need 8 bytes$"):
        run_job(*wasm_job(wasm))


def test_result_outside_memory_is_a_trap() -> None:
    with pytest.raises(WorkloadTrap, match="outside its 65536 bytes of memory"):
        run_job(*wasm_job(module("(i64.const 0x0000fff000100000)")))


def test_alloc_returning_no_room_is_a_trap() -> None:
    alloc = '(func (export "alloc") (param i32) (result i32) (i32.const -16))'
    with pytest.raises(WorkloadTrap, match="does not leave room for the input"):
        run_job(*wasm_job(module(alloc=alloc)))
