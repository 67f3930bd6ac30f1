"""Fast decoding of raw ComputeMarket logs (JSON-RPC dicts) into JSON-ready event arguments.

uint256 amounts become decimal strings (JSON numbers lose precision past 2**53); ids, counts and
enums stay integers; addresses are checksummed; bytes32 become 0x-prefixed hex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from .. import artifacts

# uint256 fields that are identifiers or times rather than amounts: plain JSON integers.
_INTEGER_FIELDS = {"jobId", "claimDeadline", "commitDeadline", "readyAt"}


@dataclass(frozen=True)
class EventSpec:
    name: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DecodedLog:
    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    removed: bool


def _jsonable(name: str, type_: str, value: Any) -> Any:
    if type_ == "address":
        return to_checksum_address(value)
    if type_.startswith("address["):
        return [to_checksum_address(item) for item in value]
    if type_.startswith("bytes"):
        return "0x" + bytes(value).hex()
    if type_ == "uint256" and name not in _INTEGER_FIELDS:
        return str(value)
    return value


class LogDecoder:
    """Decodes the logs of one contract ABI (ComputeMarket's by default)."""

    def __init__(self, abi: list[dict[str, Any]] | None = None) -> None:
        abi = abi if abi is not None else artifacts.load("ComputeMarket").abi
        self._specs: dict[str, EventSpec] = {}
        for entry in abi:
            if entry["type"] != "event":
                continue
            topic = "0x" + event_abi_to_log_topic(entry).hex()  # type: ignore[arg-type]
            inputs = entry["inputs"]
            self._specs[topic] = EventSpec(
                entry["name"],
                tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
                tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
            )

    def decode(self, log: dict[str, Any]) -> DecodedLog | None:
        """The decoded log, or None when its topic is not one of the ABI's events."""
        topics = log["topics"]
        spec = self._specs.get(topics[0]) if topics else None
        if spec is None:
            return None
        args: dict[str, Any] = {}
        for (name, type_), topic in zip(spec.indexed, topics[1:], strict=True):
            (value,) = abi_decode([type_], bytes.fromhex(topic[2:]))
            args[name] = _jsonable(name, type_, value)
        if spec.data:
            values = abi_decode([type_ for _, type_ in spec.data], bytes.fromhex(log["data"][2:]))
            for (name, type_), value in zip(spec.data, values, strict=True):
                args[name] = _jsonable(name, type_, value)
        return DecodedLog(
            name=spec.name,
            args=args,
            block_number=int(log["blockNumber"], 16),
            block_hash=log["blockHash"],
            tx_hash=log["transactionHash"],
            log_index=int(log["logIndex"], 16),
            removed=bool(log.get("removed", False)),
        )
