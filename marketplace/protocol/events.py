"""ComputeMarket's events: their topics, and fast decoding of raw logs (JSON-RPC dicts).

By default values come JSON-ready: uint256 amounts as decimal strings (JSON numbers lose precision
past 2**53); ids, counts and enums as integers; addresses checksummed; bytes32 as 0x-prefixed hex.
`native` decoding gives them as Python values: integers, bytes, and the contract's enums as
their members (`JobStatus.COMPLETED`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from . import artifacts
from .status import CONTRACT_ENUMS

# uint256 fields that are identifiers or times rather than amounts: plain JSON integers.
_INTEGER_FIELDS = {"jobId", "claimDeadline", "commitDeadline", "readyAt"}


_STATIC_WORD_TYPES = {"address", "bool", "bytes32"} | {f"uint{bits}" for bits in range(8, 257, 8)}


@dataclass(frozen=True)
class EventSpec:
    name: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]

    @cached_property
    def word_layout(self) -> tuple[tuple[str, str, bool], ...] | None:
        """(name, word type, is an array) of each data field, if each is one 32-byte word or a
        dynamic array of them: such data is sliced, not ABI-decoded. None for any other layout."""
        layout = []
        for name, type_ in self.data:
            item = type_.removesuffix("[]")
            if item not in _STATIC_WORD_TYPES:
                return None
            layout.append((name, item, item != type_))
        return tuple(layout)


def _word(name: str, type_: str, word: bytes, native: bool) -> Any:
    """One static ABI word as a JSON-ready value (or, `native`, as web3 gives it)."""
    if type_ == "address":
        return checksum_address("0x" + word[12:].hex())
    if type_ == "bytes32":
        return word if native else "0x" + word.hex()
    if type_ == "bool":
        return word[-1] == 1
    return _jsonable(name, type_, int.from_bytes(word, "big"), native)


def _sliced(layout: tuple[tuple[str, str, bool], ...], data: bytes, native: bool) -> dict[str, Any] | None:
    """The data fields of `layout` read by slicing words (an array's head word is the offset of
    its length word, its items follow), or None if `data` does not fit: eth_abi then decodes it,
    or says what is wrong with it."""
    if len(data) < 32 * len(layout):
        return None
    args: dict[str, Any] = {}
    for index, (name, type_, is_array) in enumerate(layout):
        word = data[32 * index : 32 * index + 32]
        if not is_array:
            args[name] = _word(name, type_, word, native)
            continue
        offset = int.from_bytes(word, "big")
        if offset % 32 or offset + 32 > len(data):
            return None
        count = int.from_bytes(data[offset : offset + 32], "big")
        start = offset + 32
        if start + 32 * count > len(data):
            return None
        args[name] = [
            _word(name, type_, data[at : at + 32], native) for at in range(start, start + 32 * count, 32)
        ]
    return args


def static_tuple(types: Sequence[str]) -> tuple[str, ...] | None:
    """The component types of a function's single tuple output (as eth_utils gives it, e.g.
    `["(address,uint8,bytes32)"]`), if each is one static word; None otherwise."""
    if len(types) != 1 or not (types[0].startswith("(") and types[0].endswith(")")):
        return None
    parts = tuple(types[0][1:-1].split(","))
    return parts if all(part in _STATIC_WORD_TYPES for part in parts) else None


def decode_words(types: tuple[str, ...], data: bytes) -> tuple[Any, ...]:
    """A tuple of static words, sliced (eth_abi's decoder costs a millisecond a call on a busy
    machine, and a provider reads thousands): integers, bytes, checksummed addresses, booleans.
    Data of another length, or a word with bits outside its type, is handed to eth_abi, which
    decodes it or says what is wrong with it."""
    if len(data) == 32 * len(types):
        values: list[Any] = []
        for index, type_ in enumerate(types):
            word = data[32 * index : 32 * index + 32]
            number = int.from_bytes(word, "big")
            if type_ == "bytes32":
                values.append(word)
            elif type_ == "address" and number < 2**160:
                values.append(checksum_address("0x" + word[12:].hex()))
            elif type_ == "bool" and number < 2:
                values.append(number == 1)
            elif type_.startswith("uint") and number < 2 ** int(type_[4:]):
                values.append(number)
            else:
                break
        else:
            return tuple(values)
    return tuple(abi_decode([f"({','.join(types)})"], data)[0])


@dataclass(frozen=True)
class Event:
    """One decoded ComputeMarket event and where the chain put it (hashes as 0x-hex)."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    removed: bool = False

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


@cache
def topics() -> dict[str, str]:
    """Event name -> its topic (0x-hex), for every event of ComputeMarket."""
    return {
        entry["name"]: "0x" + event_abi_to_log_topic(entry).hex()  # type: ignore[arg-type]
        for entry in artifacts.market_abi()
        if entry["type"] == "event"
    }


def topic(name: str) -> str:
    """The topic of ComputeMarket's event `name`."""
    return topics()[name]


@lru_cache(maxsize=65_536)
def checksum_address(address: str) -> str:
    """Checksummed address, cached: a market's events name the same few accounts over and over."""
    return str(to_checksum_address(address))


def _jsonable(name: str, type_: str, value: Any, native: bool) -> Any:
    if type_.endswith("[]"):
        return [_jsonable(name, type_[:-2], item, native) for item in value]
    if type_ == "address":
        return checksum_address(value)
    if type_.startswith("bytes"):
        return bytes(value) if native else "0x" + bytes(value).hex()
    if type_ == "uint256" and name not in _INTEGER_FIELDS and not native:
        return str(value)
    return value


class LogDecoder:
    """Decodes the logs of one contract ABI (ComputeMarket's by default). `native` gives values as
    web3 does (integers, bytes) instead of JSON-ready ones (amounts as decimal strings, hex)."""

    def __init__(self, abi: list[dict[str, Any]] | None = None, *, native: bool = False) -> None:
        self.native = native
        abi = abi if abi is not None else artifacts.market_abi()
        self._specs: dict[str, EventSpec] = {}
        self._enums: dict[tuple[str, str], Any] = {}  # (event, field) -> the contract enum it holds
        for entry in abi:
            if entry["type"] != "event":
                continue
            topic = "0x" + event_abi_to_log_topic(entry).hex()  # type: ignore[arg-type]
            inputs = entry["inputs"]
            for field in inputs:
                internal = str(field.get("internalType", ""))
                if internal.startswith("enum ") and internal.rsplit(".", 1)[-1] in CONTRACT_ENUMS:
                    self._enums[(entry["name"], field["name"])] = CONTRACT_ENUMS[internal.rsplit(".", 1)[-1]]
            spec = EventSpec(
                entry["name"],
                tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
                tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
            )
            if not all(type_ in _STATIC_WORD_TYPES for _, type_ in spec.indexed):
                raise ValueError(f"{spec.name} has an indexed dynamic field, which cannot be decoded")
            self._specs[topic] = spec

    def decode(self, log: dict[str, Any]) -> Event | None:
        """The decoded log, or None when its topic is not one of the ABI's events."""
        topics = log["topics"]
        spec = self._specs.get(topics[0]) if topics else None
        if spec is None:
            return None
        args: dict[str, Any] = {}
        for (name, type_), topic in zip(spec.indexed, topics[1:], strict=True):
            args[name] = _word(name, type_, bytes.fromhex(topic[2:]), self.native)
        if spec.data:
            data = bytes.fromhex(log["data"][2:])
            sliced = _sliced(spec.word_layout, data, self.native) if spec.word_layout is not None else None
            if sliced is not None:
                args.update(sliced)
            else:
                values = abi_decode([type_ for _, type_ in spec.data], data)
                for (name, type_), value in zip(spec.data, values, strict=True):
                    args[name] = _jsonable(name, type_, value, self.native)
        if self.native and self._enums:
            for name in args:
                enum = self._enums.get((spec.name, name))
                if enum is not None:
                    args[name] = enum.from_code(args[name])
        return Event(
            name=spec.name,
            args=args,
            block_number=int(log["blockNumber"], 16),
            block_hash=log["blockHash"],
            tx_hash=log["transactionHash"],
            log_index=int(log["logIndex"], 16),
            removed=bool(log.get("removed", False)),
        )
