"""Projection writes for one indexing transaction: rows cached in memory, flushed in bulk, journaled.

Handlers read and change rows as plain dicts through `get`/`put`; `flush` writes them with one
executemany per table. While a block is still reorg-able, the first change of each row in that
block records the row as it was before, so `undo_after(block)` can restore every projection to
the end of `block` exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, insert, select, tuple_, update

from .schema import PROJECTIONS, JournalEntry

Key = tuple[Any, ...]
Row = dict[str, Any]

_CHUNK = 500


def _table(name: str) -> Table:
    table = PROJECTIONS[name].__table__
    assert isinstance(table, Table)
    return table


def _primary_key(name: str) -> list[str]:
    return [column.name for column in _table(name).primary_key.columns]


class Projector:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._rows: dict[str, dict[Key, Row | None]] = {name: {} for name in PROJECTIONS}
        self._existing: dict[str, set[Key]] = {name: set() for name in PROJECTIONS}
        self._dirty: dict[str, set[Key]] = {name: set() for name in PROJECTIONS}
        self._journal: list[dict[str, Any]] = []
        self._journaled: set[tuple[str, Key, int]] = set()
        self._groups: set[tuple[str, str, Any]] = set()
        # Secondary indexes built by prefetch_where_in: (table, column) -> value -> keys.
        self._index: dict[tuple[str, str], dict[Any, set[Key]]] = {}

    # ── reads ──

    def prefetch(self, name: str, keys: Iterable[Key]) -> None:
        """Loads many rows at once (absent ones are remembered as absent)."""
        missing = [key for key in set(keys) if key not in self._rows[name]]
        if not missing:
            return
        table = _table(name)
        columns = [table.c[column] for column in _primary_key(name)]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            where = (
                columns[0].in_([key[0] for key in chunk])
                if len(columns) == 1
                else tuple_(*columns).in_(chunk)
            )
            for row in self.connection.execute(select(table).where(where)).mappings():
                key = tuple(row[column.name] for column in columns)
                self._rows[name][key] = dict(row)
                self._existing[name].add(key)
            for key in chunk:
                self._rows[name].setdefault(key, None)

    def _covered(self, name: str, key: Key) -> bool:
        """Whether a prefetch_where_in already loaded every row that could have this key."""
        for column_index, column in enumerate(_primary_key(name)):
            if (name, column, key[column_index]) in self._groups:
                return True
        return False

    def _ensure(self, name: str, key: Key) -> None:
        if key in self._rows[name]:
            return
        if self._covered(name, key):
            self._rows[name][key] = None  # its group is loaded and it was not in it
        else:
            self.prefetch(name, [key])

    def get(self, name: str, key: Key) -> Row | None:
        """The row's current value (a copy to change and `put` back), or None if there is none."""
        if key not in self._rows[name]:
            self._ensure(name, key)
        row = self._rows[name][key]
        return None if row is None else dict(row)

    def prefetch_where_in(self, name: str, column: str, values: Iterable[Any]) -> None:
        """Loads every row whose `column` is one of `values` (e.g. all assignments of some jobs)."""
        wanted = [value for value in set(values) if (name, column, value) not in self._groups]
        if not wanted:
            return
        table = _table(name)
        pk = _primary_key(name)
        index = self._index.setdefault((name, column), {})
        if len(index) == 0:
            for key, cached in self._rows[name].items():  # rows cached before this index existed
                if cached is not None:
                    index.setdefault(cached[column], set()).add(key)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for loaded in self.connection.execute(select(table).where(table.c[column].in_(chunk))).mappings():
                key = tuple(loaded[c] for c in pk)
                if key not in self._rows[name]:
                    self._rows[name][key] = dict(loaded)
                    self._existing[name].add(key)
                index.setdefault(loaded[column], set()).add(key)
        self._groups.update((name, column, value) for value in wanted)

    def rows_where(self, name: str, column: str, value: Any) -> list[Row]:
        """Rows whose `column` equals `value`, as they are now, including ones not yet flushed."""
        self.prefetch_where_in(name, column, [value])
        keys = sorted(self._index[(name, column)].get(value, ()))
        return [dict(row) for key in keys if (row := self._rows[name][key]) is not None]

    # ── writes ──

    def put(self, name: str, row: Row, block: int | None) -> None:
        """Stores `row`; `block` is the block whose event changed it, or None if it can no longer reorg."""
        key = tuple(row[column] for column in _primary_key(name))
        self._ensure(name, key)
        before = self._rows[name][key]
        if block is not None and (name, key, block) not in self._journaled:
            self._journaled.add((name, key, block))
            self._journal.append(
                {"block_number": block, "table_name": name, "key": list(key), "before": before}
            )
        self._rows[name][key] = dict(row)
        self._dirty[name].add(key)
        for (table_name, column), index in self._index.items():
            if table_name == name:
                index.setdefault(row[column], set()).add(key)

    def flush(self) -> None:
        """Writes every changed row and the journal."""
        for name in PROJECTIONS:
            dirty = self._dirty[name]
            if not dirty:
                continue
            table = _table(name)
            pk = _primary_key(name)
            rows_now = {key: row for key in dirty if (row := self._rows[name][key]) is not None}
            new = [row for key, row in rows_now.items() if key not in self._existing[name]]
            changed = [row for key, row in rows_now.items() if key in self._existing[name]]
            if new:
                self.connection.execute(insert(table), new)
            if changed:
                rows = [{**{f"_key_{c}": row[c] for c in pk}, **row} for row in changed]
                where = and_(*[table.c[c] == bindparam(f"_key_{c}") for c in pk])
                values: dict[str, Any] = {
                    c.name: bindparam(c.name) for c in table.columns if c.name not in pk
                }
                self.connection.execute(update(table).where(where).values(values), rows)
            self._existing[name].update(dirty)
            dirty.clear()
        if self._journal:
            next_id = (
                self.connection.execute(select(func.coalesce(func.max(JournalEntry.id), 0))).scalar_one() + 1
            )
            for offset, entry in enumerate(self._journal):
                entry["id"] = next_id + offset
            self.connection.execute(insert(JournalEntry), self._journal)
            self._journal.clear()


def undo_after(connection: Connection, block: int) -> int:
    """Restores every projection row changed after `block` to its state at the end of `block`.

    Returns how many journal entries were undone. Entries are replayed newest first, so a row
    changed in several blocks ends up as it was before the earliest of them.
    """
    # Rows, not .scalars(): on a Core connection that would yield only each entry's first column.
    entries = connection.execute(
        select(JournalEntry).where(JournalEntry.block_number > block).order_by(JournalEntry.id.desc())
    ).all()
    undone = 0
    for entry in entries:
        table = _table(entry.table_name)
        pk = _primary_key(entry.table_name)
        where = and_(*[table.c[c] == value for c, value in zip(pk, entry.key, strict=True)])
        connection.execute(delete(table).where(where))
        if entry.before is not None:
            connection.execute(insert(table).values(**entry.before))
        undone += 1
    connection.execute(delete(JournalEntry).where(JournalEntry.block_number > block))
    return undone


def prune_journal(connection: Connection, final_block: int) -> None:
    """Drops undo records of blocks that can no longer be reorganized."""
    connection.execute(delete(JournalEntry).where(JournalEntry.block_number <= final_block))
