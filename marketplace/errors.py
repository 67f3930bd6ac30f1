"""Exceptions: one root for the package, and contract reverts decoded into named exceptions.

Every custom error of every compiled contract becomes a subclass of ContractRevert with the
error's own name, so callers can write `except JobNotInState as e: e.current` and a user reads
`JobNotInState(jobId=3, current=Running, expected=Open)` instead of a hex blob.
"""

from __future__ import annotations

import enum
from functools import cache
from typing import Any, ClassVar

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address


class MarketError(Exception):
    """Root of every error this package raises."""


class ChainError(MarketError):
    """The chain or its RPC endpoint failed or answered something unusable."""


class TransactionError(ChainError):
    """A transaction could not be sent or did not get mined as expected."""


class TransactionTimeout(TransactionError):
    """No receipt arrived within the timeout."""


class TransactionDropped(TransactionError):
    """The node forgot the transaction and another one took its nonce."""


class JobStatus(enum.IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    REVEALING = 3
    COMPLETED = 4
    FAILED = 5
    CANCELLED = 6

    def __str__(self) -> str:
        return self.name.lower()


class AssignmentStatus(enum.IntEnum):
    NONE = 0
    CLAIMED = 1
    COMMITTED = 2
    REVEALED = 3

    def __str__(self) -> str:
        return self.name.lower()


_ENUMS: dict[str, type[enum.IntEnum]] = {
    "JobStatus": JobStatus,
    "AssignmentStatus": AssignmentStatus,
}


class ContractRevert(ChainError):
    """A contract call reverted; subclasses are named after the Solidity error."""

    error_name: ClassVar[str] = "ContractRevert"
    error_types: ClassVar[tuple[str, ...]] = ()
    error_fields: ClassVar[tuple[str, ...]] = ()
    error_enums: ClassVar[tuple[type[enum.IntEnum] | None, ...]] = ()

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        super().__init__(self._render())

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    def _render(self) -> str:
        args = ", ".join(f"{key}={value}" for key, value in self.fields.items())
        return f"{self.error_name}({args})"


class RevertWithReason(ContractRevert):
    """`revert("reason")` or `require(cond, "reason")`."""

    error_name = "Error"
    error_types = ("string",)
    error_fields = ("reason",)


class Panic(ContractRevert):
    """A Solidity panic (overflow, division by zero, assert)."""

    error_name = "Panic"
    error_types = ("uint256",)
    error_fields = ("code",)


class UnknownRevert(ContractRevert):
    """A revert whose data matches no known error (or carries none)."""

    error_name = "UnknownRevert"

    def __init__(self, data: bytes) -> None:
        super().__init__(data="0x" + data.hex())


def _enum_of(param: dict[str, Any]) -> type[enum.IntEnum] | None:
    internal = str(param.get("internalType", ""))
    if internal.startswith("enum "):
        return _ENUMS.get(internal.rsplit(".", 1)[-1])
    return None


@cache
def _registry() -> dict[bytes, type[ContractRevert]]:
    """Selector -> exception class, for every error in every artifact, plus Error and Panic."""
    from . import artifacts

    classes: dict[bytes, type[ContractRevert]] = {}
    for builtin in (RevertWithReason, Panic):
        signature = f"{builtin.error_name}({','.join(builtin.error_types)})"
        classes[function_signature_to_4byte_selector(signature)] = builtin
    for name in artifacts.all_names():
        for entry in artifacts.load(name).abi:
            if entry["type"] != "error":
                continue
            types = tuple(_canonical_type(param) for param in entry["inputs"])
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            if selector in classes:
                continue
            classes[selector] = type(
                entry["name"],
                (ContractRevert,),
                {
                    "error_name": entry["name"],
                    "error_types": types,
                    "error_fields": tuple(param["name"] for param in entry["inputs"]),
                    "error_enums": tuple(_enum_of(param) for param in entry["inputs"]),
                    "__module__": __name__,
                    "__doc__": f"The contract reverted with {entry['name']}.",
                },
            )
    return classes


def _canonical_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def revert_class(name: str) -> type[ContractRevert]:
    """The exception class for the contract error called `name`."""
    for cls in _registry().values():
        if cls.error_name == name:
            return cls
    raise AttributeError(f"no contract error named {name!r}")


def decode_revert(data: bytes | str | None) -> ContractRevert:
    """Turns raw revert data into the matching named exception."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    if not data or len(data) < 4:
        return UnknownRevert(data or b"")
    cls = _registry().get(data[:4])
    if cls is None:
        return UnknownRevert(data)
    try:
        values = abi_decode(list(cls.error_types), data[4:])
    except Exception:
        return UnknownRevert(data)
    fields: dict[str, Any] = {}
    enums = cls.error_enums or (None,) * len(values)
    for field, type_, enum_cls, value in zip(cls.error_fields, cls.error_types, enums, values, strict=True):
        if enum_cls is not None:
            value = enum_cls(value)
        elif type_ == "address":
            value = to_checksum_address(value)
        elif type_.startswith("bytes"):
            value = "0x" + bytes(value).hex()
        fields[field] = value
    return cls(**fields)


def __getattr__(name: str) -> type[ContractRevert]:
    """`from marketplace.errors import JobNotInState` resolves contract errors by name."""
    if name.startswith("_"):
        raise AttributeError(name)
    return revert_class(name)
