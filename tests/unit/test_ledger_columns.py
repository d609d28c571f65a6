"""`projections.ledger.ledger_columns`: ledger rows as an insert's columns, datetimes as ticks."""

from __future__ import annotations

import datetime as dt

from projections.ledger import LEDGER_COLUMNS, ledger_columns


def test_rows_become_columns_with_datetimes_as_ticks_of_their_column_type():
    when = dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    rows = [{name: f"{name}{i}" for name in LEDGER_COLUMNS} | {"occurred_at": when, "recorded_at": when
                                                                  + dt.timedelta(microseconds=i)}
            for i in range(3)]
    columns = ledger_columns(rows)
    assert list(columns) == list(LEDGER_COLUMNS)
    assert columns["unit_id"] == ["unit_id0", "unit_id1", "unit_id2"]
    assert columns["occurred_at"] == [1_704_067_200_123] * 3  # DateTime64(3): milliseconds, floored
    assert columns["recorded_at"] == [1_704_067_200_123_456 + i for i in range(3)]  # DateTime64(6)
    before_1970 = dt.datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=dt.UTC)
    assert ledger_columns([rows[0] | {"occurred_at": before_1970}])["occurred_at"] == [-1]


def test_no_rows_give_empty_columns():
    assert ledger_columns([]) == {name: [] for name in LEDGER_COLUMNS}
