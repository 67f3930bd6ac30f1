"""Read queries of the API over the indexer's tables: each answer in a fixed, small number of queries.

The stored job status is the last event's; the API reports the EFFECTIVE status the contract
computes: a Running job whose commit deadline is earlier than the newest indexed block's time is
Revealing (the contract moves it there lazily, without an event).

Queries run on a plain Connection (these are Core reads: an ORM Session would only add
overhead), and the statements of the frequent reads are built once at import, since building
a select costs more than running it on SQLite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
)

from ..indexer.status import Checkpoint
from ..protocol.status import JobStatus
from ..protocol.status import effective_status as protocol_effective_status
from ..store.schema import (
    Assignment,
    Balance,
    ChainState,
    Job,
    Provider,
    RawEvent,
    Reorg,
    TokenTotals,
    Transaction,
)
from . import schemas
from .errors import NotFound

JOBS = cast(Table, Job.__table__)
ASSIGNMENTS = cast(Table, Assignment.__table__)
EVENTS = cast(Table, RawEvent.__table__)
PROVIDERS = cast(Table, Provider.__table__)
BALANCES = cast(Table, Balance.__table__)
TOTALS = cast(Table, TokenTotals.__table__)
CHAIN = cast(Table, ChainState.__table__)
TRANSACTIONS = cast(Table, Transaction.__table__)
REORGS = cast(Table, Reorg.__table__)

_JOB_COLUMNS = list(JOBS.c)
_ASSIGNMENT_COLUMNS = [ASSIGNMENTS.c[name] for name in schemas.Assignment.model_fields]
# Event arguments are read as JSON text, which the schemas parse (see TimelineEvent.args).
_ARGS_TEXT = EVENTS.c.args.cast(Text).label("args")


def _event_columns(model: type[schemas.TimelineEvent]) -> list[Any]:
    special = {"args": _ARGS_TEXT, "gas_used": TRANSACTIONS.c.gas_used}
    return [special.get(name, EVENTS.c.get(name)) for name in model.model_fields]


_TIMELINE_COLUMNS = _event_columns(schemas.TimelineEvent)
_STREAM_COLUMNS = _event_columns(schemas.StreamEvent)
# Events indexed before transactions were recorded have none: an outer join, gas_used null.
_EVENTS_WITH_GAS = EVENTS.outerjoin(TRANSACTIONS, TRANSACTIONS.c.tx_hash == EVENTS.c.tx_hash)
_PROVIDER_COLUMNS = list(PROVIDERS.c)

_CHAIN_STATE = select(CHAIN).order_by(CHAIN.c.id).limit(1)
_CHECKPOINT = select(CHAIN.c.last_block, CHAIN.c.last_block_hash).order_by(CHAIN.c.id).limit(1)
_CHAIN_TIME = select(CHAIN.c.last_block_timestamp).order_by(CHAIN.c.id).limit(1).scalar_subquery()
_NOW = select(_CHAIN_TIME)

_JOB_BY_ID = select(*_JOB_COLUMNS, _CHAIN_TIME.label("now")).where(JOBS.c.id == bindparam("job_id"))
_ASSIGNMENTS_OF_JOB = (
    select(*_ASSIGNMENT_COLUMNS)
    .where(ASSIGNMENTS.c.job_id == bindparam("job_id"))
    .order_by(ASSIGNMENTS.c.slot)
)
_TIMELINE_OF_JOB = (
    select(*_TIMELINE_COLUMNS)
    .select_from(_EVENTS_WITH_GAS)
    .where(EVENTS.c.job_id == bindparam("job_id"))
    .order_by(EVENTS.c.position)
)
_ASSIGNMENTS_OF_JOBS = (
    select(ASSIGNMENTS.c.job_id, *_ASSIGNMENT_COLUMNS)
    .where(ASSIGNMENTS.c.job_id.in_(bindparam("job_ids", expanding=True)))
    .order_by(ASSIGNMENTS.c.job_id, ASSIGNMENTS.c.slot)
)
_PROVIDER_PAGE = select(*_PROVIDER_COLUMNS).order_by(PROVIDERS.c.address).limit(bindparam("limit"))
_PROVIDER_PAGE_AFTER = _PROVIDER_PAGE.where(PROVIDERS.c.address > bindparam("after"))
_CREDITS_OF = (
    select(BALANCES.c.account, BALANCES.c.token, BALANCES.c.credited)
    .where(BALANCES.c.account.in_(bindparam("accounts", expanding=True)))
    .order_by(BALANCES.c.account, BALANCES.c.token)
)
_PROVIDER_BY_ADDRESS = select(*_PROVIDER_COLUMNS).where(PROVIDERS.c.address == bindparam("address"))
# Slashed events are found through the jobs the provider claimed (indexed), not by scanning all events.
_SLASH_EVENTS_OF_PROVIDER = (
    select(*_STREAM_COLUMNS)
    .select_from(_EVENTS_WITH_GAS)
    .where(
        EVENTS.c.job_id.in_(
            select(ASSIGNMENTS.c.job_id).where(ASSIGNMENTS.c.provider == bindparam("address"))
        ),
        EVENTS.c.name == "Slashed",
    )
    .order_by(EVENTS.c.position)
)
_LATEST_SEQ = select(CHAIN.c.next_seq - 1).order_by(CHAIN.c.id).limit(1)
_EVENTS_AFTER = (
    select(*_STREAM_COLUMNS)
    .select_from(_EVENTS_WITH_GAS)
    .where(EVENTS.c.seq > bindparam("seq"))
    .order_by(EVENTS.c.seq)
    .limit(bindparam("limit"))
)
_REORGS_AFTER = (
    select(REORGS).where(REORGS.c.seq > bindparam("seq")).order_by(REORGS.c.seq).limit(bindparam("limit"))
)
_COMPLETED = JOBS.c.status == "completed"
_DURATION = JOBS.c.finished_at - JOBS.c.posted_at
_COMPLETED_COUNT = select(func.count()).select_from(JOBS).where(_COMPLETED)
_VOLUME = select(TOTALS.c.token, TOTALS.c.escrowed).order_by(TOTALS.c.token)
_STAKES = select(PROVIDERS.c.staked, PROVIDERS.c.locked)


# ── effective status ──


def effective_status(status: str, commit_deadline: int | None, now: int | None) -> JobStatus:
    """The effective status of a stored job row (see protocol.status.effective_status)."""
    return protocol_effective_status(JobStatus(status), commit_deadline, now)


def _effective_status_sql(now: int | None) -> ColumnElement[str]:
    if now is None:
        return JOBS.c.status
    past_deadline = and_(JOBS.c.status == "running", JOBS.c.commit_deadline < now)
    return case((past_deadline, literal("revealing")), else_=JOBS.c.status)


def _status_filter(state: JobStatus, now: int | None) -> ColumnElement[bool]:
    if now is None or state not in (JobStatus.RUNNING, JobStatus.REVEALING):
        return JOBS.c.status == state.value
    past_deadline = and_(JOBS.c.status == "running", JOBS.c.commit_deadline < now)
    if state is JobStatus.REVEALING:
        return or_(JOBS.c.status == "revealing", past_deadline)
    return and_(
        JOBS.c.status == "running", or_(JOBS.c.commit_deadline.is_(None), JOBS.c.commit_deadline >= now)
    )


class PointRead:
    """A select compiled once per database dialect and run on the driver's own cursor.

    For the point reads behind `GET /v1/jobs/{id}`, SQLAlchemy's per-execution machinery costs
    about 60 µs a statement, several times what SQLite spends answering it. These statements take
    plain scalar parameters and their columns need no result processing (the JSON column is read
    as text), so the driver's rows are exactly what SQLAlchemy would hand back.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def rows(self, connection: Connection, **params: Any) -> list[dict[str, Any]]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self.statement.compile(dialect=dialect)
            positions = tuple(statement.positiontup) if statement.positiontup is not None else None
            # LIMIT 1 and the like are bound parameters too, with their values fixed at compile time.
            defaults = {name: bind.value for name, bind in statement.binds.items() if not bind.required}
            compiled = self._compiled[dialect.name] = (statement.string, positions, defaults)
        sql, positions, defaults = compiled
        values = {**defaults, **params}
        cursor = connection.connection.cursor()
        try:
            cursor.execute(
                sql, tuple(values[name] for name in positions) if positions is not None else values
            )
            keys = [column[0] for column in cursor.description]
            return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()


_CHECKPOINT_READ = PointRead(_CHECKPOINT)
_JOB_READ = PointRead(_JOB_BY_ID)
_ASSIGNMENTS_READ = PointRead(_ASSIGNMENTS_OF_JOB)
_TIMELINE_READ = PointRead(_TIMELINE_OF_JOB)


def checkpoint(connection: Connection) -> Checkpoint | None:
    """The indexer's position (last block and its hash), None before it started. The indexer
    writes it in the same transaction as everything else, so it changes whenever the data does."""
    rows = _CHECKPOINT_READ.rows(connection)
    return None if not rows else (rows[0]["last_block"], rows[0]["last_block_hash"])


def _dicts(result: CursorResult[Any]) -> list[dict[str, Any]]:
    """Rows as plain dicts, which pydantic validates much faster than Row mappings."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def chain_time(connection: Connection) -> int | None:
    """The timestamp of the newest indexed block: the API's "now"."""
    return connection.execute(_NOW).scalar()


# ── jobs ──


def _assignments_by_job(connection: Connection, job_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not job_ids:
        return found
    for row in _dicts(connection.execute(_ASSIGNMENTS_OF_JOBS, {"job_ids": list(job_ids)})):
        found[row["job_id"]].append(row)
    return found


def _with_effective_status(fields: dict[str, Any], now: int | None) -> dict[str, Any]:
    fields["status"] = effective_status(fields["status"], fields["commit_deadline"], now)
    return fields


def job_detail(connection: Connection, job_id: int) -> schemas.JobDetail:
    """One job with its assignments and timeline: three indexed lookups, validated in one pass."""
    found = _JOB_READ.rows(connection, job_id=job_id)
    if not found:
        raise NotFound(f"no job {job_id}")
    fields = found[0]
    _with_effective_status(fields, fields.pop("now"))
    fields["assignments"] = _ASSIGNMENTS_READ.rows(connection, job_id=job_id)
    fields["timeline"] = _TIMELINE_READ.rows(connection, job_id=job_id)
    return schemas.JobDetail.model_validate(fields)


def job_page(
    connection: Connection,
    *,
    limit: int,
    before_id: int | None = None,
    status: JobStatus | None = None,
    requester: str | None = None,
    provider: str | None = None,
    token: str | None = None,
) -> tuple[list[schemas.Job], bool]:
    """Jobs newest first (id descending) below `before_id`, matching every given filter, with
    their assignments; and whether more follow."""
    now = chain_time(connection)
    query = select(*_JOB_COLUMNS).order_by(JOBS.c.id.desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(JOBS.c.id < before_id)
    if status is not None:
        query = query.where(_status_filter(status, now))
    if requester is not None:
        query = query.where(JOBS.c.requester == requester)
    if token is not None:
        query = query.where(JOBS.c.token == token)
    if provider is not None:
        claimed = select(ASSIGNMENTS.c.job_id).where(ASSIGNMENTS.c.provider == provider)
        query = query.where(JOBS.c.id.in_(claimed))
    rows = _dicts(connection.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    assignments = _assignments_by_job(connection, [row["id"] for row in rows])
    jobs = [
        schemas.Job.model_validate(
            _with_effective_status({**row, "assignments": assignments[row["id"]]}, now)
        )
        for row in rows
    ]
    return jobs, more


# ── providers ──


def _earned(connection: Connection, addresses: Sequence[str]) -> dict[str, dict[str, str]]:
    earned: dict[str, dict[str, str]] = defaultdict(dict)
    if not addresses:
        return earned
    rows = connection.execute(_CREDITS_OF, {"accounts": list(addresses)})
    for account, token, credited in rows:
        if credited != "0":
            earned[account][token] = credited
    return earned


def provider_page(
    connection: Connection, *, limit: int, after: str | None = None
) -> tuple[list[schemas.Provider], bool]:
    """Providers by address after `after`, and whether more follow."""
    if after is None:
        rows = connection.execute(_PROVIDER_PAGE, {"limit": limit + 1}).all()
    else:
        rows = connection.execute(_PROVIDER_PAGE_AFTER, {"limit": limit + 1, "after": after}).all()
    more = len(rows) > limit
    rows = rows[:limit]
    earned = _earned(connection, [row.address for row in rows])
    providers = [schemas.Provider(**row._mapping, earned=earned[row.address]) for row in rows]
    return providers, more


def provider_detail(connection: Connection, address: str) -> schemas.ProviderDetail:
    """One provider, its earnings and the Slashed events against it."""
    params = {"address": address}
    row = connection.execute(_PROVIDER_BY_ADDRESS, params).first()
    if row is None:
        raise NotFound(f"no provider {address}")
    events = [
        schemas.StreamEvent.model_validate(event)
        for event in _dicts(connection.execute(_SLASH_EVENTS_OF_PROVIDER, params))
    ]
    slashes = [
        schemas.Slash(
            job_id=event.job_id,
            amount=event.args["amount"],
            block_number=event.block_number,
            block_timestamp=event.block_timestamp,
            tx_hash=event.tx_hash,
        )
        for event in events
        if event.args.get("provider") == address
    ]
    earned = _earned(connection, [address])[address]
    return schemas.ProviderDetail(**row._mapping, earned=earned, slashes=slashes)


# ── stats and health ──


def _decimal_sum(values: Iterable[str]) -> str:
    return str(sum(int(value) for value in values))


def _median_completion(connection: Connection) -> float | None:
    """Median of finished_at - posted_at over completed jobs, reading at most two rows."""
    count = connection.execute(_COMPLETED_COUNT).scalar_one()
    if count == 0:
        return None
    middle = connection.execute(
        select(_DURATION).where(_COMPLETED).order_by(_DURATION).offset((count - 1) // 2).limit(2 - count % 2)
    ).scalars()
    values: list[int] = list(middle)
    return sum(values) / len(values)


def stats(connection: Connection) -> schemas.Stats:
    """Market-wide figures; amounts are summed in Python since they overflow SQL integers."""
    now = chain_time(connection)
    status = _effective_status_sql(now).label("effective")
    by_status = dict.fromkeys(JobStatus, 0)
    for name, count in connection.execute(select(status, func.count()).group_by(status)):
        by_status[JobStatus(name)] = count
    volume = {token: escrowed for token, escrowed in connection.execute(_VOLUME)}
    stakes = connection.execute(_STAKES).all()
    return schemas.Stats(
        jobs_by_status=by_status,
        jobs_total=sum(by_status.values()),
        volume=volume,
        median_completion_seconds=_median_completion(connection),
        providers=len(stakes),
        total_staked=_decimal_sum(amount for row in stakes for amount in row),
    )


def health(connection: Connection, healthy_lag_blocks: int) -> schemas.Health:
    """The indexer's checkpoint: "ok" within `healthy_lag_blocks` of the head it last saw."""
    state = connection.execute(_CHAIN_STATE).first()
    if state is None:
        return schemas.Health(
            status="not-initialized", chain_id=None, market=None, indexed_block=None, head_block=None,
            lag_blocks=None, last_block_timestamp=None,
        )  # fmt: skip
    indexed = state.last_block if state.last_block_hash is not None else None
    lag = max(0, state.head_block - state.last_block) if indexed is not None else None
    ok = lag is not None and lag <= healthy_lag_blocks
    return schemas.Health(
        status="ok" if ok else "indexing",
        chain_id=state.chain_id,
        market=state.market,
        indexed_block=indexed,
        head_block=state.head_block or None,
        lag_blocks=lag,
        last_block_timestamp=state.last_block_timestamp,
    )


# ── the event stream ──


def latest_seq(connection: Connection) -> int:
    """The stream sequence number of the newest event or reorg notice (0 when there is none)."""
    return connection.execute(_LATEST_SEQ).scalar() or 0


def stream_after(
    connection: Connection, seq: int, limit: int
) -> list[schemas.StreamEvent | schemas.ReorgNotice]:
    """Up to `limit` events and reorg notices numbered above `seq`, in stream order."""
    params = {"seq": seq, "limit": limit}
    events = [
        schemas.StreamEvent.model_validate(row) for row in _dicts(connection.execute(_EVENTS_AFTER, params))
    ]
    reorgs = [schemas.ReorgNotice(**row) for row in _dicts(connection.execute(_REORGS_AFTER, params))]
    if not reorgs:
        return list(events)
    merged: list[schemas.StreamEvent | schemas.ReorgNotice] = [*events, *reorgs]
    merged.sort(key=lambda message: message.seq)
    return merged[:limit]
