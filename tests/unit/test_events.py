"""Log decoding: data sliced word by word gives exactly what eth_abi decodes, and data that does
not fit its layout is refused, never misread."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_abi.exceptions import DecodingError
from eth_utils import event_abi_to_log_topic, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from marketplace.protocol.events import LogDecoder, decode_words, static_tuple


def event(name: str, *inputs: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "type": "event",
        "name": name,
        "anonymous": False,
        "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in inputs],
    }


FINALIZED = event(
    "Finalized", ("jobId", "uint256", True), ("outcome", "uint8", False), ("resultHash", "bytes32", False),
    ("winners", "address[]", False),
)  # fmt: skip
PAYOUTS = event(
    "Payouts", ("amounts", "uint256[]", False), ("paid", "bool", False), ("to", "address[]", False),
)  # fmt: skip
NAMED = event("Named", ("who", "address", True), ("label", "string", False))  # ABI-decoded: not words
DECODER = LogDecoder([FINALIZED, PAYOUTS, NAMED])

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: to_checksum_address("0x" + raw.hex()))
amounts = st.integers(min_value=0, max_value=2**256 - 1)


def log(abi: dict[str, Any], topics: list[bytes], data: bytes) -> dict[str, Any]:
    return {
        "topics": ["0x" + event_abi_to_log_topic(abi).hex(), *("0x" + topic.hex() for topic in topics)],  # type: ignore[arg-type]
        "data": "0x" + data.hex(),
        "blockNumber": "0x7",
        "blockHash": "0x" + "11" * 32,
        "transactionHash": "0x" + "22" * 32,
        "logIndex": "0x3",
    }


@given(
    job_id=st.integers(min_value=0, max_value=2**256 - 1),
    outcome=st.integers(min_value=0, max_value=255),
    result=st.binary(min_size=32, max_size=32),
    winners=st.lists(addresses, max_size=5),
)
def test_words_and_an_address_array_are_read_as_eth_abi_encodes_them(
    job_id: int, outcome: int, result: bytes, winners: list[str]
) -> None:
    data = encode(["uint8", "bytes32", "address[]"], [outcome, result, winners])
    decoded = DECODER.decode(log(FINALIZED, [job_id.to_bytes(32, "big")], data))
    assert decoded is not None
    assert decoded.args == {
        "jobId": job_id, "outcome": outcome, "resultHash": "0x" + result.hex(), "winners": winners,
    }  # fmt: skip
    assert (decoded.name, decoded.block_number, decoded.log_index) == ("Finalized", 7, 3)


@given(values=st.lists(amounts, max_size=4), paid=st.booleans(), to=st.lists(addresses, max_size=4))
def test_several_arrays_amounts_as_decimal_strings(values: list[int], paid: bool, to: list[str]) -> None:
    data = encode(["uint256[]", "bool", "address[]"], [values, paid, to])
    decoded = DECODER.decode(log(PAYOUTS, [], data))
    assert decoded is not None
    assert decoded.args == {"amounts": [str(value) for value in values], "paid": paid, "to": to}


def test_a_layout_of_other_types_is_abi_decoded() -> None:
    who = to_checksum_address("0x" + "ab" * 20)
    decoded = DECODER.decode(
        log(NAMED, [bytes(12) + bytes.fromhex(who[2:])], encode(["string"], ["gpu-box"]))
    )
    assert decoded is not None
    assert decoded.args == {"who": who, "label": "gpu-box"}


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-32],  # the last array item is missing
        lambda data: data[:64],  # no room for the array's head word
        lambda data: data[:64] + (2**64).to_bytes(32, "big") + data[96:],  # the offset points far outside
        lambda data: data[:64] + (97).to_bytes(32, "big") + data[96:],  # an offset off the word grid
        lambda data: data[:96] + (2**40).to_bytes(32, "big") + data[128:],  # more items than there is data
    ],
    ids=["short", "no head", "far offset", "unaligned offset", "huge count"],
)
def test_data_that_does_not_fit_its_layout_is_refused(damage: Any) -> None:
    winners = [to_checksum_address("0x" + "cd" * 20), to_checksum_address("0x" + "ef" * 20)]
    data = encode(["uint8", "bytes32", "address[]"], [1, b"\x05" * 32, winners])
    with pytest.raises(DecodingError):
        DECODER.decode(log(FINALIZED, [(9).to_bytes(32, "big")], damage(data)))


VIEW = ("address", "uint8", "uint32", "uint256", "bytes32", "bool")


@given(
    who=addresses,
    small=st.integers(0, 2**8 - 1),
    mid=st.integers(0, 2**32 - 1),
    big=amounts,
    digest=st.binary(min_size=32, max_size=32),
    flag=st.booleans(),
)
def test_a_view_of_static_words_is_sliced_as_eth_abi_decodes_it(
    who: str, small: int, mid: int, big: int, digest: bytes, flag: bool
) -> None:
    values = (who, small, mid, big, digest, flag)
    assert decode_words(VIEW, encode([f"({','.join(VIEW)})"], [values])) == values


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1],  # short
        lambda data: data[:32] + (2**8).to_bytes(32, "big") + data[64:],  # a uint8 word out of range
        lambda data: data[:160] + (2).to_bytes(32, "big"),  # a bool neither 0 nor 1
    ],
)
def test_a_view_that_does_not_fit_its_words_is_refused_by_eth_abi(damage: Any) -> None:
    data = encode(
        [f"({','.join(VIEW)})"], [(to_checksum_address("0x" + "11" * 20), 1, 2, 3, b"\x04" * 32, True)]
    )
    with pytest.raises(DecodingError):
        decode_words(VIEW, damage(data))


def test_only_a_single_struct_of_static_words_is_sliced() -> None:
    assert static_tuple(["(address,uint8,bytes32)"]) == ("address", "uint8", "bytes32")
    assert static_tuple(["(address,string)"]) is None
    assert static_tuple(["uint256", "uint256"]) is None
