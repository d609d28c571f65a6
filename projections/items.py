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

from projections.ancestry import rollup_sql
from projections.folds import (
    FOLD_WATERMARKS,
    IN_RANGES,
    MONTHLY,
    SEQ_RANGES,
    Folds,
    month_start,
    slice_watermarks,
)
from projections.resolved import resolved_sql, str_list, two_sided_sql

KEY = "unit_id, family, scope_key, kind, day, due, is_closed, closed_day, method"  # see migration 0007
COLUMNS = (*KEY.split(", "), "upto_seq", "n", "pct")
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
    """One row per item and side from resolved facts of ITEM_TYPES that carry a `side` column
    (a fold's -1/+1, else 1); `tz` is an SQL string expression.

    Columns: side, STATE_COLUMNS, and `pct` (a task's progress in hundredths: 100 % when
    completed, else its latest report, else 0). The unit is the one that scopes the item: the
    disposing unit of a clue's latest disposition, the issuing/opening unit, a task's assignee.
    """
    local = f"toDate32(occurred_at, {tz})"
    return f"""
    SELECT side, family AS kind, o.1 AS unit_id, o.2 AS day, o.3 AS due, is_closed, closed_day,
           method, toInt64(round(progress * 100)) AS pct
    FROM (
        SELECT side, splitByChar('_', type)[1] AS family, subject_id,
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
        GROUP BY side, family, subject_id)
    ARRAY JOIN if(family = 'clue', [disposal], opened) AS o
    """


# The items a fold's ranges touch: every opening or disposal of a subject any range's
# event is about (corrections carry their target's type and target_id). Looked up first and
# passed to the fold as {t}: a batch that touches no item skips the fold.
_IN_RANGES = f"SELECT target_id FROM facts WHERE {SEQ_RANGES} AND type IN {str_list(ITEM_TYPES)}"
_SUBJECTS = (f"SELECT subject_id FROM facts WHERE op = 0 AND type IN {str_list(ITEM_TYPES)} "
             f"AND target_id IN ({_IN_RANGES})")
TOUCHED_SQL = (f"SELECT DISTINCT target_id FROM facts WHERE op = 0 AND type IN {str_list(ITEM_TYPES)} "
               f"AND subject_id IN ({_SUBJECTS})")


def _marks(watermarks: str) -> str:
    """A watermark row (kind 'upto') for each (unit_id, top) of `watermarks`."""
    return (f"SELECT unit_id, '', '', {WATERMARK}, {NO_DAY}, {NO_DAY}, toUInt8(0), {NO_DAY}, '', top, "
            f"toInt64(0), toInt64(0) FROM ({watermarks})")


def with_monthly_rows(rows: str, monthly_only: bool = False) -> str:
    """Item rows `rows` (COLUMNS) and each again under its month (families 'child:month',
    'level:month'), summed by key (only those: `monthly_only`).
    A monthly row's key is a function of its item rows' keys, so rows not yet summed by key
    give the same sums as summed ones (a live fold's: `_rolled`). A period's whole months read
    the monthly rows. `day` becomes its month's first day, and so does a closed item's `due`,
    its `closed_day` keeping only whether it closed on time (NO_DAY: on time, NO_DUE: late;
    `closed_day <= due` reads the same). An open item keeps its `due` (whether it is overdue
    depends on today), and so does a suggestion (its period is its due date's: the monthly
    rows answer any period of suggestions). A real 10M ledger's province: 630k item rows
    over ten years, ~70k monthly."""
    closed = "monthly = 1 AND is_closed = 1"
    coarse_due = f"{closed} AND kind != 'suggestion'"
    grains, others = ("[1]", "[]") if monthly_only else ("[0, 1]", "[0]")
    return f"""
    SELECT unit_id, g_family AS family, scope_key, kind, g_day AS day, g_due AS due, is_closed,
           g_closed_day AS closed_day, method, max(upto_seq) AS upto_seq, sum(n) AS n, sum(pct) AS pct
    FROM (
        SELECT unit_id, scope_key, kind, is_closed, method, upto_seq, n, pct,
               if(monthly = 1, concat(family, {MONTHLY!r}), family) AS g_family,
               if(monthly = 1, {month_start('day')}, day) AS g_day,
               if({coarse_due}, {month_start('due')}, due) AS g_due,
               if({closed}, if(closed_day <= due, {NO_DAY}, {NO_DUE}), closed_day) AS g_closed_day
        FROM ({rows})
        ARRAY JOIN if(family IN ('child', 'level'), {grains}, {others}) AS monthly)
    GROUP BY unit_id, g_family, scope_key, kind, g_day, g_due, is_closed, g_closed_day, method
    HAVING upto_seq > 0 OR n != 0 OR pct != 0"""


def _rolled(states: str, watermarks: str | None = None) -> str:
    """Item rows (COLUMNS, not yet summed by key) from signed states, summed per unit, under
    every unit whose subtree holds the item's unit on its day (`rollup_sql`), plus each unit's
    (unit_id, top) from `watermarks` when given (a live fold adds its watermark rows itself)."""
    marks = "" if watermarks is None else f"""
        UNION ALL {_marks(watermarks)}"""
    per_unit = f"""
        SELECT {STATE_COLUMNS}, toUInt64(0) AS upto_seq, sum(toInt64(side)) AS n, sum(side * pct) AS pct
        FROM ({states})
        GROUP BY {STATE_COLUMNS}
        HAVING n != 0 OR pct != 0"""
    return f"{rollup_sql(per_unit, 'kind, day, due, is_closed, closed_day, method, upto_seq, n, pct')}{marks}"


def _fold_sql(states: str, watermarks: str | None = None) -> str:
    """Item rows (COLUMNS) from signed states and `watermarks` (`_rolled`), summed by key."""
    return f"""
    SELECT {KEY}, max(upto_seq) AS upto_seq, sum(n) AS n, sum(pct) AS pct
    FROM ({_rolled(states, watermarks)})
    GROUP BY {KEY}
    HAVING upto_seq > 0 OR n != 0 OR pct != 0"""


# Every touched item's state without the ranges' events (-1) and with them (+1), its item and
# monthly rows summed in one grouping (as `daily`'s live fold: one grouping fewer to plan).
FOLD_SQL = with_monthly_rows(_rolled(
    state_sql(two_sided_sql(ITEM_TYPES, "target_id IN {t:Array(UUID)}", IN_RANGES, FIELDS), "{tz:String}"),
    FOLD_WATERMARKS))
MARKS_SQL = _marks(FOLD_WATERMARKS)  # a fold whose ranges touch no item


def rebuild_sql(facts: str, as_of: dt.datetime) -> str:
    """Item rows from `facts` (a SELECT of resolved item facts: a rebuild's slice of them),
    with the watermark rows as of `as_of` in slice {part} 0. A rebuild slices the facts by
    subject (`ItemFolds.slice_key`): an item's state is the fold of its subject's facts, so no
    item spans two slices (two slices may write rows of one key: the table adds them up like
    any fold's)."""
    return _fold_sql(state_sql(_one_side(facts), "{tz:String}"), slice_watermarks(as_of))


def current_sql(as_of: dt.datetime) -> str:
    """Every item fact as known at `as_of`, on side +1 (the input `state_sql` takes)."""
    return _one_side(resolved_sql(ITEM_TYPES, as_of, "1", FIELDS))


def _one_side(facts: str) -> str:
    """Resolved item facts (a SELECT) on side +1."""
    return f"SELECT *, toInt8(1) AS side FROM ({facts})"


class ItemFolds(Folds):
    """The live item states (`items`)."""

    kind = "items"
    columns = COLUMNS
    # Slices of subjects (rebuild_sql), one per 1.25M facts: the unsliced rebuild of a grown
    # 10M ledger was its replay's largest step (~720 MB over the process's start); on a 1M
    # ledger four slices only cost time (0.7 -> 1.5 s). With 2.5M facts a slice, a real 10M
    # ledger's four slices held 520-650 MB in ClickHouse each, the replay's largest once
    # `daily`'s slices were halved.
    rebuild_slices = 8
    slice_scale = 5
    slice_key = "cityHash64(subject_id)"
    # FINAL merges by key in sorted order (as `daily`'s): the same rows as a GROUP BY of the
    # key, and the same checksum. The GROUP BY held every row's key in a hash table: on a real
    # 10M ledger (9.9M rows) 4.3 s and 2.7 GB, the peak of the whole replay; FINAL 0.3 s, 0.3 GB.
    merged_form = "SELECT *, upto_seq AS upto FROM {table} FINAL WHERE upto_seq > 0 OR n != 0 OR pct != 0"
    merged_columns = f"{KEY}, upto, n, pct"

    def fold_sql(self, params: dict, corrections: bool) -> str:
        # A closure or progress report changes an older item: always both sides, for the
        # items the ranges touch (often none).
        params["t"] = [r[0] for r in self.store.rows(TOUCHED_SQL, params)]
        return FOLD_SQL if params["t"] else MARKS_SQL

    def resolved_sql(self, as_of: dt.datetime) -> str:
        return resolved_sql(ITEM_TYPES, as_of, "1", FIELDS)

    def rebuild_sql(self, facts: str, as_of: dt.datetime) -> str:
        return rebuild_sql(facts, as_of)

    def coarse_passes(self, table: str) -> list[tuple[str, int]]:
        # Sliced by unit and child (or level): the rows one monthly row sums share both.
        slice_ = "cityHash64(unit_id, scope_key) % {parts:UInt32} = {part:UInt32}"
        return [(with_monthly_rows(f"SELECT * FROM {table} WHERE {slice_}", monthly_only=True), 4)]
