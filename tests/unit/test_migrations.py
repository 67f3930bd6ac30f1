"""Migrations bring a store written by an older revision forward without losing or renumbering events."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from marketplace.store.database import alembic_config, make_engine, migrate


def test_stream_numbers_of_events_indexed_before_they_existed_are_their_positions(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chain_state (id, chain_id, market, start_block, last_block, head_block) "
                "VALUES (1, 31337, '0x' || printf('%040d', 1), 0, 9, 9)"
            )
        )
        for block, log_index in ((3, 0), (3, 1), (9, 4)):
            connection.execute(
                text(
                    "INSERT INTO events (position, block_number, block_hash, block_timestamp, tx_hash, "
                    "log_index, name, job_id, args) VALUES (:position, :block, :hash, 0, :hash, :log, "
                    "'JobPosted', 1, '{}')"
                ),
                {
                    "position": block * 1_000_000 + log_index,
                    "block": block,
                    "hash": f"0x{block:064x}",
                    "log": log_index,
                },
            )
    migrate(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT position, seq FROM events ORDER BY position")).all()
        next_seq = connection.execute(text("SELECT next_seq FROM chain_state")).scalar_one()
    assert [(position, seq) for position, seq in rows] == [(p, p) for p, _ in rows]
    assert next_seq == 9_000_004 + 1
    assert {"transactions", "reorgs"} <= set(inspect(engine).get_table_names())
    migrate(engine)  # a no-op once at the newest revision
    engine.dispose()


def test_the_migrations_build_exactly_the_schema_the_models_declare(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from marketplace.store.schema import Base

    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
