"""`daily`: the live count figures, folded per subtree and local day as the ledger grows.

A fold covers a contiguous seq range per unit. It writes +1 rows for each new fact and, for
every fact a correction or retraction in the range touches, -1 for the version in force
before the range and +1 for the version in force after it. The SQL that resolves versions is
the one the `facts` read path uses, so both paths agree by construction.

How a fold is written, with its source position, is `projections.folds`.
"""

from __future__ import annotations

import datetime as dt

from projections.ancestry import rollup_sql
from projections.counted import ADDITIVE, COUNTED_TYPES, PERSON_KEY, PERSON_TYPES
from projections.folds import FOLD_WATERMARKS, IN_RANGES, SEQ_RANGES, Folds, slice_watermarks
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


def _fold_sql(changes: str, watermarks: str | None = None) -> str:
    """Daily rows from signed fact versions (`changes`), plus each unit's (unit_id, top) seq
    from `watermarks` when given (a live fold adds its watermark rows itself).

    Each change gives a counts row (its sign at the position of each count it is in) and, for
    a person type, a person row too (one pass); the unit's rows are then written under every
    unit whose subtree holds it (`rollup_sql`)."""
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
    return f"""
    SELECT {KEY}, upto_seq, {_AS_MAP} AS n, pn FROM (
        SELECT {KEY}, max(upto) AS upto_seq, arrayResize(sumWithOverflowForEach(v), {len(_NAMES)}, toInt32(0)) AS vs,
               sum(pn) AS pn
        FROM ({rolled}{marks})
        GROUP BY {KEY}
        HAVING upto_seq > 0 OR arrayExists(c -> c != 0, vs) OR pn != 0)"""


FOLD_SQL = _fold_sql(_changes(), FOLD_WATERMARKS)  # ranges with corrections or retractions (of the targets {t})
PLAIN_FOLD_SQL = _fold_sql(_new_facts(), FOLD_WATERMARKS)  # ranges of original events only ({t} empty)


def rebuild_sql(as_of: dt.datetime) -> str:
    """Daily rows for the whole ledger as known at `as_of` (replay), the slice {part} of
    {parts} by local day: the key holds the day, so slices share no row, and each slice's
    GROUP BY holds a part of the table in memory. The watermark rows go with slice 0."""
    slice_ = "cityHash64(toDate32(occurred_at, {tz:String})) % {parts:UInt32} = {part:UInt32}"
    changes = (f"SELECT {_CHANGE_COLS}, toInt64(1) AS sign FROM ({resolved_sql(COUNTED_TYPES, as_of, '1', _FIELDS)}) "
               f"WHERE {slice_}")
    return _fold_sql(changes, slice_watermarks(as_of))


class DailyFolds(Folds):
    """The per-subtree, per-day count folds (`daily`)."""

    kind = "daily"
    columns = COLUMNS
    # Slices of days (rebuild_sql), one per 250k facts. A real 1M ledger's replay, standalone:
    # peak RSS 1.33-1.38 GB -> 0.81-0.88 GB with 4, in the same time (5.8-6.7 s; 8 slices:
    # 7.2-7.9 s, ~0.78 GB). A real 10M ledger (ten years of a province): the `daily` insert
    # peaked at 2.9 GB with 4 slices, 1.4 GB with 16 (38.6 -> 44.9 s; each slice reads `facts`).
    rebuild_slices = 16
    # FINAL merges by key in sorted order: the same rows as a GROUP BY with sumMap, in half the
    # time (a real 1M ledger: 2.5 -> 1.2 s).
    merged_form = ("SELECT *, upto_seq AS upto FROM {table} FINAL "
                   "WHERE upto_seq > 0 OR notEmpty(n.1) OR pn != 0")
    merged_columns = f"{KEY}, upto, n, pn"

    def fold_sql(self, params: dict, corrections: bool) -> str:
        params["t"] = [r[0] for r in self.store.rows(TOUCHED_SQL, params)] if corrections else []
        return FOLD_SQL if params["t"] else PLAIN_FOLD_SQL

    def rebuild_sql(self, as_of: dt.datetime) -> str:
        return rebuild_sql(as_of)
