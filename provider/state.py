"""The provider's crash-safe local state: one row per job it took on, in a SQLite file.

What the chain cannot tell a restarted provider is kept here: the salt of each commitment (lose it
and the reveal is lost, which is a slash), the result it computed, and what it was about to send.
Every write is a committed, fsynced transaction (`synchronous=FULL`) made BEFORE the transaction
that depends on it is sent; the chain says what happened after that, so a restart reconciles each
row with the chain instead of trusting it. A row moved by a transaction's receipt remembers the
block (`block`, `block_hash`): until that block is final, a reorg can undo the move, and the
daemon checks it again.

One daemon at a time works on a state directory: `StateLock` holds an exclusive lock on it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)

from marketplace.protocol.hashing import Hash32

from .errors import ProviderError

SCHEMA_VERSION = "2"


class Stage(StrEnum):
    """Where a job stands for this provider. Terminal stages are never left: a job reaches one only
    once what ended it is final on-chain (ENDED waits for that)."""

    CLAIMING = "claiming"  # the claim is being sent
    CLAIMED = "claimed"  # a slot is held; the result is not computed yet
    COMPUTED = "computed"  # result (and salt) persisted; nothing about it sent yet
    COMMITTING = "committing"  # the commit (or, for one replica, the submit) is being sent
    COMMITTED = "committed"  # the commitment is on-chain; waiting for the reveal phase
    REVEALING = "revealing"  # the reveal is being sent
    REVEALED = "revealed"  # waiting for the job to be finalized
    ENDED = "ended"  # the chain says it ended (see `outcome`); waiting until that is final
    SETTLED = "settled"  # the job was finalized (see `outcome`)
    LOST = "lost"  # another provider took the slot, or the job went away before the claim
    FAILED = "failed"  # the workload failed: no result was ever committed
    CANCELLED = "cancelled"  # the job was cancelled while this provider held a slot

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Stage.SETTLED, Stage.LOST, Stage.FAILED, Stage.CANCELLED})


@dataclass(frozen=True)
class WorkRecord:
    job_id: int
    stage: Stage
    replicas: int
    spec_hash: Hash32
    token: str
    reward: int
    collateral: int
    result_hash: Hash32 | None = None  # what this provider commits to
    salt: Hash32 | None = None  # for replicated jobs
    computed_hash: Hash32 | None = None  # the workload's real output (differs only when lying)
    fuel_used: int | None = None
    error_code: str | None = None
    error: str | None = None
    outcome: str | None = None  # won, lost, returned, slashed, cancelled, failed
    uploaded: bool = False
    slot: int | None = None  # the seat this provider holds
    block: int | None = None  # block of the receipt that last moved the row
    block_hash: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def with_(self, **changes: Any) -> WorkRecord:
        return dataclasses.replace(self, **changes)


_metadata = MetaData()
_WORK = Table(
    "work",
    _metadata,
    Column("job_id", Integer, primary_key=True, autoincrement=False),
    Column("stage", String(16), nullable=False, index=True),
    Column("replicas", Integer, nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("token", String(42), nullable=False),
    Column("reward", String(80), nullable=False),
    Column("collateral", String(80), nullable=False),
    Column("result_hash", String(66)),
    Column("salt", String(66)),
    Column("computed_hash", String(66)),
    Column("fuel_used", Integer),
    Column("error_code", String(32)),
    Column("error", String(2000)),
    Column("outcome", String(16)),
    Column("uploaded", Boolean, nullable=False, default=False),
    Column("slot", Integer),
    Column("block", Integer, index=True),
    Column("block_hash", String(66)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
# Results not yet taken by the marketplace, small enough to keep in the same file (and the same
# transaction, so one fsync covers a whole round's results and salts).
_RESULTS = Table(
    "results",
    _metadata,
    Column("digest", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
_META = Table(
    "meta",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(2000), nullable=False),
)
_INTEGERS = ("reward", "collateral")
_HASHES = ("result_hash", "salt", "computed_hash")
_UPDATE = (
    update(_WORK)
    .where(_WORK.c.job_id == bindparam("_job_id"))
    .values(
        {
            column.name: bindparam(f"_{column.name}")
            for column in _WORK.columns
            if column.name not in ("job_id", "created_at")
        }
    )
)
# Version 1 files lack these columns; opening one adds them.
_ADDED_IN_2 = ("slot INTEGER", "block INTEGER", "block_hash VARCHAR(66)")


def _to_row(record: WorkRecord) -> dict[str, Any]:
    """The row of a record: hashes in their text form (0x-hex; the spec as its blob digest)."""
    row = dataclasses.asdict(record)
    row["stage"] = record.stage.value
    row["spec_hash"] = record.spec_hash.digest
    for name in _HASHES:
        value = getattr(record, name)
        row[name] = None if value is None else value.hex0x
    for name in _INTEGERS:
        row[name] = str(row[name])
    return row


def _from_row(row: Any) -> WorkRecord:
    return _from_mapping(dict(row._mapping))


def _from_mapping(fields: dict[str, Any]) -> WorkRecord:
    fields = dict(fields)
    fields["stage"] = Stage(fields["stage"])
    fields["spec_hash"] = Hash32.from_hex(fields["spec_hash"])
    for name in _HASHES:
        if fields[name] is not None:
            fields[name] = Hash32.from_hex(fields[name])
    for name in _INTEGERS:
        fields[name] = int(fields[name])
    return WorkRecord(**fields)


class StateError(ProviderError):
    """The state file belongs to another market or account, is from a newer version, or another
    daemon is working on it."""


class StateLock:
    """An exclusive lock on a state directory, held while a daemon works on it (released when the
    process ends, however it ends)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "daemon.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        file = self.path.open("a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise StateError(
                f"{self.path.parent} is in use by a running provider ({holder}): "
                "stop it first, or use another --state directory"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()}")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class LocalState:
    """The provider's jobs, in `path` (created if missing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.engine: Engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

        @event.listens_for(self.engine, "connect")
        def _durable(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not just a crash
            cursor.close()

        _metadata.create_all(self.engine)
        self._migrate()
        # The daemon is the file's only writer, so the unfinished rows (read every round) and the
        # set of known ids are kept in memory too, always as the file has them.
        with self.engine.connect() as connection:
            rows = [_from_row(row) for row in connection.execute(select(_WORK))]
        self._active = {r.job_id: r for r in rows if not r.stage.terminal}
        self._known = {r.job_id for r in rows}

    def _migrate(self) -> None:
        version = self.meta("schema_version")
        if version == "1":
            with self.engine.begin() as connection:
                for column in _ADDED_IN_2:
                    connection.execute(text(f"ALTER TABLE work ADD COLUMN {column}"))
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise StateError(f"{self.path} has state schema {version}; this provider reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.engine.dispose()

    def bind(self, chain_id: int, market: str, account: str) -> None:
        """Ties the file to one chain, market and account; refuses a file tied to others."""
        identity = f"{chain_id}:{market}:{account}"
        found = self.meta("identity")
        if found is None:
            self.set_meta("identity", identity)
        elif found != identity:
            raise StateError(
                f"{self.path} is the state of {found.replace(':', ' / ')}, "
                f"not {identity.replace(':', ' / ')}: use another --state directory"
            )

    # ── jobs ──

    def add(self, records: Sequence[WorkRecord]) -> None:
        """Stores new records (in one transaction); a job's earlier record is replaced (a claim that
        came too early for the draw, tried again)."""
        if not records:
            return
        now = time.time()
        rows = [_to_row(record.with_(created_at=now, updated_at=now)) for record in records]
        with self.engine.begin() as connection:
            connection.execute(insert(_WORK).prefix_with("OR REPLACE"), rows)
        for row in rows:
            self._remember(_from_mapping(row))

    def save(
        self,
        records: Iterable[WorkRecord],
        *,
        results: Mapping[str, bytes] | None = None,
        drop_results: Iterable[str] = (),
    ) -> list[WorkRecord]:
        """Writes the records' current fields, stores `results` (digest -> bytes) and forgets
        `drop_results`, all in one transaction; returns the records as stored."""
        stored = [record.with_(updated_at=time.time()) for record in records]
        dropped = list(drop_results)
        if not stored and not results and not dropped:
            return stored
        with self.engine.begin() as connection:
            if results:
                known = set(
                    connection.execute(
                        select(_RESULTS.c.digest).where(_RESULTS.c.digest.in_(list(results)))
                    ).scalars()
                )
                fresh = [{"digest": d, "data": data} for d, data in results.items() if d not in known]
                if fresh:
                    connection.execute(insert(_RESULTS), fresh)
            if dropped:
                connection.execute(delete(_RESULTS).where(_RESULTS.c.digest.in_(dropped)))
            if stored:
                rows = [{f"_{key}": value for key, value in _to_row(record).items()} for record in stored]
                connection.execute(_UPDATE, rows)  # one statement, built once, for every row
        for record in stored:
            self._remember(record)
        return stored

    def _remember(self, record: WorkRecord) -> None:
        self._known.add(record.job_id)
        if record.stage.terminal:
            self._active.pop(record.job_id, None)
        else:
            self._active[record.job_id] = record

    def result(self, digest: str) -> bytes | None:
        """A stored result's bytes (hex digest without 0x)."""
        with self.engine.connect() as connection:
            data = connection.execute(select(_RESULTS.c.data).where(_RESULTS.c.digest == digest)).scalar()
        return None if data is None else bytes(data)

    def get(self, job_id: int) -> WorkRecord | None:
        if job_id in self._active:
            return self._active[job_id]
        with self.engine.connect() as connection:
            row = connection.execute(select(_WORK).where(_WORK.c.job_id == job_id)).first()
        return None if row is None else _from_row(row)

    def known(self, job_ids: Iterable[int]) -> set[int]:
        """Which of `job_ids` have a record (in any stage)."""
        return self._known.intersection(job_ids)

    def active(self) -> list[WorkRecord]:
        """Every record not in a terminal stage, oldest job first."""
        return [self._active[job_id] for job_id in sorted(self._active)]

    def moved_since(self, block: int) -> list[WorkRecord]:
        """Records a receipt moved in `block` or later, in any stage (those a reorg can undo)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(_WORK).where(_WORK.c.block >= block).order_by(_WORK.c.job_id))
            return [_from_row(row) for row in rows]

    def unuploaded(self) -> list[WorkRecord]:
        """Records whose computed result the marketplace does not have yet, in any stage."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_WORK).where(_WORK.c.computed_hash.is_not(None), _WORK.c.uploaded.is_(False))
            )
            return [_from_row(row) for row in rows]

    def all(self) -> list[WorkRecord]:
        with self.engine.connect() as connection:
            return [_from_row(row) for row in connection.execute(select(_WORK).order_by(_WORK.c.job_id))]

    # ── key-value metadata ──

    def meta(self, key: str) -> str | None:
        with self.engine.connect() as connection:
            value = connection.execute(select(_META.c.value).where(_META.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as connection:
            done = connection.execute(update(_META).where(_META.c.key == key).values(value=value)).rowcount
            if not done:
                connection.execute(insert(_META).values(key=key, value=value))
