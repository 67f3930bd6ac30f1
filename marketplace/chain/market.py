"""Typed bindings of ComputeMarket: its views, the calldata of every transaction, and an
account's actor that sends them.

`Market.calls` builds a `Call` for each protocol transaction (with the right ETH value: a stake
in an ERC-20 sends none); `MarketActor` sends them from one account and decodes what they emitted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_abi.exceptions import EncodingError
from eth_utils import to_checksum_address
from eth_utils.abi import filter_abi_by_name, function_abi_to_4byte_selector, get_abi_input_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import LogReceipt, TxReceipt

from ..protocol import artifacts
from ..protocol.events import Event, LogDecoder, checksum_address
from ..protocol.sortition import Draw, seed_block, seed_of
from ..protocol.views import ETH, AssignmentView, Bounds, JobParams, JobView, ProviderView, SortitionView
from .sender import Call, PendingTx, TxSender


@dataclass(frozen=True)
class TxResult:
    """A mined transaction with the market events it emitted."""

    receipt: TxReceipt
    events: list[Event]

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"])

    @property
    def block_number(self) -> int:
        return int(self.receipt["blockNumber"])

    @property
    def tx_hash(self) -> str:
        return HexBytes(self.receipt["transactionHash"]).to_0x_hex()

    def named(self, name: str) -> list[Event]:
        return [event for event in self.events if event.name == name]

    def event(self, name: str) -> Event:
        """The single event called `name`; raises if there is not exactly one."""
        found = self.named(name)
        if len(found) != 1:
            raise LookupError(f"expected one {name} event, found {len(found)}")
        return found[0]


def _as_rpc_log(log: Any) -> dict[str, Any]:
    """A web3-formatted log (bytes, ints) in the node's own form (hex strings)."""
    return {
        "topics": ["0x" + bytes(topic).hex() for topic in log["topics"]],
        "data": "0x" + bytes(log["data"]).hex(),
        "blockNumber": hex(int(log["blockNumber"])),
        "blockHash": "0x" + bytes(log["blockHash"]).hex(),
        "transactionHash": "0x" + bytes(log["transactionHash"]).hex(),
        "logIndex": hex(int(log["logIndex"])),
    }


def bind(w3: Web3, name: str, address: str) -> Contract:
    """A web3 contract for artifact `name` at `address`."""
    return w3.eth.contract(address=to_checksum_address(address), abi=artifacts.load(name).abi)


def encode_call(contract: Contract, function: str, *args: Any, value: int = 0) -> Call:
    """The Call that invokes `function(*args)` on `contract`.

    A function of one name is encoded by its ABI types straight away (web3's general encoder
    walks every argument through its normalizers: most of the cost of a postJobs of 100 jobs);
    overloaded ones, and arguments that need normalizing (an ENS name, a hex string for bytes),
    go through web3."""
    found = filter_abi_by_name(function, contract.abi)
    if len(found) == 1 and found[0]["type"] == "function":
        abi = found[0]
        try:
            encoded = contract.w3.codec.encode(get_abi_input_types(abi), args)
        except EncodingError:
            pass
        else:
            data = function_abi_to_4byte_selector(abi) + encoded
            return Call(contract.address, HexBytes(data), value, label=function)
    data = contract.encode_abi(function, args=list(args))
    return Call(contract.address, HexBytes(data), value, label=function)


class MarketCalls:
    """The calldata of every ComputeMarket transaction, one typed method each."""

    def __init__(self, market: Market) -> None:
        self._market = market

    def _encode(self, function: str, *args: Any, value: int = 0) -> Call:
        return encode_call(self._market.contract, function, *args, value=value)

    # ── staking ──

    def register_provider(self, metadata_uri: str = "") -> Call:
        return self._encode("registerProvider", metadata_uri)

    def stake(self, amount: int) -> Call:
        """Stakes `amount`: sent as ETH when the stake token is ETH, pulled as an ERC-20 otherwise."""
        return self._encode("stake", amount, value=amount if self._market.stake_token == ETH else 0)

    def request_unstake(self, amount: int) -> Call:
        return self._encode("requestUnstake", amount)

    def withdraw_stake(self) -> Call:
        return self._encode("withdrawStake")

    # ── jobs ──

    def post_job(self, params: JobParams) -> Call:
        (params,) = self._market.with_collateral(params)
        return self._encode("postJob", params.as_tuple(), value=params.escrow if params.token == ETH else 0)

    def post_jobs(self, params: Sequence[JobParams]) -> Call:
        value = sum(p.escrow for p in params if p.token == ETH)
        filled = self._market.with_collateral(*params)
        return self._encode("postJobs", [p.as_tuple() for p in filled], value=value)

    def claim_job(self, job_id: int) -> Call:
        return self._encode("claimJob", job_id)

    def claim_jobs(self, job_ids: Sequence[int]) -> Call:
        return self._encode("claimJobs", list(job_ids))

    def commit_result(self, job_id: int, commitment: bytes) -> Call:
        return self._encode("commitResult", job_id, bytes(commitment))

    def commit_results(self, job_ids: Sequence[int], commitments: Sequence[bytes]) -> Call:
        return self._encode("commitResults", list(job_ids), [bytes(c) for c in commitments])

    def reveal_result(self, job_id: int, result_hash: bytes, salt: bytes) -> Call:
        return self._encode("revealResult", job_id, bytes(result_hash), bytes(salt))

    def reveal_results(
        self, job_ids: Sequence[int], result_hashes: Sequence[bytes], salts: Sequence[bytes]
    ) -> Call:
        return self._encode(
            "revealResults", list(job_ids), [bytes(h) for h in result_hashes], [bytes(s) for s in salts]
        )

    def submit_result(self, job_id: int, result_hash: bytes) -> Call:
        return self._encode("submitResult", job_id, bytes(result_hash))

    def submit_results(self, job_ids: Sequence[int], result_hashes: Sequence[bytes]) -> Call:
        return self._encode("submitResults", list(job_ids), [bytes(h) for h in result_hashes])

    def finalize_job(self, job_id: int) -> Call:
        return self._encode("finalizeJob", job_id)

    def finalize_jobs(self, job_ids: Sequence[int]) -> Call:
        return self._encode("finalizeJobs", list(job_ids))

    def cancel_job(self, job_id: int) -> Call:
        return self._encode("cancelJob", job_id)

    def withdraw(self, token: str = ETH) -> Call:
        return self._encode("withdraw", to_checksum_address(token))

    # ── owner ──

    def set_payment_token(self, token: str, allowed: bool) -> Call:
        return self._encode("setPaymentToken", to_checksum_address(token), allowed)

    def set_bounds(self, bounds: Bounds) -> Call:
        return self._encode(
            "setBounds", bounds.max_claim_window, bounds.max_run_timeout, bounds.max_reveal_window,
            bounds.min_collateral_bps,
        )  # fmt: skip


class Market:
    """Read access to a deployed ComputeMarket, and the calldata of its transactions (`calls`)."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract = bind(w3, "ComputeMarket", self.address)
        self.calls = MarketCalls(self)

    @cached_property
    def _decoder(self) -> LogDecoder:
        return LogDecoder(native=True)

    def decode_logs(self, logs: Iterable[LogReceipt | dict[str, Any]]) -> list[Event]:
        """Decodes this market's logs, in web3's form or the node's own (hex strings), skipping any
        other contract's; values come as web3 gives them."""
        events = []
        for log in logs:
            if checksum_address(str(log["address"])) != self.address or not log["topics"]:
                continue
            raw: dict[str, Any] = dict(log)
            decoded = self._decoder.decode(raw if isinstance(raw["data"], str) else _as_rpc_log(raw))
            if decoded is not None:
                events.append(decoded)
        return events

    # ── views ──

    def job(self, job_id: int) -> JobView:
        return JobView.from_abi(job_id, self.contract.functions.getJob(job_id).call())

    def assignment(self, job_id: int, provider: str) -> AssignmentView:
        return AssignmentView.from_abi(
            self.contract.functions.getAssignment(job_id, to_checksum_address(provider)).call()
        )

    def provider(self, address: str) -> ProviderView:
        return ProviderView.from_abi(
            self.contract.functions.providerInfo(to_checksum_address(address)).call()
        )

    def credits(self, account: str, token: str = ETH) -> int:
        return int(
            self.contract.functions.credits(to_checksum_address(account), to_checksum_address(token)).call()
        )

    def job_count(self) -> int:
        return int(self.contract.functions.jobCount().call())

    def sortition(self, job_id: int) -> SortitionView:
        return SortitionView.from_abi(self.contract.functions.getSortition(job_id).call())

    def is_eligible(self, job_id: int, provider: str) -> bool:
        return bool(self.contract.functions.isEligible(job_id, to_checksum_address(provider)).call())

    def bonded_stake_at(self, provider: str, block: int) -> int:
        return int(self.contract.functions.bondedStakeAt(to_checksum_address(provider), block).call())

    def draw(self, job_id: int, sortition: SortitionView | None = None) -> Draw:
        """The sortition of an Open job (its stored deadline is then its claim deadline), with the
        seed a claim in the next block would draw with if none is fixed yet (0: none can yet)."""
        view, sortition = self.job(job_id), sortition or self.sortition(job_id)
        seed = sortition.seed
        if seed == 0:
            block = seed_block(sortition.post_block, int(self.w3.eth.block_number) + 1)
            seed = 0 if block is None else seed_of(self.w3.eth.get_block(block)["hash"])
        return Draw(
            job_id=job_id, replicas=view.replicas, posted_at=view.deadline - sortition.claim_window,
            claim_window=sortition.claim_window, seed=seed, total_bonded=sortition.total_bonded,
            doubling_period=self.doubling_period,
        )  # fmt: skip

    def eligible_from(self, job_id: int, provider: str) -> int | None:
        """The earliest block time at which `provider` may claim a seat of the Open job (None:
        never, or not drawn yet)."""
        sortition = self.sortition(job_id)
        draw = self.draw(job_id, sortition)
        return draw.eligible_from(provider, self.bonded_stake_at(provider, sortition.post_block))

    def bounds(self) -> Bounds:
        return Bounds(*self.contract.functions.bounds().call())

    def with_collateral(self, *jobs: JobParams) -> list[JobParams]:
        """Each of `jobs` with the least collateral the market accepts where it names none (the
        bounds are read once, and only if needed)."""
        if all(params.collateral_per_replica is not None for params in jobs):
            return list(jobs)
        bounds = self.bounds()
        return [
            params
            if params.collateral_per_replica is not None
            else dataclasses.replace(
                params,
                collateral_per_replica=bounds.min_collateral(
                    params.reward_per_replica, same_token=params.token == self.stake_token
                ),
            )
            for params in jobs
        ]

    @cached_property
    def doubling_period(self) -> int:
        """Seconds after which a draw's eligible providers double at most; fixed at deployment."""
        return int(self.contract.functions.DOUBLING_PERIOD().call())

    @cached_property
    def stake_token(self) -> str:
        """The token providers stake (ETH for address(0)); fixed at deployment."""
        return str(self.contract.functions.STAKE_TOKEN().call())

    # ── raw calldata ──

    def call(self, function: str, *args: Any, value: int = 0) -> Call:
        """Calldata for `function` by name, for what `calls` does not cover on purpose (owner
        functions; tests that send what no client would, such as a wrong ETH value)."""
        return encode_call(self.contract, function, *args, value=value)


class MarketActor:
    """One account's view of the market: every protocol transaction as a method."""

    def __init__(self, market: Market, sender: TxSender) -> None:
        self.market = market
        self.sender = sender
        self.address = sender.address
        self.calls = market.calls

    def send(self, call: Call) -> TxResult:
        receipt = self.sender.transact(call)
        return TxResult(receipt, self.market.decode_logs(receipt["logs"]))

    def submit(self, call: Call) -> PendingTx:
        return self.sender.submit(call)

    def result(self, pending: PendingTx) -> TxResult:
        receipt = self.sender.wait(pending)
        return TxResult(receipt, self.market.decode_logs(receipt["logs"]))

    # ── ERC-20 allowances ──

    def allow(self, token: str, amount: int) -> TxResult | None:
        """Lets the market pull `amount` of the ERC-20 `token` from this account (a stake or an
        escrow), approving only when the allowance is short; None when nothing was sent."""
        if token == ETH:
            return None
        erc20 = bind(self.market.w3, "TestToken", token)  # any ERC-20 ABI: allowance and approve
        if int(erc20.functions.allowance(self.address, self.market.address).call()) >= amount:
            return None
        receipt = self.sender.transact(encode_call(erc20, "approve", self.market.address, amount))
        return TxResult(receipt, [])

    # ── staking ──

    def register(self, metadata_uri: str = "") -> TxResult:
        return self.send(self.calls.register_provider(metadata_uri))

    def stake(self, amount: int) -> TxResult:
        return self.send(self.calls.stake(amount))

    def request_unstake(self, amount: int) -> TxResult:
        return self.send(self.calls.request_unstake(amount))

    def withdraw_stake(self) -> TxResult:
        return self.send(self.calls.withdraw_stake())

    # ── jobs ──

    def post_job(self, params: JobParams) -> tuple[int, TxResult]:
        result = self.send(self.calls.post_job(params))
        return int(result.event("JobPosted")["jobId"]), result

    def post_jobs(self, params: Sequence[JobParams]) -> tuple[list[int], TxResult]:
        result = self.send(self.calls.post_jobs(params))
        return [int(event["jobId"]) for event in result.named("JobPosted")], result

    def claim(self, job_id: int) -> TxResult:
        return self.send(self.calls.claim_job(job_id))

    def claim_many(self, job_ids: Sequence[int]) -> TxResult:
        return self.send(self.calls.claim_jobs(job_ids))

    def commit(self, job_id: int, commitment: bytes) -> TxResult:
        return self.send(self.calls.commit_result(job_id, commitment))

    def commit_many(self, job_ids: Sequence[int], commitments: Sequence[bytes]) -> TxResult:
        return self.send(self.calls.commit_results(job_ids, commitments))

    def reveal(self, job_id: int, result_hash: bytes, salt: bytes) -> TxResult:
        return self.send(self.calls.reveal_result(job_id, result_hash, salt))

    def reveal_many(
        self, job_ids: Sequence[int], result_hashes: Sequence[bytes], salts: Sequence[bytes]
    ) -> TxResult:
        return self.send(self.calls.reveal_results(job_ids, result_hashes, salts))

    def submit_result(self, job_id: int, result_hash: bytes) -> TxResult:
        return self.send(self.calls.submit_result(job_id, result_hash))

    def submit_results(self, job_ids: Sequence[int], result_hashes: Sequence[bytes]) -> TxResult:
        return self.send(self.calls.submit_results(job_ids, result_hashes))

    def finalize(self, job_id: int) -> TxResult:
        return self.send(self.calls.finalize_job(job_id))

    def finalize_many(self, job_ids: Sequence[int]) -> TxResult:
        return self.send(self.calls.finalize_jobs(job_ids))

    def cancel(self, job_id: int) -> TxResult:
        return self.send(self.calls.cancel_job(job_id))

    def withdraw(self, token: str = ETH) -> TxResult:
        return self.send(self.calls.withdraw(token))
