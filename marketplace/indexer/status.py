"""What the indexer loop last did, shared with the API of the same process so `/health` can tell
a chain that is down or an indexer that halted from one that is merely behind."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

IndexerState = Literal["starting", "following", "retrying", "halted"]
Checkpoint = tuple[int, str | None]  # the last indexed block and its hash


@dataclass(frozen=True)
class IndexerReport:
    state: IndexerState
    error: str | None
    seconds_since_contact: float | None  # since the node last answered a whole step


class IndexerStatus:
    """Written by the indexer thread, read by API requests; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: IndexerState = "starting"
        self._error: str | None = None
        self._last_contact: float | None = None
        self._checkpoint: Checkpoint | None = None

    def stepped(self, checkpoint: Checkpoint) -> None:
        """A step ended with the index at `checkpoint`, committed."""
        with self._lock:
            self._state, self._error, self._last_contact = "following", None, time.monotonic()
            self._checkpoint = checkpoint

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The position of the last committed step, None before the first. It trails the database
        by the instant between a step's commit and this update, never more."""
        return self._checkpoint

    def retrying(self, error: Exception) -> None:
        with self._lock:
            self._state, self._error = "retrying", str(error)

    def halted(self, error: Exception) -> None:
        with self._lock:
            self._state, self._error = "halted", str(error)

    def report(self) -> IndexerReport:
        with self._lock:
            since = None if self._last_contact is None else time.monotonic() - self._last_contact
            return IndexerReport(self._state, self._error, since)
