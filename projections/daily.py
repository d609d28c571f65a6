"""`daily`: the live count figures, folded per unit and local day as the ledger grows.

A fold covers a contiguous seq range per unit. It writes +1 rows for each new fact and, for
every fact a correction or retraction in the range touches, -1 for the version in force
before the range and +1 for the version in force after it. The SQL that resolves versions is
the one the `facts` read path uses, so both paths agree by construction.

A fold is read back into Python and written as one insert (one part), together with each
unit's `upto_seq`: the counts and their source position land together or not at all, and
`catch_up` refolds exactly the ranges past each unit's last `upto_seq`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from projections.counted import ADDITIVE, COUNTED_TYPES, PERSON_TYPES
from projections.resolved import FAR_FUTURE, resolved_sql, str_list, ts
from projections.store import ClickHouseStore

COLUMNS = ("unit_id", "day", "person_type", "person_kind", "person_rank", "person_id", "upto_seq",
           "n", "pn")
SEQ_RANGES = ("unit_id IN {u:Array(String)} "
              "AND seq BETWEEN transform(unit_id, {u:Array(String)}, {lo:Array(UInt64)}, toUInt64(0)) "
              "AND transform(unit_id, {u:Array(String)}, {hi:Array(UInt64)}, toUInt64(0))")
_FIELDS = ("person_id", "kind", "rank", "form", "category")
_CHANGE_COLS = "type, unit_id, occurred_at, " + ", ".join(_FIELDS)
WATERMARK = "'upto'"  # person_type of the rows that only carry a unit's upto_seq
_NO_COUNTS = "CAST(([], []), 'Tuple(Array(String), Array(Int64))')"



_RANGE_WATERMARKS = ("SELECT w.1 AS unit_id, w.2 AS top FROM "
                     "(SELECT arrayJoin(arrayZip({u:Array(String)}, {hi:Array(UInt64)})) AS w)")


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


FOLD_SQL = _fold_sql(_changes(), _RANGE_WATERMARKS)  # ranges that may hold corrections
PLAIN_FOLD_SQL = _fold_sql(_new_facts(), _RANGE_WATERMARKS)  # ranges of original events only


def rebuild_sql(as_of: dt.datetime) -> str:
    """Daily rows for the whole ledger as known at `as_of` (replay)."""
    cutoff = f"recorded_at <= toDateTime64({ts(as_of)}, 6, 'UTC')"
    changes = f"SELECT {_CHANGE_COLS}, toInt64(1) AS sign FROM ({resolved_sql(COUNTED_TYPES, as_of, '1', _FIELDS)})"
    return _fold_sql(changes, f"SELECT unit_id, max(seq) AS top FROM ledger WHERE {cutoff} GROUP BY unit_id")


class DailyFolds:
    """Keeps `daily` in step with the ledger, in the configured local time zone."""

    def __init__(self, store: ClickHouseStore, timezone: str = "Asia/Shanghai", table: str = "daily"):
        self.store = store
        self.timezone = timezone
        self.table = table  # replay folds into a fresh table, then swaps it in

    def fold(self, bounds: Mapping[str, tuple[int, int]], corrections: bool = True) -> None:
        """Fold each unit's ledger rows lo..hi (already in `facts`) into `daily`, atomically.

        `corrections=False` promises the ranges hold no correction or retraction (cheaper SQL)."""
        if not bounds:
            return
        units = list(bounds)
        rows = self.store.rows(FOLD_SQL if corrections else PLAIN_FOLD_SQL, {"u": units, "lo": [bounds[u][0] for u in units],
                                          "hi": [bounds[u][1] for u in units], "tz": self.timezone})
        self.store.insert(self.table, rows, COLUMNS)

    def catch_up(self, chunk: int = 500) -> int:
        """Fold every unit's ledger rows past its last folded seq; return the units folded."""
        if self.table == "daily" and self._timezone_changed():
            self.store.command("TRUNCATE TABLE daily")
            self.store.insert("projection_settings", [["daily.timezone", self.timezone]], ["name", "value"])
        behind = self.store.rows(
            f"SELECT l.unit_id, d.upto + 1, l.top FROM (SELECT unit_id, max(seq) AS top FROM ledger "
            f"GROUP BY unit_id) AS l LEFT JOIN (SELECT unit_id, max(upto_seq) AS upto "
            f"FROM {self.table} GROUP BY unit_id) AS d USING unit_id WHERE l.top > d.upto",
            settings={"join_use_nulls": 0})
        for i in range(0, len(behind), chunk):
            self.fold({u: (int(lo), int(hi)) for u, lo, hi in behind[i:i + chunk]})
        return len(behind)

    def rebuild(self, as_of: dt.datetime | None = None) -> None:
        """Fill an empty table with the folds of the whole ledger (replay; not for `daily` live)."""
        self.store.command(f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) {rebuild_sql(as_of or FAR_FUTURE)}",
                           {"tz": self.timezone})

    def _timezone_changed(self) -> bool:
        stored = self.store.rows("SELECT argMax(value, set_at) FROM projection_settings "
                                 "WHERE name = 'daily.timezone' HAVING count() > 0")
        return not stored or stored[0][0] != self.timezone
