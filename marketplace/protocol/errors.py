"""Exceptions: the root of every error ComputeMarket raises, and the families under it.

Contract reverts are `ContractRevert` subclasses named after the Solidity error; `reverts` builds
them from the compiled artifacts (`reverts.JobNotInState`, `reverts.decode_revert`).
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class MarketError(Exception):
    """Root of every error ComputeMarket raises."""


class ChainError(MarketError):
    """The chain or its RPC endpoint failed or answered something unusable."""


class TransactionError(ChainError):
    """A transaction could not be sent or did not get mined as expected."""


class TransactionTimeout(TransactionError):
    """No receipt arrived within the timeout."""


class TransactionDropped(TransactionError):
    """The node forgot the transaction and another one took its nonce."""


class ContractRevert(ChainError):
    """A contract call reverted; subclasses are named after the Solidity error."""

    error_name: ClassVar[str] = "ContractRevert"
    error_types: ClassVar[tuple[str, ...]] = ()
    error_fields: ClassVar[tuple[str, ...]] = ()
    error_enums: ClassVar[tuple[type[enum.Enum] | None, ...]] = ()

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        super().__init__(self._render())

    @classmethod
    def signature(cls) -> str:
        return f"{cls.error_name}({','.join(cls.error_types)})"

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
