"""The wall-clock guard: a deadline that long-running loops check cooperatively."""

from __future__ import annotations

import time

from .errors import WorkloadTimeout


class Deadline:
    """`timeout_s` seconds from now, on the monotonic clock (immune to wall-clock jumps).

    Time never feeds into a result: it only decides whether a run is abandoned, so honest
    replicas still agree bit for bit on every result they do produce. Built-ins check it between
    steps of their loops; one step (a single sort, say) runs to its end.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._at = time.monotonic() + timeout_s

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._at

    def check(self) -> None:
        """Raises WorkloadTimeout once the deadline has passed."""
        if self.expired():
            raise self.timeout_error()

    def timeout_error(self) -> WorkloadTimeout:
        return WorkloadTimeout(f"the work ran past its wall-clock limit of {self.timeout_s:g} s")
