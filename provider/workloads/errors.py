"""Why a workload was refused or failed: one exception per reason, each with a stable code.

The daemon reports `code` (machine-readable, never changes) and the message (for a person).
Ray ships these exceptions between processes, so each one is built from its message alone and
pickles as such.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import ProviderError


class WorkloadError(ProviderError):
    """A job's workload cannot run, or failed while running."""

    code: ClassVar[str] = "workload-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class UnknownWorkload(WorkloadError):
    """The spec names a built-in workload that is not in the catalog."""

    code = "unknown-workload"


class InvalidArguments(WorkloadError):
    """The spec's `args` do not fit the workload's argument schema."""

    code = "invalid-arguments"


class InvalidInput(WorkloadError):
    """An input blob is missing, or its bytes are not in the format the workload reads."""

    code = "invalid-input"


class FuelExhausted(WorkloadError):
    """The work needs (or used) more fuel than the job's limit."""

    code = "fuel-exhausted"


class MemoryExceeded(WorkloadError):
    """The work needs (or tried to use) more memory than the job's limit."""

    code = "memory-exceeded"


class WorkloadTimeout(WorkloadError):
    """The work ran past the job's wall-clock limit."""

    code = "timeout"


class ForbiddenImport(WorkloadError):
    """A WebAssembly module imports something the ABI does not provide (clocks, randomness, WASI...)."""

    code = "forbidden-import"


class InvalidModule(WorkloadError):
    """A WebAssembly module does not compile, or lacks the exports the ABI requires."""

    code = "invalid-module"


class WorkloadTrap(WorkloadError):
    """A WebAssembly module trapped, or a built-in workload crashed."""

    code = "trap"
