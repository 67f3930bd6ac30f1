"""Serialized answers cached for as long as the index they were read from is unchanged.

The indexer writes events, projections and its checkpoint (last block number and hash) in one
transaction, so every change to what the API reads comes with a new checkpoint. An answer read
while the checkpoint stayed the same, before and after, is therefore exact for as long as the
checkpoint is current: the cache holds only answers for the newest checkpoint it has seen, and
forgets them all when the checkpoint moves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from pydantic import BaseModel
from sqlalchemy import Connection

from ..indexer.status import Checkpoint
from .queries import checkpoint as read_checkpoint


class ResponseCache:
    """JSON bodies by key, for the current checkpoint only; at most `max_entries` of them (LRU).
    Thread-safe: reads run in worker threads."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._checkpoint: Checkpoint | None = None
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, checkpoint: Checkpoint) -> bytes | None:
        with self._lock:
            if checkpoint != self._checkpoint:
                self._bodies.clear()
                self._checkpoint = checkpoint
            body = self._bodies.get(key)
            if body is None:
                self.misses += 1
                return None
            self._bodies.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, checkpoint: Checkpoint, body: bytes) -> None:
        with self._lock:
            if checkpoint != self._checkpoint or self.max_entries < 1:
                return  # read at a checkpoint that is no longer the newest seen
            self._bodies[key] = body
            self._bodies.move_to_end(key)
            while len(self._bodies) > self.max_entries:
                self._bodies.popitem(last=False)

    def fetch(self, connection: Connection, key: Hashable, read: Callable[[Connection], BaseModel]) -> bytes:
        """The JSON of `read(connection)`, from the cache while the checkpoint is unchanged.
        A read is cached only if the checkpoint was the same before and after it (no torn reads)."""
        before = read_checkpoint(connection)
        if before is not None and (body := self.get(key, before)) is not None:
            return body
        body = to_json(connection, read)
        if before is not None and read_checkpoint(connection) == before:
            self.put(key, before, body)
        return body


def to_json(connection: Connection, read: Callable[[Connection], BaseModel]) -> bytes:
    """The JSON of the model `read(connection)` returns."""
    model = read(connection)
    return model.__pydantic_serializer__.to_json(model)
