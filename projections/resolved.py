"""SQL building blocks over `facts`: the events as known at `as_of`, scoped to a subtree.

A fact's current version is the original with its latest correction applied (recorded at
or before `as_of`); a retracted fact is gone. Most facts are never corrected, so they are
read straight; only corrected ones go through a GROUP BY.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from domain.hierarchy import BEGIN, END, Span

FIELDS = ("person_id", "kind", "rank", "form", "method", "channel", "category", "source",
          "due_date", "percent", "assignee_unit", "parent_id", "level", "name", "effective_from")
FAR_PAST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
FAR_FUTURE = dt.datetime(2299, 12, 31, tzinfo=dt.UTC)


def ts(value: dt.datetime) -> str:
    """A UTC instant as a ClickHouse DateTime64 literal."""
    return value.astimezone(dt.UTC).strftime("'%Y-%m-%d %H:%M:%S.%f'")


def str_list(values: Iterable[str]) -> str:
    return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"


def _version(fields: Sequence[str], among: str = "1") -> tuple[str, list[str]]:
    """Aggregates over one fact's rows (its original, corrections, retraction) limited to
    `among`: whether it stands (its original is there, no retraction), and each field's
    current value (the latest correction's, else the original's; by recorded_at, then seq)."""
    stands = f"countIf(op = 0 AND {among}) > 0 AND countIf(op = 2 AND {among}) = 0"
    return stands, [f"argMaxIf({f}, (recorded_at, seq), op < 2 AND {among})" for f in fields]


_ORIGINAL = ("any(type) AS type_v, anyIf(unit_id, op = 0) AS unit_id_v, anyIf(subject_id, op = 0) AS subject_id_v, "
             "anyIf(occurred_at, op = 0) AS occurred_at_v, anyIf(recorded_at, op = 0) AS recorded_at_v, "
             "anyIf(seq, op = 0) AS seq_v")
_BASE = ("target_id", "type", "unit_id", "subject_id", "occurred_at", "recorded_at", "seq")


def resolved_sql(types: Sequence[str], as_of: dt.datetime, where: str = "1",
                 fields: Sequence[str] = FIELDS) -> str:
    """Facts of `types` in their latest version known at `as_of`, retracted ones removed.

    `where` narrows the facts read (both versions and corrections); `fields` names the
    payload fields the caller needs (fewer fields, less to plan and to read).
    """
    where = (f"type IN {str_list(types)} AND recorded_at <= toDateTime64({ts(as_of)}, 6, 'UTC') "
             f"AND ({where})")
    changed = f"SELECT target_id FROM facts WHERE {where} AND op > 0"
    plain_cols = ", ".join((*_BASE, *fields))
    renamed = ", ".join(f"{c}_v AS {c}" for c in (*_BASE[1:], *fields))
    stands, latest = _version(fields)
    return f"""
    SELECT {plain_cols} FROM facts
    WHERE {where} AND op = 0 AND target_id NOT IN ({changed})
    UNION ALL
    SELECT target_id, {renamed} FROM (
        SELECT target_id, {_ORIGINAL}{"".join(f", {e} AS {f}_v" for e, f in zip(latest, fields, strict=True))}
        FROM (SELECT * FROM facts WHERE {where} AND target_id IN ({changed}))
        GROUP BY target_id
        HAVING {stands})
    """


def two_sided_sql(types: Sequence[str], where: str, new: str, fields: Sequence[str]) -> str:
    """Facts of `types` matching `where`, each as it stood without its `new` rows (side -1)
    and with them (side +1), by the rules of `resolved_sql`; a side where it does not stand is
    left out. A fold's signed change in one pass over the facts it touches."""
    before_stands, before = _version(fields, "NOT is_new")
    after_stands, after = _version(fields)
    return f"""
    SELECT v.1 AS side, target_id, {", ".join(f"{c}_v AS {c}" for c in _BASE[1:])},
           {", ".join(f"v.3.{i} AS {f}" for i, f in enumerate(fields, start=1))}
    FROM (
        SELECT target_id, {_ORIGINAL},
               [(toInt8(-1), {before_stands}, tuple({", ".join(before)})),
                (toInt8(1), {after_stands}, tuple({", ".join(after)}))] AS sides
        FROM (SELECT *, {new} AS is_new FROM facts WHERE type IN {str_list(types)} AND ({where}))
        GROUP BY target_id)
    ARRAY JOIN sides AS v
    WHERE v.2
    """


def instant_bound(to_instant):
    """Render span bounds as UTC instants (for filtering facts by `occurred_at`)."""
    def bound(day: dt.date) -> str:
        at = FAR_PAST if day == BEGIN else FAR_FUTURE if day == END else to_instant(day)
        return f"toDateTime64({ts(at)}, 3, 'UTC')"
    return bound


def date32(day: dt.date) -> dt.date:
    """`day` clamped into ClickHouse's Date32 range (span bounds are date.min / date.max)."""
    return max(min(day, FAR_FUTURE.date()), FAR_PAST.date())


def day_bound(day: dt.date) -> str:
    """Render span bounds as local dates (for filtering `daily` rows by `day`)."""
    return f"toDate32('{date32(day).isoformat()}')"


def key_sql(spans: Sequence[Span], to_instant, unit: str = "scope_unit", time: str = "occurred_at",
            bound=None) -> str:
    """An expression giving each fact its rollup key, or '' when it is outside the scope.

    Units that never moved map through one `transform`; a moved unit's date ranges become
    `multiIf` branches on the fact's time. No join: the scope is a few hash lookups per row.
    """
    whole: dict[str, str] = {}
    ranged: list[Span] = []
    for span in spans:
        if span.start == BEGIN and span.end == END:
            whole[span.unit_id] = span.key
        else:
            ranged.append(span)
    if not whole and not ranged:
        return "''"
    keys = set(whole.values())
    if len(keys) == 1 and not ranged:  # one key for everything (group_by none / level)
        key = next(iter(keys))
        return f"if({unit} IN {str_list(whole)}, {str_list([key])[1:-1]}, '')"
    default = (f"transform({unit}, {str_list(whole)}, {str_list(whole.values())}, '')"
               if whole else "''")
    if not ranged:
        return default
    bound = bound or instant_bound(to_instant)
    branches = ", ".join(
        f"{unit} = '{s.unit_id}' AND {time} >= {bound(s.start)} AND {time} < {bound(s.end)}, '{s.key}'"
        for s in ranged)
    return f"multiIf({branches}, {default})"


def scoped_sql(resolved: str, spans: Sequence[Span], to_instant, unit_expr: str = "unit_id",
               time_expr: str = "occurred_at") -> str:
    """Resolved facts inside the scope, each tagged with its rollup `key`.

    A fact belongs to the scope when its unit (`unit_expr`) was under the queried unit at
    the fact's time (`time_expr`): the hierarchy in force then, not now.
    """
    return f"""
    SELECT * FROM (
        SELECT {key_sql(spans, to_instant, time=time_expr)} AS key, *
        FROM (SELECT *, {unit_expr} AS scope_unit FROM ({resolved})))
    WHERE key != ''
    """


def scoped_join_sql(resolved: str, scope: str, tz: str, unit_expr: str = "unit_id",
                    time_expr: str = "occurred_at") -> str:
    """As `scoped_sql`, with the spans read from a `scopes` subquery instead of literals."""
    day = f"toDate32(r.{time_expr}, '{tz}')"
    return f"""
    SELECT s.scope_key AS key, r.* FROM (SELECT *, {unit_expr} AS scope_unit FROM ({resolved})) AS r
    INNER JOIN ({scope}) AS s ON r.scope_unit = s.unit_id
    WHERE {day} >= s.start_day AND {day} < s.end_day
    """
