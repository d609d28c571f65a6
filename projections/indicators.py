"""The indicator query service (DESIGN §7): every catalogue figure for a unit and period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.hierarchy import BEGIN, END, Hierarchy, Span
from domain.indicators import (
    CATALOGUE,
    LEVEL_LABELS,
    METHOD_LABELS,
    largest_remainder_shares,
    percent,
)
from projections.counted import ADDITIVE, COUNTED_TYPES, DISTINCT
from projections.daily import WATERMARK
from projections.hierarchy import HierarchySource
from projections.resolved import (
    FAR_FUTURE,
    FAR_PAST,
    FIELDS,
    day_bound,
    key_sql,
    resolved_sql,
    scoped_join_sql,
    scoped_sql,
    ts,
)
from projections.scopes import SMALL, ScopeTable
from projections.store import API_QUERY_SETTINGS, ClickHouseStore

Scope = Literal["self", "subtree"]
GroupBy = Literal["none", "child", "level", "month"]

COUNT_EXPRS = {**{name: f"countIf({cond})" for name, cond in ADDITIVE.items()},
               **{name: f"uniqExactIf(person_id, {cond})" for name, cond in DISTINCT.items()}}


@dataclass(frozen=True)
class IndicatorQuery:
    unit: str
    scope: Scope = "subtree"
    from_: dt.date | None = None
    to: dt.date | None = None
    as_of: dt.datetime | None = None
    group_by: GroupBy = "none"


class IndicatorService:
    """Computes indicator rows with SQL over the `facts` projection."""

    def __init__(self, store: ClickHouseStore, hierarchy: HierarchySource, timezone: str = "Asia/Shanghai"):
        self.store = store
        self.hierarchy = hierarchy
        self.tz = ZoneInfo(timezone)
        self.tz_name = timezone
        self.scopes = ScopeTable(store)

    def local_midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.UTC)

    def compute(self, q: IndicatorQuery) -> dict[str, Any]:
        """Return the DESIGN §7 response for one query."""
        as_of = q.as_of or dt.datetime.now(dt.UTC)
        tree = self.hierarchy.at(as_of)
        tree.get(q.unit)
        spans = self._spans(tree, q)
        lo = self.local_midnight(q.from_) if q.from_ else FAR_PAST
        hi = self.local_midnight(q.to) if q.to else FAR_FUTURE
        as_of_day = as_of.astimezone(self.tz).date()
        due_lo = q.from_ or dt.date(1900, 1, 1)
        due_hi = q.to or (as_of_day + dt.timedelta(days=1))
        scope = self.scopes.subquery(spans) if len(spans) > SMALL else None
        ctx = _Ctx(spans, lo, hi, as_of, as_of_day, due_lo, due_hi, q.group_by, self, q.from_, q.to, scope)

        counts = ctx.counts() if q.as_of is not None else ctx.live_counts()
        rows: dict[str, dict[str, Any]] = {}
        for part in (counts, ctx.dispositions(), ctx.suggestions(), ctx.rectification(),
                     ctx.tasks()):
            for key, values in part.items():
                rows.setdefault(key, {}).update(values)
        for key in self._default_keys(tree, q, as_of_day):
            rows.setdefault(key, {})
        return {
            "unit": q.unit,
            "scope": q.scope,
            "from": q.from_.isoformat() if q.from_ else None,
            "to": q.to.isoformat() if q.to else None,
            "as_of": as_of.isoformat(),
            "group_by": q.group_by,
            "rows": [{"key": key, "label": self._label(tree, q, key), "indicators": _finish(rows[key])}
                     for key in sorted(rows, key=lambda k: (k != q.unit, k))],
        }

    def _spans(self, tree: Hierarchy, q: IndicatorQuery) -> list[Span]:
        spans = ([Span(q.unit, BEGIN, END, q.unit)] if q.scope == "self"
                 else tree.subtree_spans(q.unit))
        if q.group_by == "none":
            return [Span(s.unit_id, s.start, s.end, q.unit) for s in spans]
        if q.group_by == "level":
            return [Span(s.unit_id, s.start, s.end, tree.get(s.unit_id).level) for s in spans]
        return spans

    def _default_keys(self, tree: Hierarchy, q: IndicatorQuery, today: dt.date) -> list[str]:
        if q.group_by == "none":
            return [q.unit]
        if q.group_by == "child":
            return [q.unit] + ([] if q.scope == "self" else tree.children(q.unit, today))
        return []

    def _label(self, tree: Hierarchy, q: IndicatorQuery, key: str) -> str:
        if q.group_by in ("none", "child") and key in tree:
            return tree.get(key).name + ("（本级）" if q.group_by == "child" and key == q.unit else "")
        return LEVEL_LABELS.get(key, key)


@dataclass
class _Ctx:
    spans: list[Span]
    lo: dt.datetime
    hi: dt.datetime
    as_of: dt.datetime
    as_of_day: dt.date
    due_lo: dt.date
    due_hi: dt.date
    group_by: str
    service: IndicatorService
    from_day: dt.date | None = None
    to_day: dt.date | None = None
    scope: str | None = None  # a `scopes` subquery for large scopes; literals otherwise

    def key(self, time_col: str = "occurred_at") -> str:
        if self.group_by == "month":
            return f"formatDateTime(toTimeZone({time_col}, '{self.service.tz_name}'), '%Y-%m')"
        return "key"

    def due_key(self) -> str:
        return "formatDateTime(due_date, '%Y-%m')" if self.group_by == "month" else "key"

    def period(self, col: str = "occurred_at") -> str:
        return (f"{col} >= toDateTime64({ts(self.lo)}, 3, 'UTC') "
                f"AND {col} < toDateTime64({ts(self.hi)}, 3, 'UTC')")

    def scoped(self, types: tuple[str, ...], unit_expr: str = "unit_id",
               fields: tuple[str, ...] | None = None) -> str:
        resolved = resolved_sql(types, self.as_of, fields=FIELDS if fields is None else fields)
        if self.scope:
            return scoped_join_sql(resolved, self.scope, self.service.tz_name, unit_expr)
        return scoped_sql(resolved, self.spans, self.service.local_midnight, unit_expr)

    def run(self, sql: str) -> dict[str, dict[str, Any]]:
        result = self.service.store.dicts(sql, settings=API_QUERY_SETTINGS)
        return {str(r.pop("k")): r for r in result}

    def counts(self) -> dict[str, dict[str, Any]]:
        exprs = ",\n".join(f"{sql} AS `{name}`" for name, sql in COUNT_EXPRS.items())
        return self.run(f"SELECT {self.key()} AS k, {exprs} FROM ({self.scoped(COUNTED_TYPES)}) "
                        f"WHERE {self.period()} GROUP BY k")

    def live_counts(self) -> dict[str, dict[str, Any]]:
        """The same figures as `counts` for as_of = now, summed from the `daily` folds."""
        key = "formatDateTime(day, '%Y-%m')" if self.group_by == "month" else "scope_key"
        persons = ",\n".join(f"uniqExactIf(person_id, pn > 0 AND {cond}) AS `{name}`"
                              for name, cond in DISTINCT.items())
        days = " AND ".join([f"person_type != {WATERMARK}"] + [f"day {op} {day_bound(d)}" for op, d in
                                      ((">=", self.from_day), ("<", self.to_day)) if d is not None])
        found = self.run(f"""
            SELECT k, sumMap(n) AS _n, {persons} FROM (
                SELECT {key} AS k, person_type AS type, person_kind AS kind, person_rank AS rank,
                       person_id, sumMap(n) AS n, sum(pn) AS pn
                FROM {self._daily_in_scope(days)}
                GROUP BY k, type, kind, rank, person_id
                HAVING notEmpty(n.1) OR pn != 0)  -- folds that cancelled out: no facts left
            GROUP BY k""")
        for values in found.values():
            names, counts = values.pop("_n")
            values.update(zip(names, counts, strict=True))
        return found

    def _daily_in_scope(self, days: str) -> str:
        if self.scope:
            return (f"daily AS d INNER JOIN ({self.scope}) AS s USING unit_id "
                    f"WHERE {days} AND d.day >= s.start_day AND d.day < s.end_day")
        scope = key_sql(self.spans, self.service.local_midnight, "unit_id", "day", day_bound)
        return f"(SELECT *, {scope} AS scope_key FROM daily WHERE {days}) WHERE scope_key != ''"

    def dispositions(self) -> dict[str, dict[str, Any]]:
        """Latest disposition per clue (after corrections) among those in the period."""
        by_method = ", ".join(f"countIf(m = '{m}') AS `clues.disposed.{m}`" for m in METHOD_LABELS)
        return self.run(f"""
            SELECT k, count() AS `clues.disposed`, {by_method} FROM (
                SELECT subject_id, argMax({self.key()}, (occurred_at, recorded_at)) AS k,
                       argMax(method, (occurred_at, recorded_at)) AS m
                FROM ({self.scoped(("clue_disposed",), fields=("method",))}) WHERE {self.period()}
                GROUP BY subject_id)
            GROUP BY k""")

    def _closures(self, event_type: str) -> str:
        return (f"SELECT subject_id, min(occurred_at) AS closed_at, 1 AS closed "
                f"FROM ({resolved_sql((event_type,), self.as_of, fields=())}) GROUP BY subject_id")

    def _due_in_period(self) -> str:
        return (f"due_date >= toDate('{self.due_lo.isoformat()}') "
                f"AND due_date < toDate('{self.due_hi.isoformat()}')")

    def suggestions(self) -> dict[str, dict[str, Any]]:
        """Due in the period, and closed on or before the due date (按期办结)."""
        tz = self.service.tz_name
        return self.run(f"""
            SELECT {self.due_key()} AS k,
                   count() AS `suggestions.due`,
                   countIf(c.closed = 1 AND toDate(c.closed_at, '{tz}') <= due_date) AS `suggestions.closed_on_time`
            FROM ({self.scoped(("suggestion_issued",), fields=("due_date",))}) AS i
            LEFT JOIN ({self._closures("suggestion_closed")}) AS c ON i.subject_id = c.subject_id
            WHERE {self._due_in_period()}
            GROUP BY k""")

    def rectification(self) -> dict[str, dict[str, Any]]:
        """Items opened in the period: overdue (open past due at as_of) and closed share."""
        return self.run(f"""
            SELECT {self.key()} AS k,
                   countIf(c.closed = 0 AND due_date < toDate('{self.as_of_day.isoformat()}')) AS `rectification.overdue`,
                   countIf(c.closed = 1) AS `_rect_done`
            FROM ({self.scoped(("rectification_opened",), fields=("due_date",))}) AS i
            LEFT JOIN ({self._closures("rectification_closed")}) AS c ON i.subject_id = c.subject_id
            WHERE {self.period("i.occurred_at")}
            GROUP BY k""")

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Tasks assigned in the period, attributed to the assignee unit."""
        progress = (f"SELECT subject_id, argMax(percent, (occurred_at, recorded_at)) AS pct, 1 AS reported "
                    f"FROM ({resolved_sql(('task_progress_reported',), self.as_of, fields=('percent',))}) GROUP BY subject_id")
        return self.run(f"""
            SELECT {self.key()} AS k,
                   countIf(c.closed = 1) AS `tasks.completed`,
                   countIf(c.closed = 0 AND due_date < toDate('{self.as_of_day.isoformat()}')) AS `tasks.overdue`,
                   sum(if(c.closed = 1, 100, if(p.reported = 1, ifNull(p.pct, 0), 0))) AS `_task_progress_sum`,
                   count() AS `_tasks_in_scope`
            FROM ({self.scoped(("task_assigned",), "assignee_unit", ("due_date", "assignee_unit"))}) AS i
            LEFT JOIN ({self._closures("task_completed")}) AS c ON i.subject_id = c.subject_id
            LEFT JOIN ({progress}) AS p ON i.subject_id = p.subject_id
            WHERE {self.period("i.occurred_at")}
            GROUP BY k""")


def _finish(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill every catalogue id, then derive shares and rates from the counts."""
    values: dict[str, Any] = {}
    for item in CATALOGUE:
        values[item.id] = int(raw.get(item.id, 0) or 0)
    forms = [values[f"four_forms.form{n}"] for n in range(1, 5)]
    for n, share in enumerate(largest_remainder_shares(forms), start=1):
        values[f"four_forms.form{n}.share"] = share
    values["suggestions.on_time_rate"] = percent(values["suggestions.closed_on_time"], values["suggestions.due"])
    assigned_in_scope = int(raw.get("_tasks_in_scope", 0) or 0)
    values["tasks.assigned"] = assigned_in_scope
    values["tasks.completion_rate"] = percent(values["tasks.completed"], assigned_in_scope)
    progress_sum = float(raw.get("_task_progress_sum", 0) or 0)
    values["tasks.avg_progress"] = (round(progress_sum / assigned_in_scope + 1e-9, 1)
                                    if assigned_in_scope else None)
    values["rectification.completion_rate"] = percent(int(raw.get("_rect_done", 0) or 0),
                                                      values["rectification.opened"])
    return values
