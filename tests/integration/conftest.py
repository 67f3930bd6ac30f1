"""Fixtures and helpers of the indexer tests: fresh databases on SQLite and on a throwaway
PostgreSQL server, whole-store dumps and comparisons, and checks of the projections against the
chain's own views."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

from marketplace.chain.devnet import Devnet
from marketplace.chain.market import Market
from marketplace.chain.rpc import RpcClient
from marketplace.indexer.sync import Indexer, StepResult
from marketplace.protocol.sortition import ticket
from marketplace.protocol.status import AssignmentStatus, JobStatus
from marketplace.store.database import make_engine, migrate
from marketplace.store.schema import Base
from tests.postgres import PostgresServer, unavailable_reason

# Everything the indexer derives from the chain: these must be identical however it got there.
STORE_TABLES = ("jobs", "assignments", "providers", "balances", "token_totals", "events", "transactions")
# Columns that record how the index got there rather than what the chain holds: an event's stream
# number counts the events written before it, reorged ones included.
HISTORY_COLUMNS = {"events": {"seq"}}
GWEI = 10**9


# ── databases ──


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session; each test makes its own databases on it."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with PostgresServer() as server:
        yield server


class Databases:
    """Fresh, migrated databases of one backend for one test; their engines are disposed after it."""

    def __init__(self, backend: str, directory: Path, server: PostgresServer | None) -> None:
        self.backend = backend
        self.directory = directory
        self.server = server
        self._engines: list[Engine] = []

    def new_url(self, name: str) -> str:
        if self.server is not None:
            return self.server.database(name)
        return f"sqlite:///{self.directory / name}.db"

    def engine(self, url: str) -> Engine:
        engine = make_engine(url)
        migrate(engine)
        self._engines.append(engine)
        return engine

    def new(self, name: str) -> tuple[str, Engine]:
        url = self.new_url(name)
        return url, self.engine(url)

    def close(self) -> None:
        for engine in self._engines:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    """Databases on each backend in turn (the PostgreSQL runs are skipped when it is not installed)."""
    server = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    databases = Databases(request.param, tmp_path, server)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def sqlite_dbs(tmp_path: Path) -> Iterator[Databases]:
    databases = Databases("sqlite", tmp_path, None)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def node() -> Iterator[Devnet]:
    """A fresh anvil for one test (reorgs and time travel must not leak into other tests)."""
    with Devnet() as devnet:
        yield devnet


# ── indexing ──


def index_to_head(
    engine: Engine, rpc_url: str, market: str, *, finality_depth: int, max_steps: int = 10_000, **options: Any
) -> list[StepResult]:
    """Steps a new Indexer until it has caught up with the head (undoing any reorg on the way)."""
    rpc = RpcClient(rpc_url)
    try:
        indexer = Indexer(engine, rpc, market, finality_depth=finality_depth, **options)
        indexer.initialize()
        results = []
        for _ in range(max_steps):
            result = indexer.step()
            results.append(result)
            if result.caught_up and result.reorged_to is None:
                return results
        raise AssertionError(f"the indexer did not catch up in {max_steps} steps: {results[-5:]}")
    finally:
        rpc.close()


# ── dumps and comparisons ──


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def dump(
    engine: Engine, tables: Sequence[str] = STORE_TABLES, *, history: bool = False
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables`, in primary-key order; without the HISTORY_COLUMNS unless `history`."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name in tables:
            table = _table(name)
            skipped = set() if history else HISTORY_COLUMNS.get(name, set())
            columns = [column for column in table.columns if column.name not in skipped]
            rows = connection.execute(select(*columns).order_by(*table.primary_key.columns))
            found[name] = [tuple(row) for row in rows]
    return found


def journal(engine: Engine) -> list[tuple[int, str, str, str]]:
    """The undo journal without its ids (which depend on how many steps wrote it)."""
    with engine.connect() as connection:
        rows = connection.execute(select(_table("journal")))
        return sorted(
            (row.block_number, row.table_name, json.dumps(row.key), json.dumps(row.before, sort_keys=True))
            for row in rows
        )


def assert_same_rows(actual: dict[str, list[Any]], expected: dict[str, list[Any]], what: str) -> None:
    """Equal dumps, or a failure that lists the differing rows of each table (not a wall of text)."""
    problems = []
    for name in expected:
        got, want = actual[name], expected[name]
        if got == want:
            continue
        extra = [row for row in got if row not in want]
        missing = [row for row in want if row not in got]
        problems.append(
            f"{name}: {len(got)} rows vs {len(want)} expected\n"
            f"  unexpected: {extra[:5]}{' …' if len(extra) > 5 else ''}\n"
            f"  missing:    {missing[:5]}{' …' if len(missing) > 5 else ''}"
        )
    assert not problems, f"{what}:\n" + "\n".join(problems)


def chain_state(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as connection:
        row = connection.execute(select(_table("chain_state"))).one()
    return (row.chain_id, row.market, row.last_block, row.last_block_hash, row.last_block_timestamp)


def assert_blocks_canonical(engine: Engine, rpc_url: str) -> None:
    """Every stored header is the chain's current one (no header of a replaced block survives)."""
    with engine.connect() as connection:
        stored = connection.execute(select(_table("blocks")).order_by(_table("blocks").c.number)).all()
    rpc = RpcClient(rpc_url)
    try:
        canonical = rpc.headers([row.number for row in stored])
    finally:
        rpc.close()
    stale = [
        row.number
        for row, header in zip(stored, canonical, strict=True)
        if header is None
        or (row.hash, row.parent_hash, row.timestamp)
        != (header["hash"], header["parentHash"], int(header["timestamp"], 16))
    ]
    assert not stale, f"stored headers of blocks {stale} are not the chain's"


def assert_same_store(
    actual: Engine, expected: Engine, rpc_url: str, *, finality_depth: int, pruned_through: int = -1
) -> None:
    """`actual` holds exactly what `expected` (a clean index of the same chain) holds.

    Projections and events must be identical row for row. The bookkeeping tables are compared
    for what is deterministic: both checkpoints name the same block; the journal (without its
    ids, which count the steps that wrote it) holds the same before-images above the finality
    boundary, as both stores ended with a step that pruned it to that boundary; the stored
    headers are all canonical and agree above it. Below it they may differ in pruning only: a
    store that advanced block by block keeps a header or two more, and one whose chain got
    shorter already pruned through `pruned_through`, the boundary of its highest head.
    """
    assert_same_rows(dump(actual), dump(expected), "the store differs from a clean index of the same chain")
    assert chain_state(actual) == chain_state(expected)
    assert_blocks_canonical(actual, rpc_url)
    assert_blocks_canonical(expected, rpc_url)
    with actual.connect() as a, expected.connect() as b:
        head = a.execute(select(_table("chain_state").c.head_block)).scalar_one()
        boundary = max(head - finality_depth, pruned_through)
        blocks = _table("blocks")
        query = select(blocks).where(blocks.c.number > boundary).order_by(blocks.c.number)
        assert a.execute(query).all() == b.execute(query).all(), "the stored headers differ"
    unpruned = [entry for entry in journal(expected) if entry[0] > boundary]
    assert [entry for entry in journal(actual) if entry[0] > boundary] == unpruned, "the undo journals differ"
    assert all(entry[0] > head - finality_depth for entry in journal(actual)), "the journal was not pruned"


def assert_projections_match_chain(engine: Engine, market: Market, accounts: Sequence[str]) -> None:
    """Every projection agrees with the contract's own views (getJob, getAssignment, providerInfo,
    credits) for every job and every one of `accounts`, so a handler bug shows up as a mismatch."""
    with engine.connect() as connection:

        def rows(name: str, *key: str) -> dict[Any, Any]:
            found = connection.execute(select(_table(name))).mappings().all()
            return {tuple(row[k] for k in key) if len(key) > 1 else row[key[0]]: row for row in found}

        jobs = rows("jobs", "id")
        assignments = rows("assignments", "job_id", "provider")
        providers = rows("providers", "address")
        balances = rows("balances", "account", "token")
        totals = rows("token_totals", "token")
    problems: list[str] = []
    count = market.job_count()
    if sorted(jobs) != list(range(1, count + 1)):
        problems.append(f"store has jobs {sorted(jobs)}, the chain has 1..{count}")
    expected_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    tokens = {"0x0000000000000000000000000000000000000000"}
    for job_id in range(1, count + 1):
        view = market.job(job_id)
        tokens.add(view.token)
        expected_totals[view.token][0] += 1
        expected_totals[view.token][1] += view.reward_per_replica * view.replicas
        row = jobs.get(job_id)
        if row is None:
            continue
        chain = {
            "status": str(view.status), "requester": view.requester, "token": view.token,
            "replicas": view.replicas, "claims": view.claims, "commits": view.commits,
            "reveals": view.reveals, "reward_per_replica": str(view.reward_per_replica),
            "collateral_per_replica": str(view.collateral_per_replica),
        }  # fmt: skip
        stored = {key: row[key] for key in chain}
        if view.status is JobStatus.OPEN:
            chain["claim_deadline"], stored["claim_deadline"] = view.deadline, row["claim_deadline"]
        if view.status is JobStatus.RUNNING:
            chain["commit_deadline"], stored["commit_deadline"] = view.deadline, row["commit_deadline"]
        seed = market.sortition(job_id).seed if view.claims > 0 else 0  # fixed by the first claim
        if seed:
            chain["seed"], stored["seed"] = seed, row["seed"]
        if stored != chain:
            problems.append(f"job {job_id}: store {stored} != chain {chain}")
        for account in accounts:
            seat = market.assignment(job_id, account)
            assignment = assignments.get((job_id, account))
            if seat.status is AssignmentStatus.NONE:
                if assignment is not None:
                    problems.append(f"job {job_id}: store has an assignment of {account}, the chain none")
                continue
            if assignment is None:
                problems.append(
                    f"job {job_id}: {account} holds slot {seat.slot}, the store has no assignment"
                )
                continue
            chain_seat = {"status": str(seat.status), "slot": seat.slot}
            stored_seat = {"status": assignment["status"], "slot": assignment["slot"]}
            if seed:
                chain_seat["ticket"] = f"0x{ticket(seed, job_id, account):016x}"
                stored_seat["ticket"] = assignment["ticket"]
            if seat.status is AssignmentStatus.COMMITTED:
                chain_seat["commitment"] = "0x" + seat.commitment.hex()
                stored_seat["commitment"] = assignment["commitment"]
            if seat.status is AssignmentStatus.REVEALED and any(seat.result_hash):
                # (submitResult keeps the hash only in its events: the view then shows zero)
                chain_seat["result_hash"] = "0x" + seat.result_hash.hex()
                stored_seat["result_hash"] = assignment["result_hash"]
            if stored_seat != chain_seat:
                problems.append(f"job {job_id}, {account}: store {stored_seat} != chain {chain_seat}")
    strays = [key for key in assignments if key[0] not in jobs or key[1] not in accounts]
    if strays:
        problems.append(f"assignments of unknown jobs or accounts: {strays}")
    for account in accounts:
        info = market.provider(account)
        provider = providers.get(account)
        if not info.registered:
            if provider is not None:
                problems.append(f"store has provider {account}, who never registered")
            continue
        chain_stake = (str(info.free_stake), str(info.locked_stake), str(info.unbonding))
        stored_stake = (provider["staked"], provider["locked"], provider["unbonding"]) if provider else None
        if stored_stake != chain_stake:
            problems.append(
                f"provider {account}: store (free, locked, unbonding) {stored_stake} != {chain_stake}"
            )
    for account in accounts:
        for token in sorted(tokens):
            balance = balances.get((account, token))
            owed = int(balance["credited"]) - int(balance["withdrawn"]) if balance else 0
            if owed != market.credits(account, token):
                problems.append(
                    f"{account} in {token}: store credited - withdrawn = {owed}, "
                    f"chain credits {market.credits(account, token)}"
                )
    for account in {key[0] for key in balances} - set(accounts):
        problems.append(f"store has a balance of {account}, not one of the accounts checked")
    stored_totals = {token: [row["jobs_posted"], int(row["escrowed"])] for token, row in totals.items()}
    if stored_totals != dict(expected_totals):
        problems.append(f"token totals: store {stored_totals} != chain {dict(expected_totals)}")
    assert not problems, "projections disagree with the chain:\n" + "\n".join(problems)
