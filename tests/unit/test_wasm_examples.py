"""The shipped example modules: each follows the ABI and agrees with a Python reference."""

from __future__ import annotations

import struct
from collections import Counter
from itertools import groupby

import pytest

from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import parse_spec
from provider.workloads import TaskResult, example_module, example_names, plan, run_job
from provider.workloads.modules import example_source
from provider.workloads.wasm.engine import new_engine
from provider.workloads.wasm.validate import check_exports, check_imports, compile_module

INPUTS = [b"", b"a", b"foobar", bytes(range(256)) * 3, b"aaaaabbbcd" + b"z" * 600]


def run_example(name: str, inputs: list[bytes], memory_mb: int = 2) -> TaskResult:
    wasm = example_module(name)
    spec = parse_spec(
        {
            "workload": {"kind": "wasm", "module": sha256(wasm).hex()},
            "args": {"ignored": True},
            "inputs": [sha256(data).hex() for data in inputs],
            "limits": {"fuel": 10**8, "memory_mb": memory_mb, "timeout_s": 10},
        }
    )
    return run_job(spec, {sha256(wasm).hex(): wasm, **{sha256(data).hex(): data for data in inputs}})


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value


def rle(data: bytes) -> bytes:
    out = bytearray()
    for byte, run in groupby(data):
        length = len(list(run))
        while length:
            out += bytes([min(length, 255), byte])
            length -= min(length, 255)
    return bytes(out)


def test_examples_are_listed_and_compile_cleanly() -> None:
    assert example_names() == ["byte-histogram", "fnv1a64", "rle"]
    engine = new_engine()
    for name in example_names():
        assert example_source(name).startswith(";; ")
        module = compile_module(engine, example_module(name))
        check_imports(module)
        check_exports(module, "run")
        assert example_module(name) == example_module(name)


def test_unknown_example_is_an_error() -> None:
    with pytest.raises(ValueError, match="no example module called 'nope'"):
        example_module("nope")
    with pytest.raises(ValueError):
        example_source("../modules/__init__")


def test_fnv1a64_known_answers_and_reference() -> None:
    result = run_example("fnv1a64", [b"", b"a", b"foobar"])
    # Published FNV-1a 64 test vectors.
    assert result.output == b"cbf29ce484222325\naf63dc4c8601ec8c\n85944171f73967e8\n"
    expected = b"".join(f"{fnv1a64(data):016x}\n".encode() for data in INPUTS)
    assert run_example("fnv1a64", INPUTS).output == expected


def test_byte_histogram_matches_counter() -> None:
    counts = Counter(b"".join(INPUTS))
    output = run_example("byte-histogram", INPUTS).output
    assert len(output) == 2048
    assert list(struct.unpack("<256Q", output)) == [counts[value] for value in range(256)]


def test_rle_by_hand_and_across_input_boundaries() -> None:
    assert run_example("rle", [b"aaab"]).output == bytes.fromhex("03610162")
    assert run_example("rle", [b"aa", b"ab"]).output == bytes.fromhex("03610162")  # inputs concatenated
    assert run_example("rle", INPUTS).output == rle(b"".join(INPUTS))
    assert run_example("rle", []).output == b""


def test_examples_grow_memory_for_large_inputs_within_the_cap() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: the module must grow its memory to hold it
    assert run_example("fnv1a64", [data], memory_mb=4).output == f"{fnv1a64(data):016x}\n".encode()


def test_example_fuel_is_deterministic_and_grows_with_the_input() -> None:
    small, large = run_example("fnv1a64", [b"x" * 100]), run_example("fnv1a64", [b"x" * 1000])
    assert small == run_example("fnv1a64", [b"x" * 100])
    assert 0 < small.fuel_used < large.fuel_used


def test_plan_of_an_example_is_one_task_holding_module_and_inputs() -> None:
    wasm = example_module("rle")
    spec = parse_spec(
        {
            "workload": {"kind": "wasm", "module": sha256(wasm).hex(), "entry": "run"},
            "inputs": [sha256(b"aa").hex()],
            "limits": {"fuel": 5000, "memory_mb": 1, "timeout_s": 5},
        }
    )
    job = plan(spec, {sha256(wasm).hex(): wasm, sha256(b"aa").hex(): b"aa"})
    (task,) = job.tasks
    assert task.module == wasm and task.inputs == (b"aa",) and task.fuel == 5000
    assert job.fuel_estimate == 5000 and job.reduce_fuel == 0
