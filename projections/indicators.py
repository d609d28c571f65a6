"""The indicator query service (DESIGN §7): every catalogue figure for a unit and period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.events import RANKS
from domain.hierarchy import BEGIN, END, Hierarchy, Span
from domain.indicators import (
    CATALOGUE,
    LEVEL_LABELS,
    METHOD_LABELS,
    TALK_LABELS,
    largest_remainder_shares,
    percent,
)
from projections.hierarchy import HierarchySource
from projections.resolved import FAR_FUTURE, FAR_PAST, resolved_sql, scoped_sql, ts
from projections.store import API_QUERY_SETTINGS, ClickHouseStore

Scope = Literal["self", "subtree"]
GroupBy = Literal["none", "child", "level", "month"]

COUNTED_TYPES = ("petition_received", "clue_registered", "case_filed", "case_closed",
                 "sanction_imposed", "four_forms_applied", "transferred_to_procuratorate",
                 "talk_conducted", "integrity_file_updated", "rectification_opened",
                 "rectification_closed", "suggestion_issued")


def _count_exprs() -> dict[str, str]:
    e = {
        "petitions.received": "countIf(type = 'petition_received')",
        "petitions.accusation": "countIf(type = 'petition_received' AND category = 'accusation')",
        "clues.registered": "countIf(type = 'clue_registered')",
        "cases.filed": "countIf(type = 'case_filed')",
        "cases.closed": "countIf(type = 'case_closed')",
        "sanctions.persons": "uniqExactIf(person_id, type = 'sanction_imposed')",
        "sanctions.party": "uniqExactIf(person_id, type = 'sanction_imposed' AND kind = 'party')",
        "sanctions.government": "uniqExactIf(person_id, type = 'sanction_imposed' AND kind = 'government')",
        "four_forms.total": "countIf(type = 'four_forms_applied')",
        "transfers.procuratorate": "countIf(type = 'transferred_to_procuratorate')",
        "suggestions.issued": "countIf(type = 'suggestion_issued')",
        "rectification.opened": "countIf(type = 'rectification_opened')",
        "rectification.closed": "countIf(type = 'rectification_closed')",
        "talks.total": "countIf(type = 'talk_conducted')",
        "integrity_files.persons": "uniqExactIf(person_id, type = 'integrity_file_updated')",
    }
    for r in RANKS:
        e[f"cases.filed.{r}"] = f"countIf(type = 'case_filed' AND rank = '{r}')"
        e[f"sanctions.{r}"] = f"uniqExactIf(person_id, type = 'sanction_imposed' AND rank = '{r}')"
    for n in range(1, 5):
        e[f"four_forms.form{n}"] = f"countIf(type = 'four_forms_applied' AND form = {n})"
    for k in TALK_LABELS:
        e[f"talks.{k}"] = f"countIf(type = 'talk_conducted' AND kind = '{k}')"
    return e


COUNT_EXPRS = _count_exprs()


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
        ctx = _Ctx(spans, lo, hi, as_of, as_of_day, due_lo, due_hi, q.group_by, self)

        rows: dict[str, dict[str, Any]] = {}
        for part in (ctx.counts(), ctx.dispositions(), ctx.suggestions(), ctx.rectification(),
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

    def key(self, time_col: str = "occurred_at") -> str:
        if self.group_by == "month":
            return f"formatDateTime(toTimeZone({time_col}, '{self.service.tz_name}'), '%Y-%m')"
        return "key"

    def due_key(self) -> str:
        return "formatDateTime(due_date, '%Y-%m')" if self.group_by == "month" else "key"

    def period(self, col: str = "occurred_at") -> str:
        return (f"{col} >= toDateTime64({ts(self.lo)}, 3, 'UTC') "
                f"AND {col} < toDateTime64({ts(self.hi)}, 3, 'UTC')")

    def scoped(self, types: tuple[str, ...], unit_expr: str = "unit_id") -> str:
        return scoped_sql(resolved_sql(types, self.as_of), self.spans,
                          self.service.local_midnight, unit_expr)

    def run(self, sql: str) -> dict[str, dict[str, Any]]:
        result = self.service.store.dicts(sql, settings=API_QUERY_SETTINGS)
        return {str(r.pop("k")): r for r in result}

    def counts(self) -> dict[str, dict[str, Any]]:
        exprs = ",\n".join(f"{sql} AS `{name}`" for name, sql in COUNT_EXPRS.items())
        return self.run(f"SELECT {self.key()} AS k, {exprs} FROM ({self.scoped(COUNTED_TYPES)}) "
                        f"WHERE {self.period()} GROUP BY k")

    def dispositions(self) -> dict[str, dict[str, Any]]:
        """Latest disposition per clue (after corrections) among those in the period."""
        by_method = ", ".join(f"countIf(m = '{m}') AS `clues.disposed.{m}`" for m in METHOD_LABELS)
        return self.run(f"""
            SELECT k, count() AS `clues.disposed`, {by_method} FROM (
                SELECT subject_id, argMax({self.key()}, (occurred_at, recorded_at)) AS k,
                       argMax(method, (occurred_at, recorded_at)) AS m
                FROM ({self.scoped(("clue_disposed",))}) WHERE {self.period()}
                GROUP BY subject_id)
            GROUP BY k""")

    def _closures(self, event_type: str) -> str:
        return (f"SELECT subject_id, min(occurred_at) AS closed_at, 1 AS closed "
                f"FROM ({resolved_sql((event_type,), self.as_of)}) GROUP BY subject_id")

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
            FROM ({self.scoped(("suggestion_issued",))}) AS i
            LEFT JOIN ({self._closures("suggestion_closed")}) AS c ON i.subject_id = c.subject_id
            WHERE {self._due_in_period()}
            GROUP BY k""")

    def rectification(self) -> dict[str, dict[str, Any]]:
        """Items opened in the period: overdue (open past due at as_of) and closed share."""
        return self.run(f"""
            SELECT {self.key()} AS k,
                   countIf(c.closed = 0 AND due_date < toDate('{self.as_of_day.isoformat()}')) AS `rectification.overdue`,
                   countIf(c.closed = 1) AS `_rect_done`
            FROM ({self.scoped(("rectification_opened",))}) AS i
            LEFT JOIN ({self._closures("rectification_closed")}) AS c ON i.subject_id = c.subject_id
            WHERE {self.period("i.occurred_at")}
            GROUP BY k""")

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Tasks assigned in the period, attributed to the assignee unit."""
        progress = (f"SELECT subject_id, argMax(percent, (occurred_at, recorded_at)) AS pct, 1 AS reported "
                    f"FROM ({resolved_sql(('task_progress_reported',), self.as_of)}) GROUP BY subject_id")
        return self.run(f"""
            SELECT {self.key()} AS k,
                   countIf(c.closed = 1) AS `tasks.completed`,
                   countIf(c.closed = 0 AND due_date < toDate('{self.as_of_day.isoformat()}')) AS `tasks.overdue`,
                   sum(if(c.closed = 1, 100, if(p.reported = 1, ifNull(p.pct, 0), 0))) AS `_task_progress_sum`,
                   count() AS `_tasks_in_scope`
            FROM ({self.scoped(("task_assigned",), "assignee_unit")}) AS i
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
