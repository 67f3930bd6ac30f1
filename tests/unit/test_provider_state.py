"""The provider's local state: durable rows, the terminal set, and a file tied to one identity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from marketplace.chain.market import ETH
from provider.state import TERMINAL, LocalState, Stage, StateError, WorkRecord


def record(job_id: int, stage: Stage = Stage.CLAIMING) -> WorkRecord:
    return WorkRecord(job_id, stage, 3, "cd" * 32, ETH, 10**16, 10**17)


def test_records_round_trip_with_big_amounts_and_timestamps(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    big = record(1).with_(reward=2**255, collateral=2**200)
    state.add([big])
    stored = state.get(1)
    assert stored is not None and stored.reward == 2**255 and stored.collateral == 2**200
    assert stored.created_at > 0 and stored.updated_at >= stored.created_at
    state.save([stored.with_(stage=Stage.COMPUTED, salt="0x" + "ee" * 32, result_hash="0x" + "ff" * 32)])
    again = state.get(1)
    assert again is not None and (again.stage, again.salt) == (Stage.COMPUTED, "0x" + "ee" * 32)
    state.close()


def test_active_leaves_out_terminal_stages(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    state.add([record(job_id, stage) for job_id, stage in enumerate(Stage, start=1)])
    active = {r.stage for r in state.active()}
    assert active == set(Stage) - TERMINAL
    assert state.known([1, 2, 999]) == {1, 2}
    state.close()


def test_a_salt_saved_before_a_kill_is_there_after_it(tmp_path: Path) -> None:
    """A separate process saves a salt and is killed at once; the file still has it."""
    path = tmp_path / "state.db"
    script = f"""
import os, signal
from pathlib import Path
from provider.state import LocalState, Stage, WorkRecord
state = LocalState(Path({str(path)!r}))
state.add([WorkRecord(5, Stage.CLAIMED, 3, "ab" * 32, "0x" + "00" * 20, 1, 1)])
(record,) = state.active()
state.save([record.with_(stage=Stage.COMPUTED, salt="0x" + "12" * 32, result_hash="0x" + "34" * 32)])
os.kill(os.getpid(), signal.SIGKILL)
"""
    completed = subprocess.run([sys.executable, "-c", script], check=False)
    assert completed.returncode == -9
    state = LocalState(path)
    saved = state.get(5)
    assert saved is not None and (saved.stage, saved.salt) == (Stage.COMPUTED, "0x" + "12" * 32)
    state.close()


def test_a_state_file_belongs_to_one_chain_market_and_account(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    state.bind(31337, "0xMarket", "0xAlice")
    state.bind(31337, "0xMarket", "0xAlice")  # the same identity again is fine
    with pytest.raises(StateError, match="use another --state directory"):
        state.bind(31337, "0xMarket", "0xBob")
    state.close()
