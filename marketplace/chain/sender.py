"""Sends transactions from one locally held key: nonces, gas, fees, receipts and decoded reverts.

Nonces are allocated under a lock held only while signing and broadcasting, so concurrent
senders never share or skip a nonce, and waiting for receipts happens outside the lock. A
transaction the node forgets (dropped from its pool) is re-broadcast from the signed bytes,
which keeps later nonces from stalling behind the gap. The cached next nonce is dropped (read
again from the node) whenever a send fails or a receipt does not come: after a reorg took mined
transactions away, a cached nonce would run ahead of the chain and leave every later
transaction waiting behind a gap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import RPCEndpoint, TxParams, TxReceipt

from ..protocol.errors import ContractRevert, TransactionDropped, TransactionError, TransactionTimeout
from ..protocol.reverts import decode_revert

_RECEIPT_INTEGERS = (
    "status",
    "blockNumber",
    "gasUsed",
    "cumulativeGasUsed",
    "effectiveGasPrice",
    "transactionIndex",
    "type",
)


@dataclass(frozen=True)
class Call:
    """One contract call to make: target, calldata and ETH value."""

    to: str | None
    data: bytes
    value: int = 0
    label: str = ""


@dataclass
class PendingTx:
    call: Call
    tx_hash: HexBytes
    raw: HexBytes
    nonce: int
    params: dict[str, Any] = field(repr=False)


def _revert_data(exc: Exception) -> bytes | str | None:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):  # ganache: {"result": "0x...", "message": "revert", ...}
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        return data
    if exc.args and isinstance(exc.args[0], dict):
        nested = exc.args[0].get("data")
        if isinstance(nested, str):
            return nested
        if isinstance(nested, dict):  # ganache: {"data": {"result": "0x..."}}
            return nested.get("result") or nested.get("data")
    return None


def as_revert(exc: Exception) -> ContractRevert | None:
    """The named contract error inside a web3 exception, if it carries revert data."""
    data = _revert_data(exc)
    if data is None and isinstance(exc, ContractLogicError):
        return decode_revert(b"")
    return decode_revert(data) if data is not None else None


def format_receipt(raw: dict[str, Any]) -> TxReceipt:
    """A receipt as the node sent it, its scalar fields in web3's types and its logs left as the
    node sent them (web3's formatting of every field of every log costs more than the call when a
    batch logged hundreds of events; `Market.decode_logs` reads either form)."""
    receipt: dict[str, Any] = dict(raw)
    for key in _RECEIPT_INTEGERS:
        if receipt.get(key) is not None:
            receipt[key] = int(receipt[key], 16)
    for key in ("transactionHash", "blockHash"):
        receipt[key] = HexBytes(receipt[key])
    for key in ("from", "to", "contractAddress"):
        if receipt.get(key):
            receipt[key] = to_checksum_address(receipt[key])
    return cast(TxReceipt, receipt)


def is_nonce_error(exc: Exception) -> bool:
    """Whether the node refused a transaction because its nonce was already used."""
    return "nonce" in str(exc).lower()


class TxSender:
    """Signs with a local key and sends transactions, safely from many threads at once."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        gas_margin: float = 1.25,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.02,
        fee_ttl: float = 2.0,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address: ChecksumAddress = account.address
        self.gas_margin = gas_margin
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self._fee_ttl = fee_ttl
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._fees: tuple[float, dict[str, int]] | None = None

    # ── sending ──

    def transact(self, call: Call, *, gas: int | None = None) -> TxReceipt:
        """Sends `call` and waits for its receipt; a revert raises the contract's named error."""
        return self.wait(self.submit(call, gas=gas))

    def submit(self, call: Call, *, gas: int | None = None) -> PendingTx:
        """Estimates, signs and broadcasts `call`; returns without waiting for it to be mined."""
        params: dict[str, Any] = {"from": self.address, "data": call.data, "value": call.value}
        if call.to is not None:
            params["to"] = call.to
        if gas is None:
            gas = self.estimate_gas(params)
        params.update(gas=gas, chainId=self.chain_id, **self._fee_params())
        with self._lock:
            for attempt in range(2):
                nonce = self._allocate_nonce()
                signed = self.account.sign_transaction({**params, "nonce": nonce})
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Web3RPCError as exc:
                    self._next_nonce = None  # resync from the chain on the next send
                    if attempt == 0 and "nonce" in str(exc).lower():
                        continue  # someone else used this key: retry once with a fresh nonce
                    raise TransactionError(
                        f"{call.label or 'transaction'} rejected by the node: {exc}"
                    ) from exc
                self._next_nonce = nonce + 1
                return PendingTx(call, HexBytes(tx_hash), HexBytes(signed.raw_transaction), nonce, params)
        raise AssertionError("unreachable")

    def replace(self, nonce: int) -> PendingTx:
        """Takes `nonce` back from whatever transaction waits with it in the node's pool: a
        transfer of nothing to this account itself, at a fee high enough to replace it."""
        fees = {
            key: value * 3 for key, value in self._fee_params().items()
        }  # more than the 10% bump nodes ask of a replacement, whatever fee the first one paid
        call = Call(self.address, b"", 0, label="replace")
        params: dict[str, Any] = {"from": self.address, "to": self.address, "value": 0, "data": b""}
        params.update(gas=21_000, chainId=self.chain_id, nonce=nonce, **fees)
        signed = self.account.sign_transaction(params)
        with self._lock:
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                self._next_nonce = None
                raise TransactionError(f"replacing nonce {nonce} failed: {exc}") from exc
            self._next_nonce = None
        return PendingTx(call, HexBytes(tx_hash), HexBytes(signed.raw_transaction), nonce, params)

    def wait(self, pending: PendingTx, timeout: float | None = None) -> TxReceipt:
        """Waits for the receipt, re-broadcasting if the node dropped the transaction."""
        deadline = time.monotonic() + (self.receipt_timeout if timeout is None else timeout)
        next_presence_check = time.monotonic() + 1.0
        while True:
            receipt = self._receipt(pending.tx_hash)
            if receipt is not None:
                if receipt["status"] != 1:
                    raise self.failure(pending, receipt)
                return receipt
            now = time.monotonic()
            if now >= deadline:
                self.resync()  # the node may have lost it (a reorg, a restart): ask it again
                raise TransactionTimeout(
                    f"{pending.call.label or 'transaction'} {pending.tx_hash.hex()} not mined after "
                    f"{self.receipt_timeout if timeout is None else timeout:.0f}s"
                )
            if now >= next_presence_check:
                next_presence_check = now + 1.0
                self._rebroadcast_if_dropped(pending)
            time.sleep(self.poll_interval)

    def _receipt(self, tx_hash: HexBytes) -> TxReceipt | None:
        reply = self.w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash.to_0x_hex()])
        if "error" in reply:
            raise TransactionError(f"eth_getTransactionReceipt failed: {reply['error']}")
        raw = reply.get("result")
        return None if raw is None else format_receipt(raw)

    def estimate_gas(self, params: dict[str, Any]) -> int:
        """Gas for `params` with a safety margin; a revert raises the contract's named error."""
        try:
            estimate = self.w3.eth.estimate_gas(TxParams(**params), "pending")  # type: ignore[typeddict-item]
        except (ContractLogicError, Web3RPCError) as exc:
            revert = as_revert(exc)
            if revert is not None:
                raise revert from None
            raise
        return int(estimate * self.gas_margin) + 10_000

    # ── nonces, chain id, fees ──

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def resync(self) -> None:
        """Forgets the cached nonce and fees (after a devnet snapshot revert, say)."""
        with self._lock:
            self._next_nonce = None
            self._fees = None

    def _allocate_nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = int(self.w3.eth.get_transaction_count(self.address, "pending"))
        return self._next_nonce

    @property
    def next_nonce(self) -> int | None:
        """The nonce the next transaction will take, if cached."""
        return self._next_nonce

    def _fee_params(self) -> dict[str, int]:
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > self._fee_ttl:
            block = self.w3.eth.get_block("latest")
            base_fee = int(block.get("baseFeePerGas", 0) or 0)
            if base_fee:
                tip = 1_000_000_000
                fees = {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}
            else:
                fees = {"gasPrice": int(self.w3.eth.gas_price)}
            self._fees = (now, fees)
        return self._fees[1]

    # ── failures ──

    def _traced_revert(self, pending: PendingTx) -> ContractRevert | None:
        """The revert of a mined transaction from `debug_traceTransaction` (anvil, geth)."""
        reply = self.w3.provider.make_request(
            RPCEndpoint("debug_traceTransaction"), [pending.tx_hash.to_0x_hex(), {"tracer": "callTracer"}]
        )
        output = (reply.get("result") or {}).get("output") if "error" not in reply else None
        if not isinstance(output, str) or len(output) < 10:
            return None
        return decode_revert(output)

    def _rebroadcast_if_dropped(self, pending: PendingTx) -> None:
        try:
            self.w3.eth.get_transaction(pending.tx_hash)
        except TransactionNotFound:
            self.rebroadcast(pending)
        self.fill_gap(pending.nonce)

    def fill_gap(self, nonce: int) -> int:
        """When a transaction with `nonce` waits behind a gap (lower nonces the node does not have:
        a reorg took mined transactions away), fills the gap with transfers of nothing to this
        account itself, so it can be mined; returns how many were sent."""
        executable = int(self.w3.eth.get_transaction_count(self.address, "pending"))
        for missing in range(executable, nonce):
            self.replace(missing)
        return max(0, nonce - executable)

    def rebroadcast(self, pending: PendingTx) -> None:
        """Sends the signed bytes of `pending` again (the node forgot it, or a reorg took it out of
        a block); TransactionDropped when its nonce was meanwhile used by another transaction."""
        try:
            self.w3.eth.send_raw_transaction(pending.raw)
        except Web3RPCError as exc:
            message = str(exc).lower()
            if "already" in message or "known" in message:
                return
            if is_nonce_error(exc):
                self.resync()
                raise TransactionDropped(
                    f"{pending.tx_hash.hex()} was dropped and nonce {pending.nonce} "
                    "was used by another transaction"
                ) from exc
            raise TransactionError(f"re-broadcasting dropped {pending.tx_hash.hex()} failed: {exc}") from exc

    def failure(self, pending: PendingTx, receipt: TxReceipt) -> Exception:
        """The error of a transaction mined with status 0: its named revert, as the node's trace of
        the transaction reports it (or, from a node without traces, found by replaying it at its
        block's parent state, where the time and earlier transactions of its block differ), or a
        TransactionError that says what is known."""
        traced = self._traced_revert(pending)
        if traced is not None:
            return traced
        replay = {
            key: pending.params[key]
            for key in ("from", "to", "data", "value", "gas")
            if key in pending.params
        }
        try:
            self.w3.eth.call(TxParams(**replay), receipt["blockNumber"] - 1)  # type: ignore[typeddict-item]
        except (ContractLogicError, Web3RPCError) as exc:
            revert = as_revert(exc)
            if revert is not None:
                return revert
        return TransactionError(
            f"{pending.call.label or 'transaction'} {pending.tx_hash.hex()} reverted in block "
            f"{receipt['blockNumber']} (gas used {receipt['gasUsed']} of {pending.params.get('gas')})"
        )
