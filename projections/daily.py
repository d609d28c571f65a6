"""`daily`: the live count figures, folded per unit and local day as the ledger grows.

A fold covers a contiguous seq range per unit. It writes +1 rows for each new fact and, for
every fact a correction or retraction in the range touches, -1 for the version in force
before the range and +1 for the version in force after it. The SQL that resolves versions is
the one the `facts` read path uses, so both paths agree by construction.

How a fold is written, with its source position, is `projections.folds`.
"""

from __future__ import annotations

import datetime as dt

from projections.counted import ADDITIVE, COUNTED_TYPES, PERSON_TYPES
from projections.folds import RANGE_WATERMARKS, SEQ_RANGES, Folds, ledger_watermarks
from projections.resolved import FAR_FUTURE, resolved_sql, str_list, ts

COLUMNS = ("unit_id", "day", "person_type", "person_kind", "person_rank", "person_id", "upto_seq",
           "n", "pn")
_FIELDS = ("person_id", "kind", "rank", "form", "category")
_CHANGE_COLS = "type, unit_id, occurred_at, " + ", ".join(_FIELDS)
WATERMARK = "'upto'"  # person_type of the rows that only carry a unit's upto_seq
_NO_COUNTS = "CAST(([], []), 'Tuple(Array(String), Array(Int64))')"



def _new_facts() -> str:
    """+1 for each original event in the ranges {u, lo, hi} that no correction in them touches."""
    return f"""
        SELECT {_CHANGE_COLS}, toInt64(1) AS sign FROM facts_source
        WHERE {SEQ_RANGES} AND op = 0 AND type IN {str_list(COUNTED_TYPES)}
          AND target_id NOT IN ({_TOUCHED})"""


_TOUCHED = ("SELECT target_id FROM ledger WHERE " + SEQ_RANGES
            + " AND type IN ('event_corrected', 'event_retracted')")


def _changes() -> str:
    """Signed fact versions for the ranges {u, lo, hi} (facts must already hold the ranges)."""
    upto = "seq <= transform(unit_id, {u:Array(String)}, {hi:Array(UInt64)}, toUInt64(0))"
    before = "seq < transform(unit_id, {u:Array(String)}, {lo:Array(UInt64)}, toUInt64(0))"
    after_sql = resolved_sql(COUNTED_TYPES, FAR_FUTURE, f"target_id IN ({_TOUCHED}) AND {upto}", _FIELDS)
    before_sql = resolved_sql(COUNTED_TYPES, FAR_FUTURE, f"target_id IN ({_TOUCHED}) AND {before}", _FIELDS)
    return f"""{_new_facts()}
        UNION ALL SELECT {_CHANGE_COLS}, toInt64(1) FROM ({after_sql})
        UNION ALL SELECT {_CHANGE_COLS}, toInt64(-1) FROM ({before_sql})"""


def _fold_sql(changes: str, watermarks: str) -> str:
    """Daily rows from signed fact versions (`changes`) plus each unit's (unit_id, top) seq."""
    ids = str_list(ADDITIVE)
    flags = ", ".join(f"toInt64({cond}) * sign" for cond in ADDITIVE.values())
    return f"""
    SELECT unit_id, day, person_type, person_kind, person_rank, person_id,
           max(upto) AS upto_seq, sumMap(n) AS n, sum(pn) AS pn
    FROM (
        SELECT unit_id, toDate32(occurred_at, {{tz:String}}) AS day, '' AS person_type,
               '' AS person_kind, '' AS person_rank, '' AS person_id, toUInt64(0) AS upto,
               CAST(({ids}, [{flags}]), 'Tuple(Array(String), Array(Int64))') AS n, toInt64(0) AS pn
        FROM ({changes})
        UNION ALL
        SELECT unit_id, toDate32(occurred_at, {{tz:String}}), type, kind, rank, person_id,
               toUInt64(0), {_NO_COUNTS}, sign
        FROM ({changes}) WHERE type IN {str_list(PERSON_TYPES)}
        UNION ALL
        SELECT unit_id, toDate32('1900-01-01'), {WATERMARK}, '', '', '', top, {_NO_COUNTS}, toInt64(0)
        FROM ({watermarks})
    )
    GROUP BY unit_id, day, person_type, person_kind, person_rank, person_id
    HAVING upto_seq > 0 OR notEmpty(n.1) OR pn != 0"""


FOLD_SQL = _fold_sql(_changes(), RANGE_WATERMARKS)  # ranges that may hold corrections
PLAIN_FOLD_SQL = _fold_sql(_new_facts(), RANGE_WATERMARKS)  # ranges of original events only


def rebuild_sql(as_of: dt.datetime) -> str:
    """Daily rows for the whole ledger as known at `as_of` (replay)."""
    changes = f"SELECT {_CHANGE_COLS}, toInt64(1) AS sign FROM ({resolved_sql(COUNTED_TYPES, as_of, '1', _FIELDS)})"
    return _fold_sql(changes, ledger_watermarks(f"toDateTime64({ts(as_of)}, 6, 'UTC')"))


class DailyFolds(Folds):
    """The per-unit, per-day count folds (`daily`)."""

    kind = "daily"
    columns = COLUMNS

    def fold_sql(self, corrections: bool) -> str:
        return FOLD_SQL if corrections else PLAIN_FOLD_SQL

    def rebuild_sql(self, as_of: dt.datetime) -> str:
        return rebuild_sql(as_of)
