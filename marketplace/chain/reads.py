"""Batched reads of a ComputeMarket: many `getJob`/`getAssignment`/`credits` calls in one JSON-RPC
request, and a job's posting as its own JobPosted log says it (the chain's word, not an indexer's).

A provider tracking hundreds of jobs reads them every few hundred milliseconds; one `eth_call`
per job through web3 would cost a round trip each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import get_abi_output_types

from .. import artifacts
from ..errors import AssignmentStatus, JobStatus, decode_revert
from .events import LogDecoder
from .events import checksum_address as checksum
from .market import AssignmentView, JobView, Market
from .rpc import RpcClient, RpcError

_CHUNK = 200


@dataclass(frozen=True)
class Settlement:
    """How a job ended, as its JobFinalized or JobCancelled event recorded it."""

    job_id: int
    status: JobStatus  # COMPLETED, FAILED or CANCELLED
    result_hash: bytes | None  # the majority's, for a completed job
    winners: tuple[str, ...]


@dataclass(frozen=True)
class PostedJob:
    """A job as its JobPosted event recorded it."""

    job_id: int
    requester: str
    spec_hash: str  # 64 lowercase hex characters, the spec blob's digest
    token: str
    reward_per_replica: int
    replicas: int
    collateral_per_replica: int
    claim_deadline: int
    block_number: int


class MarketReader:
    """Reads many jobs at once through `rpc`, at the latest block."""

    def __init__(self, rpc: RpcClient, market: Market) -> None:
        self.rpc = rpc
        self.market = market
        self.address = market.address
        abi = artifacts.load("ComputeMarket").abi
        functions = {entry["name"]: entry for entry in abi if entry["type"] == "function"}
        self._job_types = get_abi_output_types(functions["getJob"])  # type: ignore[arg-type]
        self._assignment_types = get_abi_output_types(functions["getAssignment"])  # type: ignore[arg-type]
        topics = {e["name"]: "0x" + event_abi_to_log_topic(e).hex() for e in abi if e["type"] == "event"}  # type: ignore[arg-type]
        self._posted_topic = topics["JobPosted"]
        self._settled_topics = [topics["JobFinalized"], topics["JobCancelled"]]
        self._decoder = LogDecoder(abi)
        self._get_job = self._selector("getJob")
        self._get_assignment = self._selector("getAssignment")

    def _selector(self, name: str) -> str:
        """The hex selector of function `name` (calldata is built by hand: web3's encoder costs
        more than the call itself when hundreds of jobs are read every round)."""
        entry = next(e for e in artifacts.load("ComputeMarket").abi if e.get("name") == name)
        types = ",".join(i["type"] for i in entry["inputs"])
        return "0x" + function_signature_to_4byte_selector(f"{name}({types})").hex()

    def _calls(self, calldata: Sequence[str]) -> list[bytes | RpcError]:
        results: list[bytes | RpcError] = []
        for start in range(0, len(calldata), _CHUNK):
            chunk = calldata[start : start + _CHUNK]
            replies = self.rpc.batch(
                "eth_call",
                [[{"to": self.address, "data": data}, "latest"] for data in chunk],
                raise_errors=False,
            )
            results += [r if isinstance(r, RpcError) else bytes.fromhex(r[2:]) for r in replies]
        return results

    def jobs(self, job_ids: Iterable[int]) -> dict[int, JobView]:
        """Each job's view; ids the market does not know are left out."""
        ids = list(job_ids)
        found: dict[int, JobView] = {}
        encoded = [self._get_job + f"{job_id:064x}" for job_id in ids]
        for job_id, reply in zip(ids, self._calls(encoded), strict=True):
            if isinstance(reply, RpcError):
                if reply.data is None or decode_revert(reply.data).error_name != "UnknownJob":
                    raise reply
                continue
            (fields,) = abi_decode(self._job_types, reply)
            (requester, token, status, replicas, claims, commits, reveals, deadline,
             reward, collateral, run_timeout, reveal_window, fee_bps) = fields  # fmt: skip
            found[job_id] = JobView(
                job_id=job_id, requester=checksum(requester), token=checksum(token),
                status=JobStatus(status), replicas=replicas, claims=claims, commits=commits, reveals=reveals,
                deadline=deadline, reward_per_replica=reward, collateral_per_replica=collateral,
                run_timeout=run_timeout, reveal_window=reveal_window, fee_bps=fee_bps,
            )  # fmt: skip
        return found

    def assignments(self, job_ids: Iterable[int], provider: str) -> dict[int, AssignmentView]:
        """`provider`'s slot on each job (status NONE where it holds none)."""
        ids = list(job_ids)
        who = to_checksum_address(provider)
        encoded = [self._get_assignment + f"{job_id:064x}" + who[2:].lower().rjust(64, "0") for job_id in ids]
        found: dict[int, AssignmentView] = {}
        for job_id, reply in zip(ids, self._calls(encoded), strict=True):
            if isinstance(reply, RpcError):
                raise reply
            ((status, slot, commitment, result_hash),) = abi_decode(self._assignment_types, reply)
            found[job_id] = AssignmentView(
                AssignmentStatus(status), slot, bytes(commitment), bytes(result_hash)
            )
        return found

    def posted(self, job_ids: Iterable[int], from_block: int = 0) -> dict[int, PostedJob]:
        """The JobPosted record of each job (one eth_getLogs for all of them)."""
        ids = sorted(set(job_ids))
        found: dict[int, PostedJob] = {}
        for start in range(0, len(ids), _CHUNK):
            topics = [self._posted_topic, [f"0x{job_id:064x}" for job_id in ids[start : start + _CHUNK]]]
            for log in self.rpc.logs(self.address, from_block, "latest", topics):
                event = self._decoder.decode(log)
                if event is None or event.name != "JobPosted" or event.removed:
                    continue
                args: dict[str, Any] = event.args
                found[args["jobId"]] = PostedJob(
                    job_id=args["jobId"], requester=args["requester"], spec_hash=args["specHash"][2:],
                    token=args["token"], reward_per_replica=int(args["rewardPerReplica"]),
                    replicas=int(args["replicas"]), collateral_per_replica=int(args["collateralPerReplica"]),
                    claim_deadline=int(args["claimDeadline"]), block_number=event.block_number,
                )  # fmt: skip
        return found

    def settlements(self, job_ids: Iterable[int], from_block: int = 0) -> dict[int, Settlement]:
        """How each of the jobs that ended did (jobs still going are left out)."""
        ids = sorted(set(job_ids))
        found: dict[int, Settlement] = {}
        for start in range(0, len(ids), _CHUNK):
            topics = [self._settled_topics, [f"0x{job_id:064x}" for job_id in ids[start : start + _CHUNK]]]
            for log in self.rpc.logs(self.address, from_block, "latest", topics):
                event = self._decoder.decode(log)
                if event is None or event.removed:
                    continue
                job_id = int(event.args["jobId"])
                if event.name == "JobCancelled":
                    found[job_id] = Settlement(job_id, JobStatus.CANCELLED, None, ())
                else:
                    raw = bytes.fromhex(event.args["resultHash"][2:])
                    found[job_id] = Settlement(
                        job_id, JobStatus(event.args["outcome"]), raw if any(raw) else None,
                        tuple(event.args["winners"]),
                    )  # fmt: skip
        return found

    def credits(self, account: str, tokens: Iterable[str]) -> dict[str, int]:
        """What `account` may withdraw, per token."""
        listed = [to_checksum_address(token) for token in tokens]
        who = to_checksum_address(account)
        encoded = [self.market.contract.encode_abi("credits", [who, token]) for token in listed]
        found: dict[str, int] = {}
        for token, reply in zip(listed, self._calls(encoded), strict=True):
            if isinstance(reply, RpcError):
                raise reply
            found[token] = int.from_bytes(reply[-32:], "big")
        return found

    def timestamp(self) -> int:
        """The latest block's timestamp: the chain's "now"."""
        return int(self.rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
