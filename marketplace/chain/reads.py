"""Batched reads of a ComputeMarket: many `getJob`/`getAssignment`/`credits` calls in one JSON-RPC
request, and a job's posting as its own JobPosted log says it (the chain's word, not an indexer's).

A provider tracking hundreds of jobs reads them every few hundred milliseconds; one `eth_call`
per job through web3 would cost a round trip each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import get_abi_output_types

from ..protocol import artifacts
from ..protocol.events import LogDecoder, decode_words, static_tuple, topic
from ..protocol.reverts import decode_revert
from ..protocol.sortition import Draw, seed_block, seed_of
from ..protocol.views import AssignmentView, JobView, PostedJob, Settlement, SortitionView
from .market import Market
from .rpc import RpcClient, RpcError

_CHUNK = 200


class MarketReader:
    """Reads many jobs at once through `rpc`, at the latest block."""

    def __init__(self, rpc: RpcClient, market: Market) -> None:
        self.rpc = rpc
        self.market = market
        self.address = market.address
        abi = artifacts.load("ComputeMarket")
        self._job_types = self._output_words(abi.entry("function", "getJob"))
        self._assignment_types = self._output_words(abi.entry("function", "getAssignment"))
        self._settled_topics = [topic("JobFinalized"), topic("JobCancelled")]
        self._decoder = LogDecoder()
        self._sortition_types = self._output_words(abi.entry("function", "getSortition"))
        self._get_job = self._selector("getJob")
        self._get_assignment = self._selector("getAssignment")
        self._get_sortition = self._selector("getSortition")
        self._bonded_at = self._selector("bondedStakeAt")

    @staticmethod
    def _output_words(entry: dict[str, Any]) -> tuple[str, ...]:
        """The word types of a view that returns one struct of static words."""
        types = static_tuple(get_abi_output_types(entry))  # type: ignore[arg-type]
        if types is None:
            raise TypeError(f"{entry['name']} returns more than one struct of static words")
        return types

    def _selector(self, name: str) -> str:
        """The hex selector of function `name` (calldata is built by hand: web3's encoder costs
        more than the call itself when hundreds of jobs are read every round)."""
        entry = artifacts.load("ComputeMarket").entry("function", name)
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
            fields = decode_words(self._job_types, reply)
            found[job_id] = JobView.from_abi(job_id, fields)
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
            fields = decode_words(self._assignment_types, reply)
            found[job_id] = AssignmentView.from_abi(fields)
        return found

    def draws(self, jobs: Iterable[PostedJob], provider: str, head: int) -> dict[int, tuple[Draw, int]]:
        """Each job's sortition, with the seed a claim in the block after `head` would draw with if
        no claim fixed one yet, and `provider`'s stake bonded when it was posted (two batch requests)."""
        listed = list(jobs)
        who = to_checksum_address(provider)[2:].lower().rjust(64, "0")
        encoded = []
        for job in listed:
            encoded.append(self._get_sortition + f"{job.job_id:064x}")
            encoded.append(self._bonded_at + who + f"{job.block_number:064x}")
        replies = self._calls(encoded)
        next_block = head + 1
        views: dict[int, tuple[SortitionView, int]] = {}
        for index, job in enumerate(listed):
            sortition, stake = replies[2 * index], replies[2 * index + 1]
            if isinstance(sortition, RpcError) or isinstance(stake, RpcError):
                continue  # an unknown job (reorged away): no draw
            fields = decode_words(self._sortition_types, sortition)
            views[job.job_id] = (SortitionView.from_abi(fields), int.from_bytes(stake[-32:], "big"))
        unseeded = {
            block
            for view, _ in views.values()
            if view.seed == 0 and (block := seed_block(view.post_block, next_block)) is not None
        }
        numbers = sorted(unseeded)
        hashes = {
            n: h["hash"] for n, h in zip(numbers, self.rpc.headers(numbers), strict=True) if h is not None
        }
        found: dict[int, tuple[Draw, int]] = {}
        for job in listed:
            if job.job_id not in views:
                continue
            view, stake_then = views[job.job_id]
            seed = view.seed
            if seed == 0:
                block = seed_block(view.post_block, next_block)
                seed = seed_of(bytes.fromhex(hashes[block][2:])) if block in hashes else 0
            draw = Draw(
                job_id=job.job_id, replicas=job.replicas, posted_at=job.claim_deadline - view.claim_window,
                claim_window=view.claim_window, seed=seed, total_bonded=view.total_bonded,
                doubling_period=self.market.doubling_period, fixed=view.seed != 0,
            )  # fmt: skip
            found[job.job_id] = (draw, stake_then)
        return found

    def head_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def posted(self, job_ids: Iterable[int], from_block: int = 0) -> dict[int, PostedJob]:
        """The JobPosted record of each job (one eth_getLogs for all of them)."""
        ids = sorted(set(job_ids))
        found: dict[int, PostedJob] = {}
        for start in range(0, len(ids), _CHUNK):
            topics = [topic("JobPosted"), [f"0x{job_id:064x}" for job_id in ids[start : start + _CHUNK]]]
            for log in self.rpc.logs(self.address, from_block, "latest", topics):
                event = self._decoder.decode(log)
                if event is None or event.name != "JobPosted" or event.removed:
                    continue
                posted = PostedJob.from_event(event)
                found[posted.job_id] = posted
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
                settled = Settlement.from_event(event)
                found[settled.job_id] = settled
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
