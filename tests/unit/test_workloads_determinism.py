"""Determinism: every workload gives the same result bytes and fuel in this process, twice, and
in a fresh `python` process with another hash seed (what another replica would compute)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import parse_spec
from provider.workloads import example_module, run_job

REPO = Path(__file__).resolve().parents[2]


def case(workload: dict[str, Any], args: dict[str, Any], inputs: list[bytes]) -> dict[str, Any]:
    blobs = {sha256(data).hex(): data for data in inputs}
    if workload["kind"] == "wasm":
        module = example_module(workload.pop("example"))
        workload["module"] = sha256(module).hex()
        blobs[workload["module"]] = module
    spec = {
        "workload": workload,
        "args": args,
        "inputs": [sha256(data).hex() for data in inputs],
        "limits": {"fuel": 10**9, "memory_mb": 64, "timeout_s": 60},
    }
    return {"spec": spec, "blobs": {digest: data.hex() for digest, data in blobs.items()}}


TEXT = ["Über café, naïve 東京 — the cat.\n".encode() * 50, b"the dog\nthe cat\n" * 40, b"zebra\n"]
CASES = [
    case({"kind": "builtin", "name": "iterated-sha256"}, {"seed": "replica", "rounds": 5000}, []),
    case({"kind": "builtin", "name": "monte-carlo-pi"}, {"seed": 2**64 - 1, "samples": 30_000}, []),
    case({"kind": "builtin", "name": "word-count"}, {"lowercase": True}, TEXT),
    case({"kind": "builtin", "name": "word-count"}, {"top": 5}, TEXT),
    case({"kind": "builtin", "name": "sort-dedup"}, {}, TEXT),
    case(
        {"kind": "builtin", "name": "matrix-multiply"},
        {
            "a": [[i * j - 7 for j in range(9)] for i in range(12)],
            "b": [[2**62 - i - j for j in range(5)] for i in range(9)],
        },
        [],
    ),
    case(
        {"kind": "builtin", "name": "game-of-life"},
        {"width": 40, "height": 30, "generations": 60, "seed": 5},
        [],
    ),
    *(
        case({"kind": "wasm", "example": name, "entry": "run"}, {}, TEXT)
        for name in ("fnv1a64", "byte-histogram", "rle")
    ),
]

# Runs each case and prints [sha256 of the result, fuel used] per case.
CHILD = """
import json, sys
from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import parse_spec
from provider.workloads import run_job
answers = []
for item in json.load(sys.stdin):
    blobs = {digest: bytes.fromhex(data) for digest, data in item["blobs"].items()}
    result = run_job(parse_spec(item["spec"]), blobs)
    answers.append([sha256(result.output).hex(), result.fuel_used])
print(json.dumps(answers))
"""


def fingerprints() -> list[list[Any]]:
    answers = []
    for item in CASES:
        blobs = {digest: bytes.fromhex(data) for digest, data in item["blobs"].items()}
        result = run_job(parse_spec(item["spec"]), blobs)
        answers.append([sha256(result.output).hex(), result.fuel_used])
    return answers


def test_every_workload_is_deterministic_in_process_and_across_processes() -> None:
    here = fingerprints()
    assert here == fingerprints()
    assert len({digest for digest, _ in here}) == len(CASES)  # distinct jobs, distinct results
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(CASES),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        timeout=120,
        check=True,
    )
    assert json.loads(child.stdout) == here
