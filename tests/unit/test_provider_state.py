"""The provider's local state: durable rows, the terminal set, and a file tied to one identity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from marketplace.protocol.hashing import Hash32
from marketplace.protocol.views import ETH
from provider.state import TERMINAL, LocalState, Stage, StateError, StateLock, WorkRecord

SALT, RESULT = Hash32(b"\xee" * 32), Hash32(b"\xff" * 32)


def record(job_id: int, stage: Stage = Stage.CLAIMING) -> WorkRecord:
    return WorkRecord(job_id, stage, 3, Hash32(b"\xcd" * 32), ETH, 10**16, 10**17)


def test_records_round_trip_with_big_amounts_and_timestamps(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    big = record(1).with_(reward=2**255, collateral=2**200)
    state.add([big])
    stored = state.get(1)
    assert stored is not None and stored.reward == 2**255 and stored.collateral == 2**200
    assert stored.created_at > 0 and stored.updated_at >= stored.created_at
    state.save(
        [stored.with_(stage=Stage.COMPUTED, salt=SALT, result_hash=RESULT, block=7, block_hash="0x07")]
    )
    state.close()
    again = LocalState(tmp_path / "state.db").get(1)
    assert again is not None and (again.stage, again.salt, again.result_hash) == (
        Stage.COMPUTED,
        SALT,
        RESULT,
    )
    assert (again.spec_hash, again.block, again.block_hash) == (big.spec_hash, 7, "0x07")


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
from marketplace.protocol.hashing import Hash32
from provider.state import LocalState, Stage, WorkRecord
state = LocalState(Path({str(path)!r}))
state.add([WorkRecord(5, Stage.CLAIMED, 3, Hash32(b"\\xab" * 32), "0x" + "00" * 20, 1, 1)])
(record,) = state.active()
salt, result = Hash32(b"\\x12" * 32), Hash32(b"\\x34" * 32)
state.save([record.with_(stage=Stage.COMPUTED, salt=salt, result_hash=result)])
os.kill(os.getpid(), signal.SIGKILL)
"""
    completed = subprocess.run([sys.executable, "-c", script], check=False)
    assert completed.returncode == -9
    state = LocalState(path)
    saved = state.get(5)
    assert saved is not None and (saved.stage, saved.salt) == (Stage.COMPUTED, Hash32(b"\x12" * 32))
    state.close()


def test_a_state_file_belongs_to_one_chain_market_and_account(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    state.bind(31337, "0xMarket", "0xAlice")
    state.bind(31337, "0xMarket", "0xAlice")  # the same identity again is fine
    with pytest.raises(StateError, match="use another --state directory"):
        state.bind(31337, "0xMarket", "0xBob")
    state.close()


def test_a_version_1_state_file_is_migrated_with_its_rows(tmp_path: Path) -> None:
    """A file written before rows remembered their seat and block opens, rows intact."""
    import sqlite3

    path = tmp_path / "state.db"
    LocalState(path).close()
    with sqlite3.connect(path) as db:  # make it the old schema: no slot, block, block_hash
        db.execute("DROP TABLE work")
        db.execute(
            "CREATE TABLE work (job_id INTEGER PRIMARY KEY, stage VARCHAR(16) NOT NULL,"
            " replicas INTEGER NOT NULL, spec_hash VARCHAR(64) NOT NULL, token VARCHAR(42) NOT NULL,"
            " reward VARCHAR(80) NOT NULL, collateral VARCHAR(80) NOT NULL, result_hash VARCHAR(66),"
            " salt VARCHAR(66), computed_hash VARCHAR(66), fuel_used INTEGER, error_code VARCHAR(32),"
            " error VARCHAR(2000), outcome VARCHAR(16), uploaded BOOLEAN NOT NULL, created_at FLOAT NOT NULL,"
            " updated_at FLOAT NOT NULL)"
        )
        db.execute(
            "INSERT INTO work VALUES (9, 'computed', 3, ?, ?, '1', '2', ?, ?,"
            " NULL, NULL, NULL, NULL, NULL, 0, 1, 1)",
            ("cd" * 32, ETH, RESULT.hex0x, SALT.hex0x),
        )
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    state = LocalState(path)
    (row,) = state.active()
    assert (row.job_id, row.stage, row.salt, row.slot, row.block) == (9, Stage.COMPUTED, SALT, None, None)
    assert state.meta("schema_version") == "2"
    state.close()


def test_one_daemon_at_a_time_works_on_a_state_directory(tmp_path: Path) -> None:
    first = StateLock(tmp_path)
    first.acquire()
    with pytest.raises(StateError, match="in use by a running provider"):
        StateLock(tmp_path).acquire()
    first.release()
    second = StateLock(tmp_path)
    second.acquire()  # free again once the first let go
    second.release()
