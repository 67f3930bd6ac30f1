"""What the indexer loop last did, shared with the API of the same process so `/health` can tell
a chain that is down or an indexer that halted from one that is merely behind, and so the response
cache knows the index's position without asking the database."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

IndexerState = Literal["starting", "following", "retrying", "halted"]
Checkpoint = tuple[int, str | None]  # the last indexed block and its hash


@dataclass(frozen=True)
class Revision:
    """The index as of one instant: `checkpoint` is None while a transaction may be changing it.
    `number` grows on every change, so two equal revisions mean nothing was committed between."""

    number: int
    checkpoint: Checkpoint | None


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
        self._revision = Revision(0, None)

    def changing(self) -> None:
        """Called before a transaction that changes the index begins: its position is unknown
        until `changed` (or `stepped`) says where the transaction left it."""
        with self._lock:
            self._revision = Revision(self._revision.number + 1, None)

    def changed(self, checkpoint: Checkpoint) -> None:
        """The transaction announced by `changing` committed, leaving the index at `checkpoint`."""
        with self._lock:
            self._revision = Revision(self._revision.number + 1, checkpoint)

    def stepped(self, checkpoint: Checkpoint) -> None:
        """A step ended with the index at `checkpoint`, committed."""
        with self._lock:
            self._state, self._error, self._last_contact = "following", None, time.monotonic()
            if checkpoint != self._revision.checkpoint:
                self._revision = Revision(self._revision.number + 1, checkpoint)

    def revision(self) -> Revision:
        """The index's position now: exact, since every change is announced before it begins."""
        return self._revision

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
