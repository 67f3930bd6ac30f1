"""The workloads interface: errors, Task/TaskResult/Plan pickling, the catalog, plan refusals."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import JobSpec, parse_spec
from provider.errors import ProviderError
from provider.workloads import (
    ForbiddenImport,
    FuelExhausted,
    InvalidArguments,
    InvalidInput,
    InvalidModule,
    MemoryExceeded,
    Plan,
    TaskResult,
    UnknownWorkload,
    WorkloadError,
    WorkloadTimeout,
    WorkloadTrap,
    catalog,
    plan,
    run_job,
    run_task,
)
from provider.workloads.builtin import matrix_multiply

ERRORS = [
    (UnknownWorkload, "unknown-workload"),
    (InvalidArguments, "invalid-arguments"),
    (InvalidInput, "invalid-input"),
    (FuelExhausted, "fuel-exhausted"),
    (MemoryExceeded, "memory-exceeded"),
    (WorkloadTimeout, "timeout"),
    (ForbiddenImport, "forbidden-import"),
    (InvalidModule, "invalid-module"),
    (WorkloadTrap, "trap"),
]

# One small job per built-in, with the exact fuel its cost model gives.
JOBS: list[tuple[str, dict[str, Any], list[bytes], int]] = [
    ("iterated-sha256", {"seed": "x", "rounds": 500}, [], 500),
    ("monte-carlo-pi", {"seed": 3, "samples": 2000}, [], 2000),
    ("word-count", {}, [b"one two", b"three"], 7 + 1 + 5 + 1),
    ("matrix-multiply", {"a": [[1, 2], [3, 4], [5, 6]], "b": [[1, 0, 2], [0, 1, 3]]}, [], 3 * 2 * 3),
    # 3 records: 6 bytes + 3*2; 2 records: 4 bytes + 2*1; merge of 5 records from 2 inputs: 5*1
    ("sort-dedup", {}, [b"c\nb\na\n", b"b\nd\n"], 6 + 6 + 4 + 2 + 5),
    ("game-of-life", {"width": 8, "height": 4, "generations": 3, "seed": 1}, [], 8 * 4 * 4),
]


def builtin_spec(
    name: str, args: dict[str, Any], inputs: Sequence[bytes] = (), **limits: int
) -> tuple[JobSpec, dict[str, bytes]]:
    spec = parse_spec(
        {
            "workload": {"kind": "builtin", "name": name},
            "args": args,
            "inputs": [sha256(data).hex() for data in inputs],
            "limits": {"fuel": 10**9, "memory_mb": 64, "timeout_s": 30, **limits},
        }
    )
    return spec, {sha256(data).hex(): data for data in inputs}


@pytest.mark.parametrize(("cls", "code"), ERRORS)
def test_errors_have_stable_codes_and_pickle(cls: type[WorkloadError], code: str) -> None:
    error = cls("the job needs 12 fuel but its limit is 3")
    assert error.code == code
    assert isinstance(error, WorkloadError) and isinstance(error, ProviderError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy.code == code
    assert copy.message == str(copy) == "the job needs 12 fuel but its limit is 3"


def test_error_codes_are_distinct() -> None:
    assert len({code for _, code in ERRORS}) == len(ERRORS)


def test_task_and_result_pickle_and_run_the_same_after_the_trip() -> None:
    spec, blobs = builtin_spec("word-count", {"lowercase": True}, [b"A a b", b"c"])
    job = plan(spec, blobs)
    for task in job.tasks:
        copy = pickle.loads(pickle.dumps(task))
        assert copy == task
        assert run_task(copy) == run_task(task)
    result = run_task(job.tasks[0])
    assert pickle.loads(pickle.dumps(result)) == result


def test_plan_pickles_and_reduces_after_the_trip() -> None:
    spec, blobs = builtin_spec("sort-dedup", {}, [b"b\na\n", b"c\na\n"])
    job = plan(spec, blobs)
    copy: Plan = pickle.loads(pickle.dumps(job))
    results = [run_task(task) for task in copy.tasks]
    assert copy.reduce(results) == job.reduce(results) == run_job(spec, blobs)
    assert copy.reduce(results).output == b"a\nb\nc\n"


def test_task_is_self_contained_and_its_repr_shows_sizes_not_bytes() -> None:
    data = b"zebra " * 1000
    spec, blobs = builtin_spec("word-count", {}, [data])
    (task,) = plan(spec, blobs).tasks
    assert task.inputs == (data,)
    assert task.index == 0 and task.name == "word-count"
    assert "inputs=[6000] bytes" in repr(task) and "zebra" not in repr(task)
    assert "bytes" in repr(TaskResult(output=b"x" * 99, fuel_used=1))


def test_catalog_lists_every_builtin_with_a_usable_schema() -> None:
    entries = {info.name: info for info in catalog()}
    assert set(entries) == {name for name, *_ in JOBS}
    for info in entries.values():
        assert info.description and info.cost_model and info.inputs
        assert "fuel" in info.cost_model
        schema = json.loads(json.dumps(info.args_schema))
        assert schema["type"] == "object"
        assert schema.get("additionalProperties") is False
    assert set(entries["iterated-sha256"].args_schema["required"]) == {"seed", "rounds"}


@pytest.mark.parametrize(("name", "args", "inputs", "fuel"), JOBS, ids=[job[0] for job in JOBS])
def test_fuel_is_known_before_running_and_reported_exactly(
    name: str, args: dict[str, Any], inputs: list[bytes], fuel: int
) -> None:
    spec, blobs = builtin_spec(name, args, inputs)
    job = plan(spec, blobs)
    assert job.fuel_estimate == fuel
    assert job.reduce_fuel + sum(task.fuel for task in job.tasks) == fuel
    assert [run_task(task).fuel_used for task in job.tasks] == [task.fuel for task in job.tasks]
    assert run_job(spec, blobs).fuel_used == fuel


@pytest.mark.parametrize(("name", "args", "inputs", "fuel"), JOBS, ids=[job[0] for job in JOBS])
def test_plan_refuses_a_fuel_limit_one_below_the_cost(
    name: str, args: dict[str, Any], inputs: list[bytes], fuel: int
) -> None:
    spec, blobs = builtin_spec(name, args, inputs, fuel=fuel - 1)
    with pytest.raises(FuelExhausted, match=f"needs {fuel} fuel but the job's fuel limit is {fuel - 1}"):
        plan(spec, blobs)
    exact, blobs = builtin_spec(name, args, inputs, fuel=fuel)
    assert run_job(exact, blobs).fuel_used == fuel


def test_demo_job_spec_fits_its_own_limits() -> None:
    # the scripted demo posts iterated-sha256 with fuel = rounds and 16 MiB: it must be claimable.
    spec, blobs = builtin_spec("iterated-sha256", {"seed": "demo-1", "rounds": 1000}, fuel=1000, memory_mb=16)
    assert plan(spec, blobs).fuel_estimate == 1000


def test_plan_refuses_unknown_workloads_by_name() -> None:
    spec, blobs = builtin_spec("bitcoin-miner", {})
    with pytest.raises(UnknownWorkload, match=r"bitcoin-miner.*iterated-sha256"):
        plan(spec, blobs)


def test_unknown_workload_is_reported_before_missing_inputs() -> None:
    spec, _ = builtin_spec("bitcoin-miner", {}, [b"never uploaded"])
    with pytest.raises(UnknownWorkload):
        plan(spec, {})


def test_plan_repr_is_short() -> None:
    spec, blobs = builtin_spec("matrix-multiply", {"a": [[7] * 300], "b": [[5]] * 300})
    text = repr(plan(spec, blobs))
    assert "fuel_estimate=300" in text and "combine" not in text and len(text) < 1000


def test_plan_refuses_missing_input_blobs() -> None:
    spec, blobs = builtin_spec("word-count", {}, [b"present", b"absent"])
    del blobs[sha256(b"absent").hex()]
    with pytest.raises(InvalidInput, match=f"input 1 \\(blob {sha256(b'absent').hex()}\\) was not provided"):
        plan(spec, blobs)


def test_plan_refuses_memory_beyond_the_limit() -> None:
    data = b"x\n" * (600 * 1024)  # 1.2 MiB of records: a few MiB to sort
    spec, blobs = builtin_spec("sort-dedup", {}, [data], memory_mb=1)
    with pytest.raises(MemoryExceeded, match="limit is 1 MiB"):
        plan(spec, blobs)
    roomy, blobs = builtin_spec("sort-dedup", {}, [data], memory_mb=256)
    assert plan(roomy, blobs).memory_estimate > 1024 * 1024


def test_run_task_reprices_a_task_and_refuses_one_given_too_little_fuel() -> None:
    spec, blobs = builtin_spec("iterated-sha256", {"seed": "s", "rounds": 100})
    (task,) = plan(spec, blobs).tasks
    with pytest.raises(FuelExhausted):
        run_task(replace(task, fuel=99))
    with pytest.raises(FuelExhausted):
        run_task(replace(task, args={"seed": "s", "rounds": 10**6}))


def test_run_task_validates_hand_built_arguments() -> None:
    spec, blobs = builtin_spec("iterated-sha256", {"seed": "s", "rounds": 100})
    (task,) = plan(spec, blobs).tasks
    with pytest.raises(InvalidArguments, match="rounds"):
        run_task(replace(task, args={"seed": "s", "rounds": "100"}))


def test_builtin_timeout_is_enforced_inside_the_loop() -> None:
    spec, blobs = builtin_spec("iterated-sha256", {"seed": "slow", "rounds": 10**9}, timeout_s=1)
    (task,) = plan(spec, blobs).tasks
    started = time.monotonic()
    with pytest.raises(WorkloadTimeout, match="1 s"):
        run_task(task)
    assert 0.9 < time.monotonic() - started < 3


def test_reduce_wants_one_result_per_task() -> None:
    spec, blobs = builtin_spec("word-count", {}, [b"a", b"b"])
    job = plan(spec, blobs)
    with pytest.raises(ValueError, match="2 tasks but 1 results"):
        job.reduce([run_task(job.tasks[0])])


def test_crash_inside_a_workload_is_reported_as_a_trap(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> list[list[int]]:
        raise ZeroDivisionError("division by zero")

    spec, blobs = builtin_spec("matrix-multiply", {"a": [[1]], "b": [[2]]})
    (task,) = plan(spec, blobs).tasks
    monkeypatch.setattr(matrix_multiply, "multiply", broken)
    with pytest.raises(WorkloadTrap, match="matrix-multiply crashed: ZeroDivisionError"):
        run_task(task)
