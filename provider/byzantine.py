"""How a provider answers: honestly, or in one of the dishonest ways the protocol must punish.

The dishonest modes exist so tests and the demo can show slashing with real daemons:
- wrong-result commits and reveals a hash that is not the workload's output;
- no-reveal commits, then never reveals;
- copy computes nothing: it commits a copy of another provider's commitment and, once that
  provider revealed, replays its result hash and salt. The commitment binds the provider's
  address, so the replayed reveal fails (CommitmentMismatch) and the copier is slashed.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3

from marketplace.chain.market import Market
from marketplace.chain.rpc import RpcClient
from marketplace.protocol.events import topic
from marketplace.protocol.hashing import sha256
from marketplace.protocol.views import PostedJob

from .config import Byzantine


class Behaviour:
    """The honest provider."""

    mode: Byzantine | None = None
    reveals = True  # reveals what it committed
    copies = False  # commits a copy instead of computing

    def takes(self, job: PostedJob) -> bool:
        return True

    def committed_hash(self, output: bytes) -> bytes:
        """The result hash it commits to for a job whose workload produced `output`."""
        return sha256(output)


class WrongResult(Behaviour):
    mode = Byzantine.WRONG_RESULT

    def committed_hash(self, output: bytes) -> bytes:
        return sha256(b"not the result: " + output)


class NoReveal(Behaviour):
    mode = Byzantine.NO_REVEAL
    reveals = False


class Copy(Behaviour):
    mode = Byzantine.COPY
    copies = True

    def takes(self, job: PostedJob) -> bool:
        return job.replicas > 1  # with one replica there is nobody to copy from


def behaviour_for(mode: Byzantine | None) -> Behaviour:
    behaviours: dict[Byzantine | None, type[Behaviour]] = {
        None: Behaviour,
        Byzantine.WRONG_RESULT: WrongResult,
        Byzantine.NO_REVEAL: NoReveal,
        Byzantine.COPY: Copy,
    }
    return behaviours[mode]()


class Copier:
    """Finds what the copy mode copies: other providers' commitments and reveals of a job."""

    def __init__(self, w3: Web3, rpc: RpcClient, market: Market, me: str) -> None:
        self.w3 = w3
        self.rpc = rpc
        self.market = market
        self.me = to_checksum_address(me)
        self._committed = topic("ResultCommitted")
        self._revealed = topic("ResultRevealed")

    def _others(self, topic: str, job_id: int) -> list[dict[str, Any]]:
        logs = self.rpc.logs(self.market.address, 0, "latest", [topic, f"0x{job_id:064x}"])
        return [
            log
            for log in logs
            if not log.get("removed") and to_checksum_address("0x" + log["topics"][2][-40:]) != self.me
        ]

    def commitment(self, job_id: int) -> bytes | None:
        """Another provider's commitment on `job_id`, once one was made."""
        found = self._others(self._committed, job_id)
        return bytes.fromhex(found[0]["data"][2:66]) if found else None

    def reveal(self, job_id: int) -> tuple[bytes, bytes] | None:
        """(result hash, salt) another provider revealed on `job_id`, read from its transaction."""
        for log in self._others(self._revealed, job_id):
            transaction = self.w3.eth.get_transaction(log["transactionHash"])
            function, args = self.market.contract.decode_function_input(transaction["input"])
            if function.fn_name == "revealResult":
                return bytes(args["resultHash"]), bytes(args["salt"])
            if function.fn_name == "revealResults" and job_id in args["jobIds"]:
                index = list(args["jobIds"]).index(job_id)
                return bytes(args["resultHashes"][index]), bytes(args["salts"][index])
        return None
