"""JSON columns: written by orjson, and integers orjson refuses (beyond 64 bits) still stored exactly."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

from marketplace.store.database import json_text, make_engine


def test_json_text_round_trips_what_either_encoder_writes() -> None:
    small = {"jobId": 7, "amount": "1000", "winners": ["0xab"], "ok": True, "none": None}
    huge = {"amount": 2**200, "nested": [2**64, -(2**70)]}
    assert json.loads(json_text(small)) == small
    assert json.loads(json_text(huge)) == huge  # past orjson's range: the stdlib writes it


def test_an_engine_stores_json_columns_with_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    rows = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("value", JSON))
    rows.metadata.create_all(engine)
    values = [{"a": 1, "b": ["x"]}, {"big": 2**100}]
    with engine.begin() as connection:
        connection.execute(insert(rows), [{"id": i, "value": v} for i, v in enumerate(values)])
    with engine.connect() as connection:
        assert connection.execute(select(rows.c.value).order_by(rows.c.id)).scalars().all() == values
        stored = connection.exec_driver_sql("SELECT value FROM rows ORDER BY id").scalars().all()
    assert stored[0] == '{"a":1,"b":["x"]}'  # orjson's compact form
    engine.dispose()
