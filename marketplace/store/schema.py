"""SQL tables of the marketplace: raw events, their projections, and the indexer's checkpoint.

Amounts are wei as decimal strings (they overflow every SQL integer type); aggregates over them
are kept in their own rows by the indexer instead of being summed in SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ADDRESS = 42  # 0x + 40 hex digits, checksummed
HASH = 66  # 0x + 64 hex digits
AMOUNT = 80  # decimal digits of a uint256, with room to spare
TICKET = 18  # 0x + 16 hex digits: a 64-bit sortition ticket


class Base(DeclarativeBase):
    pass


class ChainState(Base):
    """The indexer's checkpoint: which chain and contract, and the last block fully indexed."""

    __tablename__ = "chain_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    market: Mapped[str] = mapped_column(String(ADDRESS))
    start_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int] = mapped_column(BigInteger)
    last_block_hash: Mapped[str | None] = mapped_column(String(HASH))
    last_block_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    head_block: Mapped[int] = mapped_column(BigInteger, default=0)
    # The next stream sequence number: events and reorg notices take theirs from it, in the order
    # they are written, so a stream resumed by number sees the replacements of a reorg too.
    next_seq: Mapped[int] = mapped_column(BigInteger, default=1)


class Block(Base):
    """Headers of recent (unfinalized) blocks, for detecting reorgs by their parent hashes."""

    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH))
    parent_hash: Mapped[str] = mapped_column(String(HASH))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class RawEvent(Base):
    """Every ComputeMarket log, decoded. `position` is its place in the chain; `seq` its place in the
    event stream (the order it was indexed in, which differs from chain order only after a reorg)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("block_hash", "log_index", name="uq_events_block_log"),
        Index("ix_events_job", "job_id"),
        Index("ix_events_block", "block_number"),
        Index("ix_events_seq", "seq", unique=True),
    )

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)


class Transaction(Base):
    """A transaction that emitted market events: who sent it and the gas it used (from its receipt)."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_block", "block_number"),)

    tx_hash: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(ADDRESS))
    gas_used: Mapped[int] = mapped_column(BigInteger)
    effective_gas_price: Mapped[str] = mapped_column(String(AMOUNT))


class Reorg(Base):
    """A reorg the indexer undid, as the event stream announces it: events of the blocks above
    `ancestor_block` are void, and their replacements follow with higher sequence numbers."""

    __tablename__ = "reorgs"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ancestor_block: Mapped[int] = mapped_column(BigInteger)
    ancestor_hash: Mapped[str] = mapped_column(String(HASH))
    replaced_to_block: Mapped[int] = mapped_column(BigInteger, doc="the last block of the undone branch")
    events_removed: Mapped[int] = mapped_column(Integer)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status", "status", "id"),
        Index("ix_jobs_requester", "requester", "id"),
        Index("ix_jobs_token", "token", "id"),
        Index("ix_jobs_spec_hash", "spec_hash"),
        Index("ix_jobs_result_hash", "result_hash"),
        Index("ix_jobs_posted_tx", "posted_tx"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    requester: Mapped[str] = mapped_column(String(ADDRESS))
    token: Mapped[str] = mapped_column(String(ADDRESS))
    spec_hash: Mapped[str] = mapped_column(String(HASH))
    reward_per_replica: Mapped[str] = mapped_column(String(AMOUNT))
    collateral_per_replica: Mapped[str] = mapped_column(String(AMOUNT))
    replicas: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    claims: Mapped[int] = mapped_column(Integer, default=0)
    commits: Mapped[int] = mapped_column(Integer, default=0)
    reveals: Mapped[int] = mapped_column(Integer, default=0)
    claim_deadline: Mapped[int] = mapped_column(BigInteger)
    commit_deadline: Mapped[int | None] = mapped_column(BigInteger)
    result_hash: Mapped[str | None] = mapped_column(String(HASH))
    posted_block: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[int] = mapped_column(BigInteger)
    posted_tx: Mapped[str] = mapped_column(String(HASH))
    # The draw's seed: from the posting block's hash, or the 256-block anchor's if the first claim
    # came later (see marketplace.protocol.sortition.seed_block).
    seed: Mapped[int | None] = mapped_column(BigInteger)
    started_block: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    finished_block: Mapped[int | None] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_provider", "provider", "job_id"),
        Index("ix_assignments_result_hash", "result_hash"),
    )

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    provider: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    commitment: Mapped[str | None] = mapped_column(String(HASH))
    result_hash: Mapped[str | None] = mapped_column(String(HASH))
    outcome: Mapped[str | None] = mapped_column(String(16))
    slashed_amount: Mapped[str] = mapped_column(String(AMOUNT), default="0")
    claimed_block: Mapped[int] = mapped_column(BigInteger)
    ticket: Mapped[str | None] = mapped_column(String(TICKET))  # the provider's draw ticket, 0x-hex
    committed_block: Mapped[int | None] = mapped_column(BigInteger)
    revealed_block: Mapped[int | None] = mapped_column(BigInteger)


class Provider(Base):
    __tablename__ = "providers"

    address: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    metadata_uri: Mapped[str] = mapped_column(String(2048), default="")
    registered_block: Mapped[int] = mapped_column(BigInteger)
    staked: Mapped[str] = mapped_column(String(AMOUNT), default="0")
    locked: Mapped[str] = mapped_column(String(AMOUNT), default="0")
    unbonding: Mapped[str] = mapped_column(String(AMOUNT), default="0")
    jobs_claimed: Mapped[int] = mapped_column(Integer, default=0)
    jobs_completed: Mapped[int] = mapped_column(Integer, default=0)
    jobs_slashed: Mapped[int] = mapped_column(Integer, default=0)
    slashed_amount: Mapped[str] = mapped_column(String(AMOUNT), default="0")


class Balance(Base):
    """What an account was credited and withdrew, per token."""

    __tablename__ = "balances"

    account: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    token: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    credited: Mapped[str] = mapped_column(String(AMOUNT), default="0")
    withdrawn: Mapped[str] = mapped_column(String(AMOUNT), default="0")


class TokenTotals(Base):
    """Market-wide totals per payment token, kept current by the indexer."""

    __tablename__ = "token_totals"

    token: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    jobs_posted: Mapped[int] = mapped_column(Integer, default=0)
    escrowed: Mapped[str] = mapped_column(String(AMOUNT), default="0")


class JournalEntry(Base):
    """A projection row as it was before a block changed it, so a reorg can undo that block."""

    __tablename__ = "journal"
    __table_args__ = (Index("ix_journal_block", "block_number"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    table_name: Mapped[str] = mapped_column(String(32))
    key: Mapped[list[Any]] = mapped_column(JSON)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)


PROJECTIONS: dict[str, type[Base]] = {
    model.__tablename__: model for model in (Job, Assignment, Provider, Balance, TokenTotals)
}
