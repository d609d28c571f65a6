"""`daily`: the live count figures, folded per subtree and local day as the ledger grows
(with coarser rows for long periods: by month, and each person over all time).

A fold covers a contiguous seq range per unit. It writes +1 rows for each new fact and, for
every fact a correction or retraction in the range touches, -1 for the version in force
before the range and +1 for the version in force after it. The SQL that resolves versions is
the one the `facts` read path uses, so both paths agree by construction.

How a fold is written, with its source position, is `projections.folds`.
"""

from __future__ import annotations

import datetime as dt

from projections.ancestry import rollup_sql
from projections.counted import ADDITIVE, COUNTED_TYPES, PERSON_KEY, PERSON_TYPES, PERSONS
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

KEY = "unit_id, family, scope_key, day, person_type, person_kind, person_rank, person_key"
COLUMNS = (*KEY.split(", "), "upto_seq", "n", "pn")
_FIELDS = ("person_id", "kind", "rank", "form", "category")
_CHANGE_COLS = "type, unit_id, occurred_at, " + ", ".join(_FIELDS)
WATERMARK = "'upto'"  # person_type of the rows that only carry a unit's upto_seq
# A fold adds the counts up as vectors, one position per count in the order of the names (the
# order a map's keys are kept in), and writes each sum as the map `n` holds: the names of the
# counts that are not zero, with their counts. The same rows as summing the maps (`sumMap`,
# which also drops zero sums), faster: the `daily` rebuild of a real 1M ledger's replay
# 4.3 -> 3.2-3.9 s (replay 7.9-9.1 -> 7.1-7.5 s), of a grown 10M ledger 12.1 -> 8.7 s, every
# row the same (the checksums). The vectors are Int32 summed without overflow checks: 8-byte
# sums took ~150 MB more; a sum is of one subtree's facts on one day.
_NAMES = sorted(ADDITIVE)
_VECTOR = "[" + ", ".join(f"toInt32(if({ADDITIVE[name]}, sign, 0))" for name in _NAMES) + "]"
_NO_VECTOR = "CAST([], 'Array(Int32)')"
_AS_MAP = (f"CAST((arrayFilter((name, c) -> c != 0, {str_list(_NAMES)}, vs), "
           "arrayMap(c -> toInt64(c), arrayFilter(c -> c != 0, vs))), 'Tuple(Array(String), Array(Int64))')")

# Coarser rows beside the daily ones, for the questions asked over long periods (a real 10M
# ledger is ten years of a province: its all-time counts read 95k count rows, its distinct
# persons ~1M person rows), summed from the daily rows by the same folds:
# - monthly ('child:month', 'level:month'): each count row again under its month (`day` the
#   month's first day); a period's whole months read these, its partial months the days.
# - all-time persons ('child:all' under each child, 'unit:all' for the whole subtree with
#   `scope_key` ''; `day` ALL_TIME): one row per person and person indicator they are in, its
#   `person_type` the indicator's id and `pn` the person's facts counted under it; a person
#   counts over all time where that is positive. The province of a real 10M ledger: 863k
#   rows, its persons 11 ms (one row per person with a map of the indicators: 40 ms).
ALL_TIME = "toDate32('1900-01-01')"
# The coarse rows a daily row adds to, as the bits of a UInt32 (`_grains`), one ARRAY JOIN
# row per bit set: the row itself (DAY), its month (MONTH), and for a person row each person
# indicator i it counts under, all time under the child (bit i) and over the whole subtree
# (bit UNIT + i). The indicators come from three constant lookups (`_person_bits`), not from a
# condition per indicator: ClickHouse plans a fold on every batch, and the conditions, in the
# lambdas that picked the names, took a third of the planning of a small batch's `daily` fold
# (a real 1M ledger, 20 events: EXPLAIN QUERY TREE 75-80 -> 59 ms, EXPLAIN PLAN 133-150 -> 114).
DAY, MONTH, UNIT = 31, 30, 16
_PERSON_NAMES = list(PERSONS)
assert len(_PERSON_NAMES) <= MONTH - UNIT, "person indicators must fit between UNIT and MONTH"


def _person_bits(position: int, column: str) -> str:
    """The bits of the person indicators whose (type, kind, rank)[`position`] a person row's
    `column` matches (an indicator that leaves it open matches any value)."""
    parts = [key[position] for key in PERSONS.values()]
    open_bits = sum(1 << i for i, value in enumerate(parts) if value is None)
    values = sorted({value for value in parts if value is not None})
    if not values:
        return f"toUInt32({open_bits})"
    bits = [open_bits | sum(1 << i for i, part in enumerate(parts) if part == value) for value in values]
    return f"transform({column}, {str_list(values)}, {bits}::Array(UInt32), toUInt32({open_bits}))"


_PERSON_BITS = (f"bitAnd(bitAnd({_person_bits(0, 'person_type')}, {_person_bits(1, 'person_kind')}), "
                f"{_person_bits(2, 'person_rank')})")


def _grains(coarse_only: bool) -> str:
    """The bits of a daily row's grains: every row keeps its day (not `coarse_only`); `child`
    and `level` count rows add their month; `child` person rows their person indicators."""
    day = 0 if coarse_only else 1 << DAY
    person = f"bitOr(toUInt32({day}), bitOr(indicators, bitShiftLeft(indicators, {UNIT})))"
    return (f"multiIf(family NOT IN ('child', 'level'), toUInt32({day}), "
            f"person_type = '', toUInt32({day | 1 << MONTH}), "
            f"person_type != {WATERMARK} AND family = 'child', {person}, toUInt32({day}))")


# How the rows of one key add up, and which sums are kept: the table's stored rows carry maps
# of counts (`n`), a fold's rows vectors (`v`, see _VECTOR) until its last step (`_AS_MAP`).
_MAP_SUMS = "max(upto_seq) AS upto_seq, sumMap(n) AS n, sum(pn) AS pn"
_MAP_KEPT = "upto_seq > 0 OR notEmpty(n.1) OR pn != 0"
_VECTOR_SUMS = (f"max(upto) AS upto_seq, arrayResize(sumWithOverflowForEach(v), {len(_NAMES)}, toInt32(0)) AS vs, "
                "sum(pn) AS pn")
_VECTOR_KEPT = "upto_seq > 0 OR arrayExists(c -> c != 0, vs) OR pn != 0"


def with_coarse_rows(rows: str, coarse_only: bool = False) -> str:
    """Daily rows `rows` (COLUMNS, one per key) with the monthly and all-time rows they add up
    to (only those: `coarse_only`), as rows of (grain, person indicator) summed by key."""
    return _by_grain(rows, "upto_seq, n, pn", _MAP_SUMS, _MAP_KEPT, coarse_only)


def _by_grain(rows: str, carried: str, sums: str, kept: str, coarse_only: bool = False) -> str:
    """`rows` (KEY and the `carried` columns) summed (`sums`, rows where `kept`) under each
    grain they count in: their day, and the coarse rows of `_grains`. A coarse row's key is a
    function of its daily rows' keys, so unsummed rows give the same sums as daily ones."""
    all_time = f"g < {MONTH}"
    indicator = (f"transform(toUInt8(g % {UNIT}), {list(range(len(_PERSON_NAMES)))}::Array(UInt8), "
                 f"{str_list(_PERSON_NAMES)}, '')")
    return f"""
    SELECT unit_id, g_family AS family, g_scope_key AS scope_key, g_day AS day, g_person_type AS person_type,
           g_person_kind AS person_kind, g_person_rank AS person_rank, person_key, {sums}
    FROM (
        SELECT unit_id, person_key, {carried},
               multiIf(g = {DAY}, family, g = {MONTH}, concat(family, {MONTHLY!r}), g >= {UNIT}, 'unit:all',
                       concat(family, ':all')) AS g_family,
               if({all_time} AND g >= {UNIT}, '', scope_key) AS g_scope_key,
               multiIf(g = {DAY}, day, g = {MONTH}, {month_start('day')}, {ALL_TIME}) AS g_day,
               if({all_time}, {indicator}, person_type) AS g_person_type,
               if({all_time}, '', person_kind) AS g_person_kind,
               if({all_time}, '', person_rank) AS g_person_rank
        FROM (SELECT *, {_PERSON_BITS} AS indicators FROM ({rows}))
        ARRAY JOIN bitPositionsToArray({_grains(coarse_only)}) AS g)
    GROUP BY unit_id, g_family, g_scope_key, g_day, g_person_type, g_person_kind, g_person_rank, person_key
    HAVING {kept}"""


# The targets of the corrections and retractions in the fold's ranges: looked up first and
# passed as {t}, so a batch without any takes the plain fold.
TOUCHED_SQL = ("SELECT DISTINCT target_id FROM ledger WHERE " + SEQ_RANGES
               + " AND type IN ('event_corrected', 'event_retracted')")


def _new_facts() -> str:
    """+1 for each original event in the ranges {u, lo, hi} that no correction in them touches."""
    return f"""
        SELECT {_CHANGE_COLS}, toInt64(1) AS sign FROM facts_source
        WHERE {SEQ_RANGES} AND op = 0 AND type IN {str_list(COUNTED_TYPES)}
          AND target_id NOT IN {{t:Array(UUID)}}"""


def _changes() -> str:
    """Signed fact versions for the ranges {u, lo, hi} (facts must already hold the ranges):
    +1 for new facts; for the targets {t} a correction or retraction in the ranges touches,
    -1 for the version before the ranges and +1 for the version after them."""
    touched = two_sided_sql(COUNTED_TYPES, "target_id IN {t:Array(UUID)}", IN_RANGES, _FIELDS)
    return f"""{_new_facts()}
        UNION ALL SELECT {_CHANGE_COLS}, toInt64(side) FROM ({touched})"""


def _rolled(changes: str, watermarks: str | None = None) -> str:
    """Rows from signed fact versions (`changes`) under every unit whose subtree holds theirs,
    as (KEY, upto, v, pn), plus each unit's (unit_id, top) seq from `watermarks` when given (a
    live fold adds its watermark rows itself).

    Each change gives a counts row (its sign at the position of each count it is in) and, for
    a person type, a person row too (one pass), summed per unit; the unit's rows are then
    written under every unit whose subtree holds it (`rollup_sql`)."""
    marks = "" if watermarks is None else f"""
        UNION ALL
        SELECT unit_id, '', '', toDate32('1900-01-01'), {WATERMARK}, '', '', toUInt64(0), top, {_NO_VECTOR}, toInt64(0)
        FROM ({watermarks})"""
    per_unit = f"""
        SELECT unit_id, day, person_type, person_kind, person_rank, person_key, toUInt64(0) AS upto,
               sumWithOverflowForEach(fv) AS v, sum(pn) AS pn
        FROM (
            SELECT unit_id, toDate32(occurred_at, {{tz:String}}) AS day, if(is_person, type, '') AS person_type,
                   if(is_person, kind, '') AS person_kind, if(is_person, rank, '') AS person_rank,
                   if(is_person, {PERSON_KEY}, toUInt64(0)) AS person_key,
                   if(is_person, {_NO_VECTOR}, {_VECTOR}) AS fv,
                   if(is_person, sign, toInt64(0)) AS pn
            FROM ({changes}) AS c
            ARRAY JOIN if(type IN {str_list(PERSON_TYPES)}, [0, 1], [0]) AS is_person)
        GROUP BY unit_id, day, person_type, person_kind, person_rank, person_key
        HAVING arrayExists(c -> c != 0, v) OR pn != 0"""
    rolled = rollup_sql(per_unit, "day, person_type, person_kind, person_rank, person_key, upto, v, pn")
    return f"{rolled}{marks}"


def _fold_sql(changes: str, watermarks: str | None = None) -> str:
    """Daily rows (COLUMNS) from signed fact versions (`changes`) and `watermarks` (`_rolled`)."""
    return f"""
    SELECT {KEY}, upto_seq, {_AS_MAP} AS n, pn FROM (
        SELECT {KEY}, {_VECTOR_SUMS}
        FROM ({_rolled(changes, watermarks)})
        GROUP BY {KEY}
        HAVING {_VECTOR_KEPT})"""


def _live_fold_sql(changes: str) -> str:
    """A live fold's rows (COLUMNS): the daily rows of `changes` and the coarse rows they add up
    to, in one grouping. ClickHouse plans a fold on every batch: summing the daily rows, then
    their coarse rows from those (two groupings) took ~15 ms more to plan (a real 1M ledger,
    20 events: EXPLAIN PLAN 92 -> 78 ms), and ~20 ms more to run, for the same rows."""
    grains = _by_grain(_rolled(changes, FOLD_WATERMARKS), "upto, v, pn", _VECTOR_SUMS, _VECTOR_KEPT)
    return f"SELECT {KEY}, upto_seq, {_AS_MAP} AS n, pn FROM ({grains})"


# ranges with corrections or retractions (of the targets {t}), and of original events only ({t} empty)
FOLD_SQL = _live_fold_sql(_changes())
PLAIN_FOLD_SQL = _live_fold_sql(_new_facts())


def rebuild_sql(facts: str, as_of: dt.datetime) -> str:
    """Daily rows from `facts` (a SELECT of `resolved_facts` rows: a rebuild's slice of them),
    with the watermark rows as of `as_of` in slice {part} 0. A rebuild slices the facts by
    local day (`DailyFolds.slice_key`): the key holds the day, so slices share no row, and each
    slice's GROUP BY holds a part of the table in memory. The coarse rows are summed from these
    afterwards (`DailyFolds.coarse_passes`)."""
    return _fold_sql(f"SELECT {_CHANGE_COLS}, toInt64(1) AS sign FROM ({facts})", slice_watermarks(as_of))


def resolved_facts(as_of: dt.datetime) -> str:
    """The counted facts as known at `as_of`, in the columns a fold reads (replay)."""
    return f"SELECT {_CHANGE_COLS} FROM ({resolved_sql(COUNTED_TYPES, as_of, '1', _FIELDS)})"


class DailyFolds(Folds):
    """The per-subtree, per-day count folds (`daily`)."""

    kind = "daily"
    columns = COLUMNS
    # Slices of days (`slice_key`), one per 250k facts: each slice's GROUP BY holds its part of
    # the table. A real 1M ledger's replay, standalone: peak RSS 1.33-1.38 GB in one slice,
    # 0.81-0.88 GB in 4, in the same time. A real 10M ledger (ten years of a province): the
    # `daily` insert peaked at 2.9 GB with 4 slices, 1.4 GB with 16; session 14: ClickHouse held
    # 700-930 MB during each of 16 slices, ~420 with 32 (146 -> 170 s for the replay: on a
    # ledger that large each slice resolves the facts again, ~1 s, see `Folds.rebuild_into`).
    rebuild_slices = 32
    slice_key = "cityHash64(toDate32(occurred_at, {tz:String}))"
    # FINAL merges by key in sorted order: the same rows as a GROUP BY with sumMap, in half the
    # time (a real 1M ledger: 2.5 -> 1.2 s).
    merged_form = ("SELECT *, upto_seq AS upto FROM {table} FINAL "
                   "WHERE upto_seq > 0 OR notEmpty(n.1) OR pn != 0")
    merged_columns = f"{KEY}, upto, n, pn"

    def fold_sql(self, params: dict, corrections: bool) -> str:
        params["t"] = [r[0] for r in self.store.rows(TOUCHED_SQL, params)] if corrections else []
        return FOLD_SQL if params["t"] else PLAIN_FOLD_SQL

    def resolved_sql(self, as_of: dt.datetime) -> str:
        return resolved_facts(as_of)

    def rebuild_sql(self, facts: str, as_of: dt.datetime) -> str:
        return rebuild_sql(facts, as_of)

    def coarse_passes(self, table: str) -> list[tuple[str, int]]:
        # The rows each pass needs, so that it reads only those (the key begins unit_id, family,
        # person_type): count rows give the monthly rows, sliced by unit; `child` person rows give
        # the all-time rows, sliced by unit and person (the rows one coarse row sums share
        # those). A real 10M ledger, sixteen slices of every row: 24.6 s, ~350 MB in ClickHouse;
        # these passes 8.6 + 10.6 s, ~310 and ~340 MB.
        counts = "family IN ('child', 'level') AND person_type = '' AND cityHash64(unit_id) % {parts:UInt32} = {part:UInt32}"
        persons = (f"family = 'child' AND person_type NOT IN ('', {WATERMARK}) "
                   "AND cityHash64(unit_id, person_key) % {parts:UInt32} = {part:UInt32}")
        return [(with_coarse_rows(f"SELECT * FROM {table} WHERE {counts}", coarse_only=True), 12),
                (with_coarse_rows(f"SELECT * FROM {table} WHERE {persons}", coarse_only=True), 8)]
