"""Typed bindings of ComputeMarket: reads, decoded events, and every transaction as a method."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import LogReceipt, TxReceipt

from .. import artifacts
from ..errors import AssignmentStatus, JobStatus
from .events import LogDecoder, checksum_address
from .sender import Call, PendingTx, TxSender

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ETH = ZERO_ADDRESS


@dataclass(frozen=True)
class JobParams:
    """What a requester posts; mirrors IComputeMarket.JobParams."""

    spec_hash: bytes
    reward_per_replica: int
    replicas: int = 1
    token: str = ETH
    collateral_per_replica: int = 0
    claim_window: int = 3600
    run_timeout: int = 3600
    reveal_window: int = 3600

    @property
    def escrow(self) -> int:
        return self.reward_per_replica * self.replicas

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.spec_hash,
            to_checksum_address(self.token),
            self.reward_per_replica,
            self.replicas,
            self.collateral_per_replica,
            self.claim_window,
            self.run_timeout,
            self.reveal_window,
        )


@dataclass(frozen=True)
class JobView:
    job_id: int
    requester: str
    token: str
    status: JobStatus
    replicas: int
    claims: int
    commits: int
    reveals: int
    deadline: int
    reward_per_replica: int
    collateral_per_replica: int
    run_timeout: int
    reveal_window: int
    fee_bps: int


@dataclass(frozen=True)
class AssignmentView:
    status: AssignmentStatus
    slot: int
    commitment: bytes
    result_hash: bytes


@dataclass(frozen=True)
class ProviderView:
    registered: bool
    free_stake: int
    locked_stake: int
    unbonding: int
    unbonding_ready_at: int


@dataclass(frozen=True)
class Event:
    """A decoded ComputeMarket event."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: HexBytes
    tx_hash: HexBytes
    log_index: int

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


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
    """The Call that invokes `function(*args)` on `contract`."""
    data = contract.encode_abi(function, args=list(args))
    return Call(contract.address, HexBytes(data), value, label=function)


class Market:
    """Read access to a deployed ComputeMarket, and calldata for its transactions."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract = bind(w3, "ComputeMarket", self.address)

    @cached_property
    def _decoder(self) -> LogDecoder:
        return LogDecoder(artifacts.load("ComputeMarket").abi, native=True)

    def decode_logs(self, logs: Iterable[LogReceipt | dict[str, Any]]) -> list[Event]:
        """Decodes this market's logs, in web3's form or the node's own (hex strings), skipping any
        other contract's; values come as web3 gives them."""
        events = []
        for log in logs:
            if checksum_address(str(log["address"])) != self.address or not log["topics"]:
                continue
            raw: dict[str, Any] = dict(log)
            decoded = self._decoder.decode(raw if isinstance(raw["data"], str) else _as_rpc_log(raw))
            if decoded is None:
                continue
            events.append(
                Event(
                    name=decoded.name,
                    args=decoded.args,
                    block_number=decoded.block_number,
                    block_hash=HexBytes(decoded.block_hash),
                    tx_hash=HexBytes(decoded.tx_hash),
                    log_index=decoded.log_index,
                )
            )
        return events

    # ── views ──

    def job(self, job_id: int) -> JobView:
        (
            requester, token, status, replicas, claims, commits, reveals, deadline,
            reward, collateral, run_timeout, reveal_window, fee_bps,
        ) = self.contract.functions.getJob(job_id).call()  # fmt: skip
        return JobView(
            job_id=job_id,
            requester=requester,
            token=token,
            status=JobStatus(status),
            replicas=replicas,
            claims=claims,
            commits=commits,
            reveals=reveals,
            deadline=deadline,
            reward_per_replica=reward,
            collateral_per_replica=collateral,
            run_timeout=run_timeout,
            reveal_window=reveal_window,
            fee_bps=fee_bps,
        )

    def assignment(self, job_id: int, provider: str) -> AssignmentView:
        status, slot, commitment, result_hash = self.contract.functions.getAssignment(
            job_id, to_checksum_address(provider)
        ).call()
        return AssignmentView(AssignmentStatus(status), slot, bytes(commitment), bytes(result_hash))

    def provider(self, address: str) -> ProviderView:
        return ProviderView(*self.contract.functions.providerInfo(to_checksum_address(address)).call())

    def credits(self, account: str, token: str = ETH) -> int:
        return int(
            self.contract.functions.credits(to_checksum_address(account), to_checksum_address(token)).call()
        )

    def job_count(self) -> int:
        return int(self.contract.functions.jobCount().call())

    def stake_token(self) -> str:
        return str(self.contract.functions.STAKE_TOKEN().call())

    # ── calldata ──

    def call(self, function: str, *args: Any, value: int = 0) -> Call:
        return encode_call(self.contract, function, *args, value=value)


class MarketActor:
    """One account's view of the market: every protocol transaction as a method."""

    def __init__(self, market: Market, sender: TxSender) -> None:
        self.market = market
        self.sender = sender
        self.address = sender.address

    def send(self, call: Call) -> TxResult:
        receipt = self.sender.transact(call)
        return TxResult(receipt, self.market.decode_logs(receipt["logs"]))

    def submit(self, call: Call) -> PendingTx:
        return self.sender.submit(call)

    def result(self, pending: PendingTx) -> TxResult:
        receipt = self.sender.wait(pending)
        return TxResult(receipt, self.market.decode_logs(receipt["logs"]))

    # ── staking ──

    def register(self, metadata_uri: str = "") -> TxResult:
        return self.send(self.market.call("registerProvider", metadata_uri))

    def stake(self, amount: int, *, native: bool = True) -> TxResult:
        return self.send(self.market.call("stake", amount, value=amount if native else 0))

    def request_unstake(self, amount: int) -> TxResult:
        return self.send(self.market.call("requestUnstake", amount))

    def withdraw_stake(self) -> TxResult:
        return self.send(self.market.call("withdrawStake"))

    # ── jobs ──

    def post_job_call(self, params: JobParams) -> Call:
        value = params.escrow if params.token == ETH else 0
        return self.market.call("postJob", params.as_tuple(), value=value)

    def post_job(self, params: JobParams) -> tuple[int, TxResult]:
        result = self.send(self.post_job_call(params))
        return int(result.event("JobPosted")["jobId"]), result

    def post_jobs(self, params: Sequence[JobParams]) -> tuple[list[int], TxResult]:
        value = sum(p.escrow for p in params if p.token == ETH)
        result = self.send(self.market.call("postJobs", [p.as_tuple() for p in params], value=value))
        return [int(event["jobId"]) for event in result.named("JobPosted")], result

    def claim(self, job_id: int) -> TxResult:
        return self.send(self.market.call("claimJob", job_id))

    def claim_many(self, job_ids: Sequence[int]) -> TxResult:
        return self.send(self.market.call("claimJobs", list(job_ids)))

    def commit(self, job_id: int, commitment: bytes) -> TxResult:
        return self.send(self.market.call("commitResult", job_id, commitment))

    def commit_many(self, job_ids: Sequence[int], commitments: Sequence[bytes]) -> TxResult:
        return self.send(self.market.call("commitResults", list(job_ids), list(commitments)))

    def reveal(self, job_id: int, result_hash: bytes, salt: bytes) -> TxResult:
        return self.send(self.market.call("revealResult", job_id, result_hash, salt))

    def reveal_many(
        self, job_ids: Sequence[int], result_hashes: Sequence[bytes], salts: Sequence[bytes]
    ) -> TxResult:
        return self.send(self.market.call("revealResults", list(job_ids), list(result_hashes), list(salts)))

    def submit_result(self, job_id: int, result_hash: bytes) -> TxResult:
        return self.send(self.market.call("submitResult", job_id, result_hash))

    def submit_results(self, job_ids: Sequence[int], result_hashes: Sequence[bytes]) -> TxResult:
        return self.send(self.market.call("submitResults", list(job_ids), list(result_hashes)))

    def finalize(self, job_id: int) -> TxResult:
        return self.send(self.market.call("finalizeJob", job_id))

    def finalize_many(self, job_ids: Sequence[int]) -> TxResult:
        return self.send(self.market.call("finalizeJobs", list(job_ids)))

    def cancel(self, job_id: int) -> TxResult:
        return self.send(self.market.call("cancelJob", job_id))

    def withdraw(self, token: str = ETH) -> TxResult:
        return self.send(self.market.call("withdraw", to_checksum_address(token)))
