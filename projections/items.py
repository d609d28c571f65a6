"""`items`: the live state of every tracked item, folded as the ledger grows.

An item is a clue (its latest disposition), a suggestion, a rectification item or a task
(each opening event, with its due date, whether and on which local day it closed, and for a
task its latest reported progress). `state_sql` derives one row per item from resolved facts;
the indicator service aggregates those rows either straight from `facts` (any `as_of`) or
from the folds in `items` (the live figures), so both paths share one definition.

An item's state depends on events of several units (a task assigned by one unit is completed
by another), so a fold recomputes the state of every item its ranges touch twice: from the
facts before the ranges (-1) and with them (+1). Unchanged items cancel out.
"""

from __future__ import annotations

import datetime as dt

from projections.folds import RANGE_WATERMARKS, SEQ_RANGES, Folds, ledger_watermarks
from projections.resolved import FAR_FUTURE, resolved_sql, str_list, ts

COLUMNS = ("kind", "unit_id", "day", "due", "is_closed", "closed_day", "method", "upto_seq", "n", "pct")
ITEM_TYPES = ("clue_disposed", "suggestion_issued", "suggestion_closed", "rectification_opened",
              "rectification_closed", "task_assigned", "task_progress_reported", "task_completed")
OPENINGS = ("suggestion_issued", "rectification_opened", "task_assigned")
CLOSINGS = ("suggestion_closed", "rectification_closed", "task_completed")
STATE_COLUMNS = "kind, unit_id, day, due, is_closed, closed_day, method"
FIELDS = ("method", "due_date", "percent", "assignee_unit")
LATEST = "(occurred_at, recorded_at, seq, target_id)"  # which of two events is the later one
NO_DAY = "toDate32('1900-01-01')"
NO_DUE = "toDate32('2299-12-31')"  # an item without a due date is never due and never overdue
WATERMARK = "'upto'"  # kind of the rows that only carry a unit's upto_seq


def state_sql(resolved: str, tz: str) -> str:
    """One row per item from resolved facts of ITEM_TYPES; `tz` is an SQL string expression.

    Columns: STATE_COLUMNS, and `pct` (a task's progress in hundredths: 100 % when completed,
    else its latest report, else 0). The unit is the one that scopes the item: the disposing
    unit of a clue's latest disposition, the issuing/opening unit, a task's assignee unit.
    """
    local = f"toDate32(occurred_at, {tz})"
    return f"""
    SELECT family AS kind, o.1 AS unit_id, o.2 AS day, o.3 AS due, is_closed, closed_day,
           method, toInt64(round(progress * 100)) AS pct
    FROM (
        SELECT splitByChar('_', type)[1] AS family, subject_id,
               groupArrayIf((if(type = 'task_assigned', assignee_unit, unit_id), {local},
                             ifNull(toDate32(due_date), {NO_DUE})), type IN {str_list(OPENINGS)}) AS opened,
               argMaxIf((unit_id, {local}, {NO_DUE}), {LATEST}, type = 'clue_disposed') AS disposal,
               argMaxIf(method, {LATEST}, type = 'clue_disposed') AS method,
               toUInt8(countIf(type IN {str_list(CLOSINGS)}) > 0) AS is_closed,
               if(is_closed = 1, toDate32(minIf(occurred_at, type IN {str_list(CLOSINGS)}), {tz}), {NO_DAY})
                   AS closed_day,
               multiIf(family != 'task', 0, is_closed = 1, 100,
                       ifNull(argMaxIf(percent, {LATEST}, type = 'task_progress_reported'), 0)) AS progress
        FROM ({resolved})
        GROUP BY family, subject_id)
    ARRAY JOIN if(family = 'clue', [disposal], opened) AS o
    """


# The items a fold's ranges touch: every opening or disposal of a subject any range's
# event is about (corrections carry their target's type and target_id).
_IN_RANGES = f"SELECT target_id FROM facts WHERE {SEQ_RANGES} AND type IN {str_list(ITEM_TYPES)}"
_SUBJECTS = (f"SELECT subject_id FROM facts WHERE op = 0 AND type IN {str_list(ITEM_TYPES)} "
             f"AND target_id IN ({_IN_RANGES})")
_TOUCHED = (f"SELECT target_id FROM facts WHERE op = 0 AND type IN {str_list(ITEM_TYPES)} "
            f"AND subject_id IN ({_SUBJECTS})")
_OUTSIDE = "unit_id NOT IN {u:Array(String)}"
_AFTER = f"({_OUTSIDE} OR seq <= transform(unit_id, {{u:Array(String)}}, {{hi:Array(UInt64)}}, toUInt64(0)))"
_BEFORE = f"({_OUTSIDE} OR seq < transform(unit_id, {{u:Array(String)}}, {{lo:Array(UInt64)}}, toUInt64(0)))"


def _fold_sql(signed_states: str, watermarks: str) -> str:
    return f"""
    SELECT {STATE_COLUMNS}, max(upto) AS upto_seq, sum(sign) AS n, sum(sign * pct) AS pct FROM (
        {signed_states}
        UNION ALL
        SELECT {WATERMARK}, unit_id, {NO_DAY}, {NO_DAY}, toUInt8(0), {NO_DAY}, '', top, toInt64(0), toInt64(0)
        FROM ({watermarks}))
    GROUP BY {STATE_COLUMNS}
    HAVING upto_seq > 0 OR n != 0 OR pct != 0"""


def _signed(where: str, sign: int) -> str:
    states = state_sql(resolved_sql(ITEM_TYPES, FAR_FUTURE, where, FIELDS), "{tz:String}")
    return f"SELECT {STATE_COLUMNS}, toUInt64(0) AS upto, toInt64({sign}) AS sign, pct FROM ({states})"


FOLD_SQL = _fold_sql(f"{_signed(f'target_id IN ({_TOUCHED}) AND {_AFTER}', 1)}\n        UNION ALL\n"
                     f"        {_signed(f'target_id IN ({_TOUCHED}) AND {_BEFORE}', -1)}", RANGE_WATERMARKS)


def rebuild_sql(as_of: dt.datetime) -> str:
    """Item rows for the whole ledger as known at `as_of` (replay)."""
    states = state_sql(resolved_sql(ITEM_TYPES, as_of, "1", FIELDS), "{tz:String}")
    signed = f"SELECT {STATE_COLUMNS}, toUInt64(0) AS upto, toInt64(1) AS sign, pct FROM ({states})"
    return _fold_sql(signed, ledger_watermarks(f"toDateTime64({ts(as_of)}, 6, 'UTC')"))


class ItemFolds(Folds):
    """The live item states (`items`)."""

    kind = "items"
    columns = COLUMNS

    def fold_sql(self, corrections: bool) -> str:
        return FOLD_SQL  # a new closure or progress report changes an older item: always both sides

    def rebuild_sql(self, as_of: dt.datetime) -> str:
        return rebuild_sql(as_of)
