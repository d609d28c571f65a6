"""The indicator query service (DESIGN §7): every catalogue figure for a unit and period."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
from projections.items import WATERMARK as ITEM_WATERMARK
from projections.items import current_sql, state_sql
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


# The two parts of a request (counts, items) run side by side on two clients: each part's
# time is mostly ClickHouse planning it, single-threaded, so two cores halve the wait.
_PARTS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="indicator-part")


class _SideClients:
    """Spare clients on the same store, one per request in flight, reused."""

    def __init__(self, url: str):
        self.url = url
        self.free: queue.SimpleQueue[ClickHouseStore] = queue.SimpleQueue()

    @contextmanager
    def client(self) -> Iterator[ClickHouseStore]:
        try:
            store = self.free.get_nowait()
        except queue.Empty:
            store = ClickHouseStore(self.url)
        try:
            yield store
        finally:
            self.free.put(store)


@dataclass(frozen=True)
class IndicatorQuery:
    unit: str
    scope: Scope = "subtree"
    from_: dt.date | None = None
    to: dt.date | None = None
    as_of: dt.datetime | None = None
    group_by: GroupBy = "none"


class IndicatorService:
    """Computes indicator rows: live from the folds (`daily`, `items`), `as_of` from `facts`."""

    def __init__(self, store: ClickHouseStore, hierarchy: HierarchySource, timezone: str = "Asia/Shanghai"):
        self.store = store
        self.hierarchy = hierarchy
        self.tz = ZoneInfo(timezone)
        self.tz_name = timezone
        self.scopes = ScopeTable(store)
        self.side = _SideClients(store.url)
        self._shapes_lock = threading.Lock()
        self._shapes: tuple[Hierarchy | None, dict] = (None, {})

    def local_midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.UTC)

    def compute(self, q: IndicatorQuery) -> dict[str, Any]:
        """Return the DESIGN §7 response for one query."""
        as_of = q.as_of or dt.datetime.now(dt.UTC)
        tree = self.hierarchy.at(as_of)
        tree.get(q.unit)
        as_of_day = as_of.astimezone(self.tz).date()
        spans, scope, default_keys = self._shape(tree, q, as_of_day)
        lo = self.local_midnight(q.from_) if q.from_ else FAR_PAST
        hi = self.local_midnight(q.to) if q.to else FAR_FUTURE
        due_lo = q.from_ or dt.date(1900, 1, 1)
        due_hi = q.to or (as_of_day + dt.timedelta(days=1))
        ctx = _Ctx(spans, lo, hi, as_of, as_of_day, due_lo, due_hi, q.group_by, self, q.from_, q.to, scope)

        live = q.as_of is None
        with self.side.client() as side:
            items = _PARTS.submit(ctx.items, live, side)
            counts = ctx.live_counts() if live else ctx.counts()
            parts = (counts, items.result())
        rows: dict[str, dict[str, Any]] = {}
        for part in parts:
            for key, values in part.items():
                rows.setdefault(key, {}).update(values)
        for key in default_keys:
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

    def _shape(self, tree: Hierarchy, q: IndicatorQuery, today: dt.date
               ) -> tuple[list[Span], str | None, list[str]]:
        """The query's spans, its `scopes` subquery (large scopes) and the keys every answer
        shows; remembered for the current hierarchy, where dashboards ask the same again."""
        key = (q.unit, q.scope, q.group_by, today)
        with self._shapes_lock:
            if self._shapes[0] is not tree:
                self._shapes = (tree, {})
            known = self._shapes[1].get(key)
        if known:
            return known
        spans = self._spans(tree, q)
        shape = (spans, self.scopes.subquery(spans) if len(spans) > SMALL else None,
                 self._default_keys(tree, q, today))
        with self._shapes_lock:
            if self._shapes[0] is tree and len(self._shapes[1]) < 4096:
                self._shapes[1][key] = shape
        return shape

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

    def key(self) -> str:
        if self.group_by == "month":
            return f"formatDateTime(toTimeZone(occurred_at, '{self.service.tz_name}'), '%Y-%m')"
        return "key"

    def period(self) -> str:
        return (f"occurred_at >= toDateTime64({ts(self.lo)}, 3, 'UTC') "
                f"AND occurred_at < toDateTime64({ts(self.hi)}, 3, 'UTC')")

    def scoped(self, types: tuple[str, ...]) -> str:
        resolved = resolved_sql(types, self.as_of, fields=FIELDS)
        if self.scope:
            return scoped_join_sql(resolved, self.scope, self.service.tz_name)
        return scoped_sql(resolved, self.spans, self.service.local_midnight)

    def run(self, sql: str, store: ClickHouseStore | None = None) -> dict[str, dict[str, Any]]:
        result = (store or self.service.store).dicts(sql, settings=API_QUERY_SETTINGS)
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
                FROM {self._in_scope("daily", days)}
                GROUP BY k, type, kind, rank, person_id
                HAVING notEmpty(n.1) OR pn != 0)  -- folds that cancelled out: no facts left
            GROUP BY k""")
        for values in found.values():
            names, counts = values.pop("_n")
            values.update(zip(names, counts, strict=True))
        return found

    def _in_scope(self, source: str, where: str) -> str:
        """Rows of `source` (unit_id, day, …) meeting `where`, in the scope, with its `scope_key`."""
        if self.scope:
            return (f"{source} AS d INNER JOIN ({self.scope}) AS s USING unit_id "
                    f"WHERE {where} AND d.day >= s.start_day AND d.day < s.end_day")
        scope = key_sql(self.spans, self.service.local_midnight, "unit_id", "day", day_bound)
        return f"(SELECT *, {scope} AS scope_key FROM {source} WHERE {where}) WHERE scope_key != ''"

    def items(self, live: bool, store: ClickHouseStore | None = None) -> dict[str, dict[str, Any]]:
        """Clue dispositions, suggestions, rectification and tasks, from one row per item.

        Live: the `items` folds; otherwise the same item rows derived from `facts` at as_of."""
        tz = f"'{self.service.tz_name}'"
        if live:
            source = "items"
        else:
            source = f"(SELECT *, toInt64(1) AS n FROM ({state_sql(current_sql(self.as_of), tz)}))"
        day = " AND ".join(["1"] + [f"day {op} {day_bound(d)}" for op, d in
                                    ((">=", self.from_day), ("<", self.to_day)) if d is not None])
        due = f"due >= {day_bound(self.due_lo)} AND due < {day_bound(self.due_hi)}"
        today = day_bound(self.as_of_day)
        key = ("if(kind = 'suggestion', formatDateTime(due, '%Y-%m'), formatDateTime(day, '%Y-%m'))"
               if self.group_by == "month" else "scope_key")
        methods = ", ".join(f"sumIf(n, kind = 'clue' AND method = '{m}') AS `clues.disposed.{m}`"
                            for m in METHOD_LABELS)
        where = f"kind != {ITEM_WATERMARK} AND if(kind = 'suggestion', {due}, {day})"
        return self.run(f"""
            SELECT k, sumIf(n, kind = 'clue') AS `clues.disposed`, {methods},
                   sumIf(n, kind = 'suggestion') AS `suggestions.due`,
                   sumIf(n, kind = 'suggestion' AND is_closed = 1 AND closed_day <= due)
                       AS `suggestions.closed_on_time`,
                   sumIf(n, kind = 'rectification' AND is_closed = 0 AND due < {today}) AS `rectification.overdue`,
                   sumIf(n, kind = 'rectification' AND is_closed = 1) AS `_rect_done`,
                   sumIf(n, kind = 'task' AND is_closed = 1) AS `tasks.completed`,
                   sumIf(n, kind = 'task' AND is_closed = 0 AND due < {today}) AS `tasks.overdue`,
                   sumIf(pct, kind = 'task') AS `_task_progress_hundredths`,
                   sumIf(n, kind = 'task') AS `_tasks_in_scope`
            FROM (
                SELECT {key} AS k, kind, due, is_closed, closed_day, method, sum(n) AS n, sum(pct) AS pct
                FROM {self._in_scope(source, where)}
                GROUP BY k, kind, due, is_closed, closed_day, method
                HAVING n != 0 OR pct != 0)  -- folds that cancelled out: no items left
            GROUP BY k""", store)


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
    progress_sum = int(raw.get("_task_progress_hundredths", 0) or 0) / 100
    values["tasks.avg_progress"] = (round(progress_sum / assigned_in_scope + 1e-9, 1)
                                    if assigned_in_scope else None)
    values["rectification.completion_rate"] = percent(int(raw.get("_rect_done", 0) or 0),
                                                      values["rectification.opened"])
    return values
