"""Refusing work that does not fit a job's fuel and memory limits, with messages that say by how much."""

from __future__ import annotations

from marketplace.protocol.spec import Limits

from .base import MIB
from .errors import FuelExhausted, MemoryExceeded


def require_fuel(needed: int, limit: int, what: str, allowance: str = "the job's fuel limit") -> None:
    """Raises FuelExhausted when `what` needs more fuel than `limit` (which is `allowance`)."""
    if needed > limit:
        raise FuelExhausted(f"{what} needs {needed} fuel but {allowance} is {limit}")


def require_memory(needed_bytes: int, limits: Limits, what: str) -> None:
    """Raises MemoryExceeded when `what` needs more memory than the job's `memory_mb`."""
    if needed_bytes > limits.memory_mb * MIB:
        needed_mb = -(-needed_bytes // MIB)
        raise MemoryExceeded(
            f"{what} needs about {needed_mb} MiB of memory but the job's limit is {limits.memory_mb} MiB"
        )
