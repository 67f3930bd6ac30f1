"""Gas regression guard: re-measures bench/gas.py's steady-state scenarios on a fresh anvil and
compares them with bench/gas-snapshot.json (refresh with `python bench/gas.py --update-snapshot`)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from marketplace.chain.devnet import Devnet

REPO_ROOT = Path(__file__).resolve().parents[2]
GAS_SCRIPT = REPO_ROOT / "bench" / "gas.py"
SNAPSHOT = REPO_ROOT / "bench" / "gas-snapshot.json"
TOLERANCE = 0.05
REFRESH = "python bench/gas.py --update-snapshot"


def load_gas_bench() -> ModuleType:
    """bench/gas.py as a module (bench/ is a directory of scripts, not a package)."""
    name = "computemarket_bench_gas"
    if name in sys.modules:
        return sys.modules[name]
    if str(GAS_SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(GAS_SCRIPT.parent))  # as when run as a script: bench/ holds its helpers
    spec = importlib.util.spec_from_file_location(name, GAS_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def compare(recorded: dict[str, int], measured: dict[str, int], tolerance: float = TOLERANCE) -> list[str]:
    """One line per snapshot entry that is missing from `measured` or grew by more than `tolerance`."""
    problems = []
    for key, expected in recorded.items():
        actual = measured.get(key)
        if actual is None:
            problems.append(f"{key}: in the snapshot ({expected:,}) but not measured")
        elif actual > expected * (1 + tolerance):
            problems.append(f"{key}: {expected:,} -> {actual:,} (+{(actual - expected) / expected:.1%})")
    return problems


@pytest.fixture(scope="module")
def report() -> Any:
    gas = load_gas_bench()
    with Devnet() as devnet:
        return gas.measure(devnet)


@pytest.fixture(scope="module")
def measured(report: Any) -> dict[str, int]:
    snapshot: dict[str, int] = report.snapshot()
    return snapshot


def test_gas_targets_are_met(report: Any) -> None:
    missed = [
        f"{m.scenario.title}: {m.steady_per_job:,} gas per job > {m.scenario.target:,}"
        for m in report.measurements
        if m.passed is False
    ]
    assert [m for m in report.measurements if m.passed is not None], "no scenario has a target"
    assert not missed, "gas targets missed:\n  " + "\n  ".join(missed)


def test_gas_has_not_regressed(measured: dict[str, int]) -> None:
    recorded = {key: int(value) for key, value in json.loads(SNAPSHOT.read_text()).items()}
    assert recorded, f"{SNAPSHOT} is empty: run `{REFRESH}`"
    problems = compare(recorded, measured)
    assert not problems, (
        f"gas regressed by more than {TOLERANCE:.0%} against {SNAPSHOT.relative_to(REPO_ROOT)} "
        f"(or an entry is no longer measured):\n  "
        + "\n  ".join(problems)
        + f"\nIf the change is intended, refresh the snapshot with `{REFRESH}`."
    )


def test_compare_flags_regressions_and_missing_entries() -> None:
    recorded = {"a/postJob": 100_000, "a/claimJob": 50_000, "a/total": 150_000, "b/total": 10}
    measured = {"a/postJob": 105_000, "a/claimJob": 52_501, "a/total": 157_501, "c/total": 1}
    problems = compare(recorded, measured)
    assert [line.split(":")[0] for line in problems] == ["a/claimJob", "a/total", "b/total"]
