"""Revert data decodes into named exceptions with typed fields."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector

from marketplace.protocol import errors, reverts
from marketplace.protocol.errors import ContractRevert
from marketplace.protocol.reverts import decode_revert
from marketplace.protocol.status import AssignmentStatus, JobStatus


def test_custom_error_with_enum_fields() -> None:
    data = selector("JobNotInState(uint256,uint8,uint8)") + encode(["uint256", "uint8", "uint8"], [7, 2, 1])
    exc = decode_revert(data)
    assert isinstance(exc, reverts.revert_class("JobNotInState"))
    assert isinstance(exc, ContractRevert)
    assert exc.jobId == 7
    assert exc.current is JobStatus.RUNNING
    assert exc.expected is JobStatus.OPEN
    assert str(exc) == "JobNotInState(jobId=7, current=running, expected=open)"


def test_assignment_enum_and_address_fields() -> None:
    provider = "0x" + "ab" * 20
    data = selector("AssignmentNotInState(uint256,address,uint8,uint8)") + encode(
        ["uint256", "address", "uint8", "uint8"], [1, provider, 2, 1]
    )
    exc = decode_revert("0x" + data.hex())
    assert exc.provider == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    assert exc.current is AssignmentStatus.COMMITTED


def test_module_attribute_resolves_error_classes() -> None:
    from marketplace.protocol.reverts import InsufficientFreeStake

    data = selector("InsufficientFreeStake(address,uint256,uint256)") + encode(
        ["address", "uint256", "uint256"], ["0x" + "01" * 20, 5, 3]
    )
    exc = decode_revert(data)
    assert isinstance(exc, InsufficientFreeStake)
    assert (exc.needed, exc.free) == (5, 3)


def test_openzeppelin_errors_are_known() -> None:
    data = selector("OwnableUnauthorizedAccount(address)") + encode(["address"], ["0x" + "02" * 20])
    assert type(decode_revert(data)).__name__ == "OwnableUnauthorizedAccount"


def test_revert_string_and_panic() -> None:
    reason = decode_revert(selector("Error(string)") + encode(["string"], ["nope"]))
    assert isinstance(reason, errors.RevertWithReason)
    assert reason.reason == "nope"
    panic = decode_revert(selector("Panic(uint256)") + encode(["uint256"], [0x11]))
    assert isinstance(panic, errors.Panic)
    assert panic.code == 0x11


@pytest.mark.parametrize("data", [b"", b"\x01\x02", bytes.fromhex("deadbeef") + b"\x00" * 32, None])
def test_unknown_or_empty_revert_data(data: bytes | None) -> None:
    assert isinstance(decode_revert(data), errors.UnknownRevert)


def test_malformed_arguments_are_unknown() -> None:
    assert isinstance(
        decode_revert(selector("JobNotInState(uint256,uint8,uint8)") + b"\x00"), errors.UnknownRevert
    )


def test_unknown_error_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        reverts.revert_class("NoSuchError")
