"""The daemon's one way to the chain: typed calls of the market, sent from one account and
pipelined, with the chain's clock and its reorgs in view.

- Pipelined: `send` signs and broadcasts without waiting; `poll` collects, in one batch request,
  the receipts of everything in flight. Several transactions go into one block (claims, submits,
  commits and a withdrawal do not queue behind each other's receipts).
- One nonce manager (the sender's): a transaction the node forgot is broadcast again from its
  signed bytes; a gap below the node's pending count (a reorg dropped mined transactions, a node
  restart) is filled again, so later transactions never wait behind it; the nonce is read again
  from the node whenever nothing is in flight and the cache disagrees.
- Gas for the worst order: a batch is given enough gas for every item to act, whatever other
  transactions are mined before it (an item another provider already took costs less, not more).
- Reorgs: a mined transaction is kept until its block is final (`finality_depth` blocks deep);
  if its receipt goes away or moves to another block, it is sent again and reported, so the
  daemon follows the chain again for its jobs.
- A clock: the latest block and the observed interval between blocks (`ChainTime`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from marketplace.chain.market import Market, MarketCalls, TxResult
from marketplace.chain.reads import MarketReader
from marketplace.chain.rpc import RpcClient
from marketplace.chain.sender import Call, PendingTx, TxSender, format_receipt
from marketplace.protocol.errors import ChainError, TransactionDropped, TransactionTimeout

from .planner import ChainTime

log = logging.getLogger("cmarket.provider.gateway")

# Gas of one item of each batch function when it acts (no skip), with room to spare, measured on
# the contract (tests/integration/test_gateway.py checks these bound the worst case), and the
# transaction's own overhead.
ITEM_GAS = {  # function -> (gas per job, gas per seat of the job)
    "claimJobs": (110_000, 0),
    "submitResults": (110_000, 0),
    "commitResults": (90_000, 0),
    "revealResults": (70_000, 0),
    "finalizeJobs": (40_000, 30_000),
}
BATCH_BASE_GAS = 60_000
BLOCK_GAS_SHARE = 0.9  # a transaction never asks for more of the block gas limit than this
PRESENCE_CHECK_SECONDS = 2.0  # a transaction not mined after this is looked for in the node's pool
CLOCK_SAMPLES = 16
REORG_CHECK_SECONDS = 0.5  # how often mined transactions are checked against the chain's blocks
NONCE_CHECK_SECONDS = 2.0  # how often an idle gateway compares its nonce cache with the node


@dataclass
class Sent:
    """A transaction in flight (or mined, until final) and what it was for."""

    action: str
    job_ids: tuple[int, ...]
    pending: PendingTx
    sent_at: float
    block: int | None = None  # where it was mined
    block_hash: str | None = None


@dataclass(frozen=True)
class Mined:
    """A transaction that left the pool: mined (`result`), or failed (`error`: reverted, or its
    nonce taken by another transaction)."""

    sent: Sent
    result: TxResult | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class Head:
    number: int
    hash: str
    timestamp: int


@dataclass
class ChainClock:
    """The latest block and the smallest interval seen between blocks (with interval mining, the
    block time; with automining, about a second)."""

    samples: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=CLOCK_SAMPLES))

    def observe(self, number: int, timestamp: int) -> None:
        if not self.samples or number > self.samples[-1][0]:
            self.samples.append((number, timestamp))
        elif number < self.samples[-1][0]:  # a reorg to a shorter chain: start over
            self.samples.clear()
            self.samples.append((number, timestamp))

    @property
    def interval(self) -> float:
        gaps = [(t2 - t1) / (n2 - n1) for (n1, t1), (n2, t2) in pairwise(self.samples) if n2 > n1]
        return max(1.0, min(gaps)) if gaps else 1.0


class ChainGateway:
    def __init__(
        self,
        w3: Web3,
        rpc: RpcClient,
        market: Market,
        account: LocalAccount,
        *,
        finality_depth: int = 8,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.w3 = w3
        self.rpc = rpc
        self.market = market
        self.sender = TxSender(w3, account, receipt_timeout=receipt_timeout)
        self.address = self.sender.address
        self.calls: MarketCalls = market.calls
        self.reader = MarketReader(rpc, market)
        self.finality_depth = finality_depth
        self.receipt_timeout = receipt_timeout
        self.clock = ChainClock()
        self._in_flight: list[Sent] = []
        self._recent: list[Sent] = []  # mined, not yet final
        self._head: Head | None = None
        self._gas_limit: int | None = None
        self._next_nonce_check = 0.0
        self._checked_head: str | None = None  # the head `reorged` last looked from
        self._next_reorg_check = 0.0

    # ── the chain's clock ──

    def head(self) -> Head:
        """The latest block (read once per call)."""
        block = self.rpc.call("eth_getBlockByNumber", "latest", False)
        head = Head(int(block["number"], 16), block["hash"], int(block["timestamp"], 16))
        self.clock.observe(head.number, head.timestamp)
        self._head = head
        self._gas_limit = int(block["gasLimit"], 16)
        return head

    @property
    def head_number(self) -> int:
        """The latest block number read (by `head` or `time`)."""
        return (self._head or self.head()).number

    def time(self) -> ChainTime:
        """The chain's time now: the latest block and the interval between blocks. A devnet that
        mines on demand leaves its latest block's time behind the clock while idle; the next block
        it mines takes the clock's time, so that is the earliest the next block can carry."""
        head = self.head()
        latest = max(head.timestamp, int(time.time()) - 1) if self.clock.interval <= 1.0 else head.timestamp
        return ChainTime(latest=latest, interval=self.clock.interval)

    def canonical(self, blocks: dict[int, str]) -> set[int]:
        """Which of these blocks (number -> hash) are still on the chain."""
        numbers = sorted(blocks)
        headers = self.rpc.headers(numbers)
        return {
            number
            for number, header in zip(numbers, headers, strict=True)
            if header is not None and header["hash"] == blocks[number]
        }

    # ── sending ──

    def send(self, action: str, call: Call, job_ids: Sequence[int] = (), *, seats: int = 0) -> Sent:
        """Signs and broadcasts `call`; does not wait. A batch gets gas for its worst order (`seats`:
        the seats of its jobs, for those whose cost grows with them). A revert at estimation
        raises the contract's named error and sends nothing."""
        gas = max(self.sender.estimate_gas(self._params(call)), worst_gas(call.label, len(job_ids), seats))
        pending = self.sender.submit(call, gas=min(gas, self._gas_cap()))
        sent = Sent(action, tuple(job_ids), pending, time.monotonic())
        self._in_flight.append(sent)
        return sent

    def _gas_cap(self) -> int:
        if self._gas_limit is None:
            self.head()
        assert self._gas_limit is not None
        return int(self._gas_limit * BLOCK_GAS_SHARE)

    def _params(self, call: Call) -> dict[str, Any]:
        params: dict[str, Any] = {"from": self.address, "data": call.data, "value": call.value}
        if call.to is not None:
            params["to"] = call.to
        return params

    def receipt_poll_seconds(self) -> float:
        """How long to wait before looking for receipts again: soon where blocks come on demand,
        a tenth of the block time where they come at intervals."""
        return 0.02 if self.clock.interval <= 1.0 else self.clock.interval / 10

    def in_flight(self, action: str | None = None) -> list[Sent]:
        return [sent for sent in self._in_flight if action is None or sent.action == action]

    def busy_jobs(self) -> set[int]:
        """Jobs with a transaction in flight."""
        return {job_id for sent in self._in_flight for job_id in sent.job_ids}

    # ── collecting ──

    def poll(self) -> list[Mined]:
        """What left the pool since the last poll (one batch request for all receipts)."""
        if not self._in_flight:
            self._resync_if_idle()
            return []
        sent_list = list(self._in_flight)
        receipts = self.rpc.receipts([s.pending.tx_hash.to_0x_hex() for s in sent_list])
        done: list[Mined] = []
        waiting: list[Sent] = []
        now = time.monotonic()
        for sent, raw in zip(sent_list, receipts, strict=True):
            if raw is None:
                waiting.append(sent)
                continue
            receipt = format_receipt(raw)
            sent.block, sent.block_hash = int(receipt["blockNumber"]), receipt["blockHash"].to_0x_hex()
            self._recent.append(sent)
            if receipt["status"] == 1:
                done.append(Mined(sent, result=TxResult(receipt, self.market.decode_logs(receipt["logs"]))))
            else:
                done.append(Mined(sent, error=self.sender.failure(sent.pending, receipt)))
        stale = [s for s in waiting if now - s.sent_at > PRESENCE_CHECK_SECONDS]
        lost = self._look_for(stale) if stale else []
        if stale and not lost:  # still waiting: maybe behind a gap a reorg left below them
            filled = self.sender.fill_gap(min(s.pending.nonce for s in stale))
            if filled:
                log.warning("filled a gap of %d nonces below transactions in flight", filled)
        for sent in waiting:
            if sent in lost:
                done.append(Mined(sent, error=TransactionDropped(f"{sent.action} was dropped")))
            elif now - sent.sent_at > self.receipt_timeout:
                self.sender.resync()
                done.append(
                    Mined(
                        sent,
                        error=TransactionTimeout(
                            f"{sent.action} not mined after {self.receipt_timeout:.0f}s"
                        ),
                    )
                )
            else:
                continue
        finished = {id(m.sent) for m in done}
        self._in_flight = [s for s in self._in_flight if id(s) not in finished]
        return done

    def _look_for(self, stale: list[Sent]) -> list[Sent]:
        """Broadcasts again those of `stale` the node does not know; returns those whose nonce
        another transaction took (they will never be mined)."""
        known = self.rpc.batch(
            "eth_getTransactionByHash", [[s.pending.tx_hash.to_0x_hex()] for s in stale], raise_errors=False
        )
        lost = []
        for sent, found in zip(stale, known, strict=True):
            if found is not None and not isinstance(found, ChainError):
                continue
            try:
                self.sender.rebroadcast(sent.pending)
                log.warning("re-broadcast a transaction the node forgot", extra={"action": sent.action})
            except TransactionDropped:
                lost.append(sent)
            except ChainError as exc:
                log.warning("cannot re-broadcast %s yet: %s", sent.action, exc)
        return lost

    def _resync_if_idle(self) -> None:
        """With nothing in flight, the node's pending count is the next nonce: a cache that
        disagrees (a reorg, another process on the key) is dropped."""
        cached = self.sender.next_nonce
        if cached is not None and time.monotonic() >= self._next_nonce_check:
            self._next_nonce_check = time.monotonic() + NONCE_CHECK_SECONDS
            pending = int(self.rpc.call("eth_getTransactionCount", self.address, "pending"), 16)
            if pending != cached:
                log.warning("nonce cache %s disagrees with the node's %s: read again", cached, pending)
                self.sender.resync()

    def reorged(self) -> list[Sent]:
        """Mined transactions a reorg took out of their block (they are sent again and are in
        flight once more), while they are younger than the finality depth. Looked at on a new head,
        at most every REORG_CHECK_SECONDS: the blocks they were mined in are compared with the
        chain's, and only the transactions of a block that changed are looked up."""
        head = self._head or self.head()
        if not self._recent or head.hash == self._checked_head or time.monotonic() < self._next_reorg_check:
            return []
        self._checked_head = head.hash
        self._next_reorg_check = time.monotonic() + REORG_CHECK_SECONDS
        self._recent = [
            s for s in self._recent if s.block is not None and s.block > head.number - self.finality_depth
        ]
        kept = self.canonical({s.block: s.block_hash for s in self._recent if s.block and s.block_hash})
        suspects = [s for s in self._recent if s.block not in kept]
        if not suspects:
            return []
        receipts = self.rpc.receipts([s.pending.tx_hash.to_0x_hex() for s in suspects])
        moved = []
        for sent, raw in zip(suspects, receipts, strict=True):
            if raw is not None and raw["blockHash"] == sent.block_hash:
                continue  # the head moved while reading: its block is still there
            moved.append(sent)
            self._recent.remove(sent)
            if raw is not None:  # mined again, in another block: its new receipt is what counts
                sent.block, sent.block_hash = int(raw["blockNumber"], 16), raw["blockHash"]
                self._recent.append(sent)
                continue
            try:  # out of every block: back to the pool
                self.sender.rebroadcast(sent.pending)
                sent.sent_at, sent.block, sent.block_hash = time.monotonic(), None, None
                self._in_flight.append(sent)
            except (TransactionDropped, ChainError) as exc:
                log.warning("a reorged %s cannot be sent again: %s", sent.action, exc)
                self.sender.resync()
        return moved

    # ── start-up and shutdown ──

    def settle_previous_run(self, timeout: float = 120.0) -> None:
        """Makes sure nothing a previous run of this account sent can still be mined later: waits
        for the node's pending transactions of the account, and replaces (with a transfer of
        nothing to itself, at a higher fee) those that do not get mined in time."""
        deadline = time.monotonic() + timeout / 2
        while self._counts()[0] > self._counts()[1] and time.monotonic() < deadline:
            time.sleep(0.2)
        pending, mined = self._counts()
        if pending <= mined:
            self.sender.resync()
            return
        log.warning("replacing %d transactions a previous run left unmined", pending - mined)
        for nonce in range(mined, pending):
            self.sender.replace(nonce)
        deadline = time.monotonic() + timeout / 2
        while self._counts()[1] < pending:
            if time.monotonic() > deadline:
                raise TransactionTimeout(
                    f"transactions of {self.address} from a previous run are still pending"
                )
            time.sleep(0.2)
        self.sender.resync()

    def _counts(self) -> tuple[int, int]:
        pending, mined = self.rpc.batch(
            "eth_getTransactionCount", [[self.address, "pending"], [self.address, "latest"]]
        )
        return int(pending, 16), int(mined, 16)

    def allow(self, token: str, amount: int) -> None:
        """Lets the market pull `amount` of the ERC-20 `token` (a stake), approving if short."""
        from marketplace.chain.market import MarketActor

        MarketActor(self.market, self.sender).allow(token, amount)

    def send_now(self, call: Call) -> TxResult:
        """Sends and waits (start-up transactions: register, stake)."""
        receipt = self.sender.transact(call)
        return TxResult(receipt, self.market.decode_logs(receipt["logs"]))


def worst_gas(function: str, jobs: int, seats: int = 0) -> int:
    """Gas a batch of `function` needs if every one of its items acts (none is skipped)."""
    if function not in ITEM_GAS:
        return 0
    per_job, per_seat = ITEM_GAS[function]
    return BATCH_BASE_GAS + per_job * max(1, jobs) + per_seat * seats
