"""The sync loop: fetch logs by block range, apply handlers, commit events + projections + checkpoint at once.

Each step writes in ONE database transaction, so the store is always at a block boundary: a
`kill -9` at any instant loses at most the step in flight, which the restart redoes identically.
For blocks that can still be reorganized (within `finality_depth` of the head) the indexer keeps
their headers and an undo journal; when a parent hash stops matching, it walks back to the last
block both chains share, undoes everything after it, and indexes the new branch. A reorg deeper
than the finality depth stops the indexer with ReorgTooDeep instead of guessing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from .. import metrics
from ..chain.rpc import RpcClient, RpcError, RpcUnavailable
from ..protocol.errors import MarketError
from ..protocol.events import Event, LogDecoder, checksum_address
from ..store.projector import Projector, prune_journal, undo_after
from ..store.schema import Block, ChainState, RawEvent, Reorg, Transaction
from .handlers import HANDLERS, EventContext, prefetch
from .status import Checkpoint, IndexerStatus

log = logging.getLogger("cmarket.indexer")

# Room for every log index of a block in an event's stream position.
POSITION_STRIDE = 1_000_000


class IndexerError(MarketError):
    """The indexer cannot go on safely."""


class ReorgTooDeep(IndexerError):
    """The chain changed below the finality depth: the store cannot be repaired by undoing blocks."""


class ChainMoved(Exception):
    """The node's answers within one step disagreed (a reorg happened mid-step): retry the step."""


@dataclass(frozen=True)
class StepResult:
    from_block: int
    to_block: int
    events: int
    head: int
    checkpoint: Checkpoint  # the index's position after this step: last block and its hash
    reorged_to: int | None = None

    @property
    def caught_up(self) -> bool:
        return self.to_block >= self.head


def event_position(block: int, log_index: int) -> int:
    return block * POSITION_STRIDE + log_index


def _is_range_error(exc: RpcError) -> bool:
    message = exc.message.lower()
    return any(hint in message for hint in ("range", "too many", "limit", "exceed", "too large", "timeout"))


class Indexer:
    def __init__(
        self,
        engine: Engine,
        rpc: RpcClient,
        market: str,
        *,
        start_block: int = 0,
        finality_depth: int = 64,
        initial_range: int = 2_000,
        max_range: int = 50_000,
        max_step_events: int = 20_000,
    ) -> None:
        if finality_depth < 1:
            raise ValueError("finality depth must be at least 1")
        self.engine = engine
        self.rpc = rpc
        self.market = to_checksum_address(market)
        self.start_block = start_block
        self.finality_depth = finality_depth
        self.range = initial_range
        self.max_range = max_range
        self.max_step_events = max_step_events
        self.decoder = LogDecoder()
        self.halted: IndexerError | None = None
        self.status = IndexerStatus()

    # ── set-up ──

    def initialize(self) -> None:
        """Creates the checkpoint for this chain and market, or checks the existing one matches."""
        chain_id = self.rpc.chain_id()
        with Session(self.engine) as session, session.begin():
            state = session.scalars(select(ChainState)).first()
            if state is None:
                session.add(
                    ChainState(
                        id=1, chain_id=chain_id, market=self.market, start_block=self.start_block,
                        last_block=self.start_block - 1, last_block_hash=None, head_block=0,
                    )
                )  # fmt: skip
                return
            # Compared inside the session: once it closes, the (expired) row can no longer be read.
            if state.chain_id != chain_id or state.market != self.market:
                raise IndexerError(
                    f"this database indexes market {state.market} on chain {state.chain_id}, "
                    f"not {self.market} on chain {chain_id}: use another --db"
                )

    def checkpoint(self) -> ChainState:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalars(select(ChainState)).one()

    # ── one step ──

    def step(self) -> StepResult:
        """Indexes the next block range (or undoes a reorg); returns what it did."""
        state = self.checkpoint()
        head = self.rpc.block_number()
        metrics.HEAD_BLOCK.set(head)
        last = state.last_block
        final_boundary = head - self.finality_depth  # blocks at or below it can no longer change

        # Checked even once `last` is below the boundary (the indexer was stopped while the chain
        # moved on): a branch replaced since then may still be within the stored headers and journal.
        if state.last_block_hash is not None:
            (header,) = self.rpc.headers([last])
            if header is None or header["hash"] != state.last_block_hash:
                return self._undo_reorg(state, head)
        if last >= head:
            self._record_head(head, last)
            return StepResult(last + 1, last, 0, head, (last, state.last_block_hash))

        first = last + 1
        to = min(head, last + self.range)
        raw_logs = self._fetch_logs(first, to)
        to = min(to, first + self.range - 1)  # the range may have shrunk while fetching
        raw_logs = [entry for entry in raw_logs if int(entry["blockNumber"], 16) <= to]
        if len(raw_logs) > self.max_step_events:
            # Keep one transaction's size bounded: stop at a block boundary past the budget.
            cut = int(raw_logs[self.max_step_events]["blockNumber"], 16)
            to = max(first, cut - 1) if cut > first else cut
            raw_logs = [entry for entry in raw_logs if int(entry["blockNumber"], 16) <= to]
            self.range = max(1, to - first + 1)
        decoded = [
            d for d in (self.decoder.decode(entry) for entry in raw_logs) if d is not None and not d.removed
        ]

        # Headers from the boundary block up: it is the common ancestor of a reorg of exactly
        # `finality_depth` blocks. Changes are journaled only above it (see _apply).
        recent = range(max(first, final_boundary), to + 1)
        wanted = sorted({*recent, *(d.block_number for d in decoded), to})
        headers = dict(zip(wanted, self._headers(wanted), strict=True))
        self._check_consistency(state, first, recent, headers, decoded)
        transactions = self._transactions(decoded)

        started = time.monotonic()
        self.status.changing()
        with self.engine.begin() as connection:
            self._apply(connection, decoded, headers, final_boundary, transactions, state.next_seq)
            for number in recent:
                header = headers[number]
                connection.execute(
                    insert(Block).values(
                        number=number, hash=header["hash"], parent_hash=header["parentHash"],
                        timestamp=int(header["timestamp"], 16),
                    )
                )  # fmt: skip
            connection.execute(delete(Block).where(Block.number <= final_boundary - 1))
            prune_journal(connection, final_boundary)
            top = headers[to]
            connection.execute(
                update(ChainState).values(
                    last_block=to,
                    last_block_hash=top["hash"],
                    last_block_timestamp=int(top["timestamp"], 16),
                    head_block=head,
                    next_seq=state.next_seq + len(decoded),
                )
            )
        self.status.changed((to, top["hash"]))
        elapsed = time.monotonic() - started
        metrics.EVENTS_INDEXED.inc(len(decoded))
        metrics.BLOCKS_INDEXED.inc(to - first + 1)
        metrics.EVENTS_PER_SECOND.set(len(decoded) / elapsed if elapsed > 0 else 0)
        self._record_head(head, to)
        if len(decoded) < self.max_step_events // 4:
            self.range = min(self.range * 2, self.max_range)
        return StepResult(first, to, len(decoded), head, (to, top["hash"]))

    def _record_head(self, head: int, indexed: int) -> None:
        metrics.INDEXED_BLOCK.set(indexed)
        metrics.LAG_BLOCKS.set(max(0, head - indexed))

    def _fetch_logs(self, first: int, to: int) -> list[dict[str, Any]]:
        """eth_getLogs over [first, to], halving the range while the node refuses it."""
        while True:
            end = min(to, first + self.range - 1)
            try:
                return self.rpc.logs(self.market, first, end)
            except RpcError as exc:
                if not _is_range_error(exc) or self.range == 1:
                    raise
            except RpcUnavailable:
                if self.range == 1:
                    raise
            self.range = max(1, self.range // 2)
            log.info("node refused %s blocks of logs; trying %s", end - first + 1, self.range)

    def _headers(self, numbers: list[int]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            for number, header in zip(chunk, self.rpc.headers(chunk), strict=True):
                if header is None:
                    raise ChainMoved(f"block {number} disappeared")
                found.append(header)
        return found

    def _transactions(self, decoded: list[Event]) -> list[dict[str, Any]]:
        """A row per transaction of `decoded`, from its receipt (sender and gas used)."""
        blocks: dict[str, str] = {}
        for event in decoded:
            blocks.setdefault(event.tx_hash, event.block_hash)
        hashes = list(blocks)
        rows = []
        for start in range(0, len(hashes), 200):
            chunk = hashes[start : start + 200]
            for tx_hash, receipt in zip(chunk, self.rpc.receipts(chunk), strict=True):
                if receipt is None or receipt["blockHash"] != blocks[tx_hash]:
                    raise ChainMoved(f"the receipt of {tx_hash} is not in the block its logs came from")
                price = receipt.get("effectiveGasPrice") or "0x0"
                rows.append(
                    {
                        "tx_hash": tx_hash,
                        "block_number": int(receipt["blockNumber"], 16),
                        "sender": checksum_address(receipt["from"]),
                        "gas_used": int(receipt["gasUsed"], 16),
                        "effective_gas_price": str(int(price, 16)),
                    }
                )
        return rows

    def _check_consistency(
        self,
        state: ChainState,
        first: int,
        recent: range,
        headers: dict[int, dict[str, Any]],
        decoded: list[Event],
    ) -> None:
        for event in decoded:
            if headers[event.block_number]["hash"] != event.block_hash:
                raise ChainMoved(f"block {event.block_number} changed between eth_getLogs and its header")
        previous = state.last_block_hash if first in recent else None
        for number in recent:
            header = headers[number]
            if previous is not None and header["parentHash"] != previous:
                raise ChainMoved(f"block {number} does not extend block {number - 1}")
            previous = header["hash"]

    def _apply(
        self,
        connection: Connection,
        decoded: list[Event],
        headers: dict[int, dict[str, Any]],
        final_boundary: int,
        transactions: list[dict[str, Any]],
        next_seq: int,
    ) -> None:
        if not decoded:
            return
        rows = []
        for seq, event in enumerate(decoded, start=next_seq):
            rows.append(
                {
                    "position": event_position(event.block_number, event.log_index),
                    "seq": seq,
                    "block_number": event.block_number,
                    "block_hash": event.block_hash,
                    "block_timestamp": int(headers[event.block_number]["timestamp"], 16),
                    "tx_hash": event.tx_hash,
                    "log_index": event.log_index,
                    "name": event.name,
                    "job_id": event.args.get("jobId"),
                    "args": event.args,
                }
            )
        connection.execute(insert(RawEvent), rows)
        connection.execute(insert(Transaction), transactions)
        projector = Projector(connection)
        prefetch(projector, [(event.name, event.args) for event in decoded])

        def hash_of(number: int) -> str:
            """A block hash a handler needs (a draw's seed): from the headers at hand, else the node's."""
            if number not in headers:
                (headers[number],) = self._headers([number])
            return str(headers[number]["hash"])

        for event in decoded:
            handler = HANDLERS.get(event.name)
            if handler is None:
                continue
            context = EventContext(
                block=event.block_number,
                block_hash=event.block_hash,
                timestamp=int(headers[event.block_number]["timestamp"], 16),
                tx_hash=event.tx_hash,
                journal_block=event.block_number if event.block_number > final_boundary else None,
                hash_of=hash_of,
            )
            handler(projector, event.args, context)
        projector.flush()

    # ── reorgs ──

    def _undo_reorg(self, state: ChainState, head: int) -> StepResult:
        with self.engine.connect() as connection:
            stored = {
                number: block_hash
                for number, block_hash in connection.execute(
                    select(Block.number, Block.hash).where(Block.number <= min(state.last_block, head))
                )
            }
        candidates = sorted(stored, reverse=True)
        canonical = dict(zip(candidates, self.rpc.headers(candidates), strict=True)) if candidates else {}
        ancestor = next(
            (n for n in candidates if canonical[n] is not None and canonical[n]["hash"] == stored[n]),  # type: ignore[index]
            None,
        )
        if ancestor is None:
            lowest = min(stored) if stored else state.last_block
            error = ReorgTooDeep(
                f"the chain was reorganized below block {lowest}, deeper than the finality depth of "
                f"{self.finality_depth} blocks; the index (up to block {state.last_block}) cannot be "
                "repaired by undoing blocks: re-index into a fresh database, with a larger --finality-depth"
            )
            self.halted = error
            raise error
        self.status.changing()
        with self.engine.begin() as connection:
            undone = undo_after(connection, ancestor)
            removed = connection.execute(delete(RawEvent).where(RawEvent.block_number > ancestor)).rowcount
            connection.execute(delete(Transaction).where(Transaction.block_number > ancestor))
            connection.execute(delete(Block).where(Block.number > ancestor))
            timestamp = connection.execute(
                select(Block.timestamp).where(Block.number == ancestor)
            ).scalar_one()
            # The stream announces the reorg, so a client resuming after it knows what became void.
            connection.execute(
                insert(Reorg).values(
                    seq=state.next_seq, ancestor_block=ancestor, ancestor_hash=stored[ancestor],
                    replaced_to_block=state.last_block, events_removed=removed,
                )
            )  # fmt: skip
            connection.execute(
                update(ChainState).values(
                    last_block=ancestor, last_block_hash=stored[ancestor], last_block_timestamp=timestamp,
                    head_block=head, next_seq=state.next_seq + 1,
                )
            )  # fmt: skip
        self.status.changed((ancestor, stored[ancestor]))
        metrics.REORGS.inc()
        log.warning(
            "reorg: blocks %s..%s replaced; undid %s row changes, re-indexing from %s",
            ancestor + 1, state.last_block, undone, ancestor + 1,
        )  # fmt: skip
        return StepResult(ancestor + 1, ancestor, 0, head, (ancestor, stored[ancestor]), reorged_to=ancestor)

    # ── the loop ──

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 0.5,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> None:
        """Steps until `stop` is set; retries RPC failures with backoff and never skips a block."""
        backoff = 0.1
        while not stop.is_set():
            try:
                result = self.step()
            except (RpcUnavailable, RpcError, ChainMoved) as exc:
                metrics.RPC_RETRIES.inc()
                self.status.retrying(exc)
                log.warning("indexer step failed (%s); retrying in %.1fs", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except IndexerError as exc:
                self.status.halted(exc)
                raise
            self.status.stepped(result.checkpoint)
            backoff = 0.1
            if on_step is not None:
                on_step(result)
            if result.caught_up and result.reorged_to is None:
                stop.wait(poll_interval)
