"""Contract reverts decoded into named exceptions.

Every custom error of every compiled contract becomes a `ContractRevert` subclass with the
error's own name, so callers can write `except reverts.JobNotInState as e: e.current` and a user
reads `JobNotInState(jobId=3, current=running, expected=open)` instead of a hex blob.
"""

from __future__ import annotations

import enum
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from . import artifacts
from .errors import ContractRevert, Panic, RevertWithReason, UnknownRevert
from .status import CONTRACT_ENUMS, ContractEnum


def _enum_of(param: dict[str, Any]) -> type[enum.Enum] | None:
    internal = str(param.get("internalType", ""))
    if internal.startswith("enum "):
        return CONTRACT_ENUMS.get(internal.rsplit(".", 1)[-1])
    return None


def canonical_type(param: dict[str, Any]) -> str:
    """The ABI type of `param` as a signature spells it (tuples written out)."""
    if param["type"].startswith("tuple"):
        inner = ",".join(canonical_type(component) for component in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


@cache
def _registry() -> dict[bytes, type[ContractRevert]]:
    """Selector -> exception class, for every error in every artifact, plus Error and Panic."""
    classes: dict[bytes, type[ContractRevert]] = {}
    for builtin in (RevertWithReason, Panic):
        classes[function_signature_to_4byte_selector(builtin.signature())] = builtin
    for name in artifacts.all_names():
        for entry in artifacts.load(name).abi:
            if entry["type"] != "error":
                continue
            types = tuple(canonical_type(param) for param in entry["inputs"])
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


def revert_class(name: str) -> type[ContractRevert]:
    """The exception class for the contract error called `name`."""
    for cls in _registry().values():
        if cls.error_name == name:
            return cls
    raise AttributeError(f"no contract error named {name!r}")


def selector(name: str) -> bytes:
    """The 4-byte selector of the contract error called `name` (as a BatchItemSkipped reason)."""
    return function_signature_to_4byte_selector(revert_class(name).signature())


def error_name(selector: bytes | str) -> str | None:
    """The name of the contract error with this 4-byte selector, if any artifact defines one."""
    if isinstance(selector, str):
        selector = bytes.fromhex(selector.removeprefix("0x"))
    cls = _registry().get(selector)
    return None if cls is None else cls.error_name


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
            value = _enum_member(enum_cls, value)
        elif type_ == "address":
            value = to_checksum_address(value)
        elif type_.startswith("bytes"):
            value = "0x" + bytes(value).hex()
        fields[field] = value
    return cls(**fields)


def _enum_member(enum_cls: type[enum.Enum], code: int) -> Any:
    """The enum member numbered `code`, or the bare number if the enum does not define it."""
    if not issubclass(enum_cls, ContractEnum):
        return code
    try:
        return enum_cls.from_code(code)
    except ValueError:
        return code


def __getattr__(name: str) -> type[ContractRevert]:
    """`reverts.JobNotInState` (or `from .reverts import JobNotInState`) resolves errors by name."""
    if name.startswith("_"):
        raise AttributeError(name)
    return revert_class(name)
