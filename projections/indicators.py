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
from domain.indicators import CATALOGUE, largest_remainder_shares, percent
from domain.labels import LEVEL_LABELS
from projections.ancestry import AncestryTable
from projections.counted import ADDITIVE, COUNTED_TYPES, DISTINCT, PERSON_KEY, PERSON_ROWS, PERSONS
from projections.daily import DailyFolds
from projections.folds import MONTHLY, recorded
from projections.hierarchy import HierarchySource
from projections.items import WATERMARK as ITEM_WATERMARK
from projections.items import ItemFolds, current_sql, state_sql
from projections.resolved import (
    FAR_FUTURE,
    FAR_PAST,
    FIELDS,
    day_bound,
    key_sql,
    resolved_sql,
    scoped_join_sql,
    scoped_sql,
    str_list,
    ts,
)
from projections.scopes import SMALL, ScopeTable
from projections.store import API_QUERY_SETTINGS, ClickHouseStore

Scope = Literal["self", "subtree"]
GroupBy = Literal["none", "child", "level", "month"]

# The `as_of` path's figures from `facts`. Persons are counted by the same 64-bit hash as the
# live path's (`PERSON_KEY`), so the two paths agree by definition, a hash collision included.
COUNT_EXPRS = {**{name: f"countIf({cond})" for name, cond in ADDITIVE.items()},
               **{name: f"uniqExactIf({PERSON_KEY}, {cond})" for name, cond in DISTINCT.items()}}
# The live distinct-person counts, one column per indicator over `daily`'s person rows: a
# person counts where their merged count is positive. `daily` keeps each person id's 64-bit
# CityHash (`person_key`): ClickHouse's exact count of strings is itself a count of 128-bit
# hashes, and 64 bits halve the work (a province on a 10M ledger: 25 -> 17 ms) at a chance of
# two of its ~10^5 persons sharing a hash below 10^-9; stored, not hashed per read, a
# province's ten years (3M person rows): 75 -> 55 ms.
_LIVE_PERSONS = ", ".join(f"uniqExactIf(person_key, pn > 0 AND {cond})" for cond in PERSON_ROWS.values())


# The parts of a request (live: counts, persons, items) run side by side on their own clients:
# each part's time is mostly ClickHouse planning it, single-threaded, so two cores halve the wait.
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
        self.trees = AncestryTable(store, hierarchy)
        self.side = _SideClients(store.url)
        self._shapes_lock = threading.Lock()
        self._shapes: tuple[Hierarchy | None, dict] = (None, {})

    def local_midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.UTC)

    def warm(self) -> None:
        """Read up front what the first request would otherwise wait for (a server calls this
        before it serves): the hierarchy, whether the folds were written under it, the two
        spare clients a live request's parts run on, and one live request of each kind: the
        first of a kind, whatever its unit, also waits for ClickHouse to load the primary keys
        and marks of what it reads (the first request with a period on a 10M ledger: 45 ms,
        later 17). Not when the folds are behind the hierarchy: the `facts` path is slow on a
        large ledger and warms nothing the live path reads."""
        tree = self.hierarchy.at()
        live = self._folds_current(tree)
        with self.side.client(), self.side.client():
            pass
        today = dt.datetime.now(self.tz).date()
        for root in tree.roots()[:1] if live else []:
            for shape in ({}, {"group_by": "child"}, {"group_by": "month"},
                          {"from_": today.replace(day=1), "to": today + dt.timedelta(days=1)}):
                self.compute(IndicatorQuery(root, **shape), tree)

    def compute(self, q: IndicatorQuery, current: Hierarchy | None = None) -> dict[str, Any]:
        """Return the DESIGN §7 response for one query; `current` is the hierarchy now, when
        the caller has just read it (each read is a query: ~5 ms on a 1M ledger)."""
        as_of = q.as_of or dt.datetime.now(dt.UTC)
        tree = current if current is not None and q.as_of is None else self.hierarchy.at(as_of)
        tree.get(q.unit)
        as_of_day = as_of.astimezone(self.tz).date()
        # Live figures come from the folds, when they were written under this hierarchy (a
        # unit that just moved is refolded by the worker; until then, recompute from facts).
        live = q.as_of is None and self._folds_current(tree)
        spans, scope = (None, None) if live else self._shape(tree, q)
        lo = self.local_midnight(q.from_) if q.from_ else FAR_PAST
        hi = self.local_midnight(q.to) if q.to else FAR_FUTURE
        due_lo = q.from_ or dt.date(1900, 1, 1)
        due_hi = q.to or (as_of_day + dt.timedelta(days=1))
        ctx = _Ctx(q, tree, spans, lo, hi, as_of, as_of_day, due_lo, due_hi, self, scope)

        with self.side.client() as side:
            items = _PARTS.submit(ctx.items, live, side)
            if live:
                with self.side.client() as third:
                    persons = _PARTS.submit(ctx.live_persons, third)
                    parts = (ctx.live_counts(), persons.result(), items.result())
            else:
                parts = (ctx.counts(), items.result())
        rows: dict[str, dict[str, Any]] = {}
        for part in parts:
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

    def _folds_current(self, tree: Hierarchy) -> bool:
        """True when both live folds were written under `tree`. Remembered once true: the
        folds change version only when the hierarchy in `facts` does, and then `tree` is a
        new object (HierarchySource rebuilds it when its fingerprint changes)."""
        def stamped() -> bool | None:
            names = [f"{folds.kind}.tree" for folds in (DailyFolds, ItemFolds)]
            stamps = recorded(self.store, names)
            tree_id = self.trees.tree_id(tree)
            return all(stamps.get(name) == tree_id for name in names) or None
        return bool(self._memo(tree, ("current",), stamped))

    def _memo(self, tree: Hierarchy, key: tuple, make):
        """`make()`, remembered for the current hierarchy, where dashboards ask the same again
        (unless it is None)."""
        with self._shapes_lock:
            if self._shapes[0] is not tree:
                self._shapes = (tree, {})
            known = self._shapes[1].get(key)
        if known is None:
            known = make()
            with self._shapes_lock:
                if known is not None and self._shapes[0] is tree and len(self._shapes[1]) < 4096:
                    self._shapes[1][key] = known
        return known

    def _shape(self, tree: Hierarchy, q: IndicatorQuery) -> tuple[list[Span], str | None]:
        """The query's spans and its `scopes` subquery (large scopes): the `facts` path's scope."""
        def make():
            spans = self._spans(tree, q)
            return spans, self.scopes.subquery(spans) if len(spans) > SMALL else None
        return self._memo(tree, ("shape", q.unit, q.scope, q.group_by), make)

    def _spans(self, tree: Hierarchy, q: IndicatorQuery) -> list[Span]:
        spans = ([Span(q.unit, BEGIN, END, q.unit)] if q.scope == "self"
                 else tree.subtree_spans(q.unit))
        if q.group_by == "none":
            return [Span(s.unit_id, s.start, s.end, q.unit) for s in spans]
        if q.group_by == "level":
            return [Span(s.unit_id, s.start, s.end, tree.get(s.unit_id).level) for s in spans]
        return spans

    def _default_keys(self, tree: Hierarchy, q: IndicatorQuery, today: dt.date) -> list[str]:
        """The keys every answer shows, with or without figures."""
        if q.group_by == "none":
            return [q.unit]
        if q.group_by == "child":
            return self._memo(tree, ("keys", q.unit, q.scope, today), lambda: [q.unit] + (
                [] if q.scope == "self" else tree.children(q.unit, today)))
        return []

    def _label(self, tree: Hierarchy, q: IndicatorQuery, key: str) -> str:
        if q.group_by in ("none", "child") and key in tree:
            return tree.get(key).name + ("（本级）" if q.group_by == "child" and key == q.unit else "")
        return LEVEL_LABELS.get(key, key)


@dataclass
class _Ctx:
    q: IndicatorQuery
    tree: Hierarchy
    spans: list[Span] | None  # the `facts` path's scope (None on the live path)
    lo: dt.datetime
    hi: dt.datetime
    as_of: dt.datetime
    as_of_day: dt.date
    due_lo: dt.date
    due_hi: dt.date
    service: IndicatorService
    scope: str | None = None  # a `scopes` subquery for large scopes; literals otherwise

    def key(self) -> str:
        if self.q.group_by == "month":
            return f"formatDateTime(toTimeZone(occurred_at, '{self.service.tz_name}'), '%Y-%m')"
        return "key"

    def period(self) -> str:
        return (f"occurred_at >= toDateTime64({ts(self.lo)}, 3, 'UTC') "
                f"AND occurred_at < toDateTime64({ts(self.hi)}, 3, 'UTC')")

    def days(self) -> str:
        """The query's period as a condition on a fold row's local `day`."""
        return _between("day", (self.q.from_, self.q.to))

    def scoped(self, types: tuple[str, ...]) -> str:
        resolved = resolved_sql(types, self.as_of, fields=FIELDS)
        if self.scope:
            return scoped_join_sql(resolved, self.scope, self.service.tz_name)
        return scoped_sql(resolved, self.spans, self.service.local_midnight)

    def run(self, sql: str, store: ClickHouseStore | None = None) -> list[tuple]:
        return (store or self.service.store).rows(sql, settings=API_QUERY_SETTINGS)

    def counts(self) -> dict[str, dict[str, Any]]:
        """Every count figure from `facts` as known at `as_of`."""
        exprs = ",\n".join(f"{sql} AS `{name}`" for name, sql in COUNT_EXPRS.items())
        result = self.service.store.dicts(
            f"SELECT {self.key()} AS k, {exprs} FROM ({self.scoped(COUNTED_TYPES)}) "
            f"WHERE {self.period()} GROUP BY k", settings=API_QUERY_SETTINGS)
        return {str(r.pop("k")): r for r in result}

    # -- the live path: one unit's rows of the folds, by primary key ----------------------------
    def live_rows(self, month: str = "formatDateTime(day, '%Y-%m')") -> tuple[str, str, str]:
        """(key expression, condition on unit and scope, family of daily rows) selecting the
        query's rows of a live fold table; the family's monthly rows are `family + MONTHLY`."""
        q, unit = self.q, _literal(self.q.unit)
        # A subtree's figures, whole, by month or by level, come from its rows by level. They
        # sum the same facts as its rows by child (both families are written for every unit of
        # the subtree, `AncestryTable`), in fewer rows: a unit has a few levels under it and
        # often tens of children (a real 10M ledger's city, by month: 468 monthly count rows
        # instead of 4,769; its counts 14.8 -> 8.8 ms, its items 15.2 -> 10.2). By child, and
        # a unit's own figures (its row by child), from its rows by child.
        family = "child" if q.scope == "self" or q.group_by == "child" else "level"
        where = f"unit_id = {unit}" + (f" AND scope_key = {unit}" if q.scope == "self" else "")
        level = "scope_key" if family == "level" else _literal(self.tree.get(q.unit).level)
        key = {"none": unit, "child": "scope_key", "month": month, "level": level}[q.group_by]
        return key, where, family

    def live_counts(self) -> dict[str, dict[str, Any]]:
        """The additive counts as of now, summed from `daily`: its monthly rows for the
        period's whole months, its daily rows for the rest."""
        key, where, family = self.live_rows()
        months, edges = _whole_months(self.q.from_, self.q.to)
        grains = _grains(family, _between("day", months), _any(_between("day", e) for e in edges))
        found: dict[str, dict[str, Any]] = {}
        for k, name, count in self.run(f"""
                SELECT k, name, sum(c) FROM (
                    SELECT {key} AS k, n FROM daily WHERE {where} AND person_type = '' AND {grains})
                ARRAY JOIN n.1 AS name, n.2 AS c
                GROUP BY k, name
                HAVING sum(c) != 0  -- folds that cancelled out: no facts left"""):
            found.setdefault(str(k), {})[name] = count
        return found

    def live_persons(self, store: ClickHouseStore | None = None) -> dict[str, dict[str, Any]]:
        """The distinct-person counts as of now from `daily`'s person rows: a person counts
        when their merged count (corrections and retractions applied) is positive.

        Rows of one key in several parts are merged by `FINAL`, which costs more than the
        count (a province on a 10M ledger: ~40 vs ~20 ms). It is needed only where a -1 row
        (a correction or retraction took a person out) is read: if every row read is positive,
        a key counts exactly when it has a row. So read without `FINAL`, noting the smallest
        count seen in that same read, and read again with `FINAL` only if it was negative.

        Over all time, by unit or by child, the all-time rows answer instead (`all_time_persons`)."""
        key, where, family = self.live_rows()
        q = self.q
        by_level = q.group_by == "level" and q.scope == "subtree"  # all-time rows are by unit or child
        if q.from_ is None and q.to is None and q.group_by != "month" and not by_level:
            return self.all_time_persons(store)

        def read(final: str) -> list[tuple]:
            return self.run(f"""
                SELECT {key} AS k, min(pn), {_LIVE_PERSONS}
                FROM daily {final} WHERE {where} AND family = {family!r} AND person_type NOT IN ('', 'upto')
                  AND {self.days()}
                GROUP BY k""", store)

        rows = read("")
        if any(smallest < 0 for _, smallest, *_ in rows):
            rows = read("FINAL")
        return {str(k): dict(zip(PERSONS, counts, strict=True))
                for k, _, *counts in rows if any(counts)}  # keys with someone counted, as before

    def all_time_persons(self, store: ClickHouseStore | None = None) -> dict[str, dict[str, Any]]:
        """The distinct-person counts over all time from `daily`'s all-time rows: one per person
        indicator and person (per child: 'child:all'; per subtree: 'unit:all'), a person
        counting where their merged count is positive. `FINAL` merges a person's rows of
        several parts (a live table's), which a plain read would count once per part. A real
        10M ledger's province: ~1M daily person rows read by 11 exact distinct counts, 56-100
        ms; 863k all-time rows, 11 ms."""
        key, where, _ = self.live_rows()
        family = "unit:all" if self.q.group_by == "none" and self.q.scope == "subtree" else "child:all"
        found: dict[str, dict[str, Any]] = {}
        for k, name, persons in self.run(f"""
                SELECT {key} AS k, person_type, countIf(pn > 0) AS persons
                FROM daily FINAL WHERE {where} AND family = {family!r}
                GROUP BY k, person_type
                HAVING persons > 0""", store):
            found.setdefault(str(k), {})[name] = persons
        return found

    def items(self, live: bool, store: ClickHouseStore | None = None) -> dict[str, dict[str, Any]]:
        """Clue dispositions, suggestions, rectification and tasks, from one row per item.

        Live: the `items` folds; otherwise the same item rows derived from `facts` at as_of.
        A suggestion is in the period by its due date, other items by their day."""
        month = "if(kind = 'suggestion', formatDateTime(due, '%Y-%m'), formatDateTime(day, '%Y-%m'))"
        if live:
            key, scope, family = self.live_rows(month)
            source = f"items WHERE {scope} AND kind != {ITEM_WATERMARK} AND {self._item_grains(family)}"
        else:
            due = f"due >= {day_bound(self.due_lo)} AND due < {day_bound(self.due_hi)}"
            where = f"kind != {ITEM_WATERMARK} AND if(kind = 'suggestion', {due}, {self.days()})"
            key = month if self.q.group_by == "month" else "scope_key"
            tz = f"'{self.service.tz_name}'"
            states = f"(SELECT *, toInt64(1) AS n FROM ({state_sql(current_sql(self.as_of), tz)}))"
            source = self._in_scope(states, where)
        found: dict[str, dict[str, Any]] = {}
        for k, kind, method, closed, on_time, overdue, n, pct in self.run(f"""
                SELECT {key} AS k, kind, method, is_closed, closed_day <= due AS on_time,
                       is_closed = 0 AND due < {day_bound(self.as_of_day)} AS overdue, sum(n), sum(pct)
                FROM {source}
                GROUP BY k, kind, method, is_closed, on_time, overdue
                HAVING sum(n) != 0 OR sum(pct) != 0  -- folds that cancelled out: no items left
                """, store):
            _tally_item(found.setdefault(str(k), {}), kind, method, closed, on_time, overdue, n, pct)
        return found

    def _item_grains(self, family: str) -> str:
        """The live `items` rows of the query's period: a suggestion's period is its due date's,
        which its monthly rows keep; another item's is its day's: monthly rows for the
        period's whole months, daily rows for the rest."""
        months, edges = _whole_months(self.q.from_, self.q.to)
        by_due = _between("due", (self.due_lo, self.due_hi))
        monthly = f"if(kind = 'suggestion', {by_due}, {_between('day', months)})"
        days = _any(_between("day", e) for e in edges)
        return _grains(family, monthly, "0" if days == "0" else f"kind != 'suggestion' AND ({days})")

    def _in_scope(self, source: str, where: str) -> str:
        """Rows of `source` (unit_id, day, …) meeting `where`, in the scope, with its `scope_key`."""
        if self.scope:
            return (f"{source} AS d INNER JOIN ({self.scope}) AS s USING unit_id "
                    f"WHERE {where} AND d.day >= s.start_day AND d.day < s.end_day")
        scope = key_sql(self.spans, self.service.local_midnight, "unit_id", "day", day_bound)
        return f"(SELECT *, {scope} AS scope_key FROM {source} WHERE {where}) WHERE scope_key != ''"


def _whole_months(lo: dt.date | None, hi: dt.date | None) -> tuple[tuple | None, list[tuple]]:
    """[lo, hi) (None: unbounded) as the range of its whole months' first days (None when it
    holds no whole month) and the day ranges left at its edges."""
    if lo is not None and hi is not None and lo >= hi:
        return None, [(lo, hi)]
    first = lo if lo is None or lo.day == 1 else (lo.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    last = hi if hi is None else hi.replace(day=1)
    if first is not None and last is not None and first >= last:
        return None, [(lo, hi)]
    edges = [(lo, first)] if lo is not None and lo < first else []
    return (first, last), edges + ([(last, hi)] if hi is not None and last < hi else [])


def _between(column: str, bounds: tuple | None) -> str:
    """`column` within the (lo, hi) dates (None: unbounded); '0' for no range at all."""
    if bounds is None:
        return "0"
    return " AND ".join(["1"] + [f"{column} {op} {day_bound(d)}" for op, d in zip((">=", "<"), bounds, strict=True)
                                 if d is not None])


def _any(conditions) -> str:
    conditions = [c for c in conditions if c != "0"]
    return " OR ".join(f"({c})" for c in conditions) if conditions else "0"


def _grains(family: str, monthly: str, daily: str) -> str:
    """Rows of `family`'s monthly rows meeting `monthly` or of its daily rows meeting `daily`
    (a '0' leaves that family out of the read)."""
    reads = [f"(family = {family + MONTHLY!r} AND ({monthly}))" if monthly != "0" else "",
             f"(family = {family!r} AND ({daily}))" if daily != "0" else ""]
    return "(" + (" OR ".join(r for r in reads if r) or "0") + ")"


def _literal(value: str) -> str:
    return str_list([value])[1:-1]


def _tally_item(values: dict[str, int], kind: str, method: str, closed: int, on_time: int, overdue: int,
                n: int, pct: int) -> None:
    """Add one group of item rows (same kind, method, closed, on time, overdue) to the figures."""
    def add(name: str, amount: int) -> None:
        values[name] = values.get(name, 0) + amount

    if kind == "clue":
        add("clues.disposed", n)
        add(f"clues.disposed.{method}", n)
    elif kind == "suggestion":
        add("suggestions.due", n)
        add("suggestions.closed_on_time", n if closed and on_time else 0)
    elif kind == "rectification":
        add("rectification.overdue", n if overdue else 0)
        add("_rect_done", n if closed else 0)
    elif kind == "task":
        add("tasks.completed", n if closed else 0)
        add("tasks.overdue", n if overdue else 0)
        add("_task_progress_hundredths", pct)
        add("_tasks_in_scope", n)


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
