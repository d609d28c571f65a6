"""Signed folds of the ledger into a live table, with each unit's source position beside them.

A fold covers a contiguous seq range per unit ({u, lo, hi}). A subclass gives the SELECT of
the signed changes the ranges make to its table, read from `facts`, with one watermark row per
unit whose `upto_seq` is its range's top (`fold_sql`). It runs as ONE `INSERT … SELECT` that
ClickHouse writes as one block, i.e. one part (`FOLD_SETTINGS`), so the changes and their
source position land together or not at all, and the rows never travel through Python.
`catch_up` folds exactly what lies past each unit's last `upto_seq` (after a crash, or a
time-zone change).

Rows are written under every unit whose subtree holds the fact's unit (`projections.ancestry`),
so they depend on the hierarchy: each fold names the hierarchy version (`tree`) it joins, the
table records the version it was written with, and a different one (a unit moved) rebuilds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping

from projections.ancestry import AncestryTable
from projections.resolved import FAR_FUTURE, ts
from projections.store import ClickHouseStore

SEQ_RANGES = ("unit_id IN {u:Array(String)} "
              "AND seq BETWEEN transform(unit_id, {u:Array(String)}, {lo:Array(UInt64)}, toUInt64(0)) "
              "AND transform(unit_id, {u:Array(String)}, {hi:Array(UInt64)}, toUInt64(0))")
# A row of the ranges (every row of a unit at or past its range's start is: a fold runs on
# the ranges just written, or, in catch-up, on everything past each unit's last fold).
IN_RANGES = "unit_id IN {u:Array(String)} AND seq >= transform(unit_id, {u:Array(String)}, {lo:Array(UInt64)}, toUInt64(0))"
# Every fold and rebuild writes rows already grouped by the table's key (watermark rows have
# keys of their own), so the merge an AggregatingMergeTree does on insert changes nothing:
# skip it (a real 1M ledger's daily rebuild: ~7.5 -> ~5.5 s, same checksum).
INSERT_SETTINGS = {"optimize_on_insert": 0}
# A rebuild fills a table that is swapped in whole, in blocks: the squashing and sorting before
# writing hold a block's rows. On a large ledger, blocks of 50k rows (a real 10M ledger's daily
# slice: 757 MB in ClickHouse with 200k-row blocks, 644 with 50k, in the same time); on others
# 200k, which leave the merge before the swap fewer parts (a real 1M ledger's replay: 10.6-11.1 s
# with 200k, 11.9-12.1 s with 50k).
LARGE_LEDGER = 2_500_000  # facts


def rebuild_settings(facts: int) -> dict:
    """The settings of a rebuild's inserts over `facts` facts."""
    rows, size = (50_000, 16 << 20) if facts > LARGE_LEDGER else (200_000, 64 << 20)
    return {**INSERT_SETTINGS, "min_insert_block_size_rows": rows, "min_insert_block_size_bytes": size}


# A live fold must land whole: its rows are squashed into one block however many there are
# (a block is written as one part, atomically; the tables have no partition key to split it),
# by one insert thread.
FOLD_SETTINGS = {"optimize_on_insert": 0, "min_insert_block_size_rows": 1 << 62,
                 "min_insert_block_size_bytes": 1 << 62, "max_insert_threads": 1}
SLICE_FACTS = 250_000  # facts per rebuild slice (× a table's `slice_scale`), up to its `rebuild_slices`
# Facts per slice of a rebuild's coarse rows, up to what each pass allows (`coarse_passes`). The coarse
# step was a replay's peak (one slice per 2.5M facts before): a real 1M ledger's `daily` in
# one slice peaked ~910 MB, in three ~570 MB in the same 1.4-1.8 s; the real 10M ledger's in
# four (16 s) ~1.7 GB, in eight (22 s) ~1.2 GB, below the day slices before it.
COARSE_FACTS = 300_000
# Each unit's (unit_id, top) of a fold's ranges, the source of its watermark rows.
FOLD_WATERMARKS = ("SELECT w.1 AS unit_id, w.2 AS top "
                   "FROM (SELECT arrayJoin(arrayZip({u:Array(String)}, {hi:Array(UInt64)})) AS w)")
# The family suffix of the rows the folds write again under their month (`day` its first day),
# beside the daily ones: a period's whole months read those (`projections.daily`, `.items`).
MONTHLY = ":month"


def month_start(day: str) -> str:
    """The first day of the month of `day` (a Date32 expression), as a Date32 (`toStartOfMonth`
    gives a Date, which ends in 2149)."""
    return f"{day} - (toDayOfMonth({day}) - 1)"


def recorded(store: ClickHouseStore, names: list[str]) -> dict[str, str]:
    """The latest value of each named projection setting (names never recorded are absent)."""
    return dict(store.rows("SELECT name, argMax(value, set_at) FROM projection_settings "
                           "WHERE name IN {n:Array(String)} GROUP BY name", {"n": names}))


def record(store: ClickHouseStore, name: str, value: str) -> None:
    """Record a projection setting's new value, later than its last by at least 1 ms, so
    `recorded` never sees a tie."""
    store.command("INSERT INTO projection_settings (name, value, set_at) SELECT {n:String}, {v:String}, "
                  "greatest(now64(3), (SELECT max(set_at) FROM projection_settings WHERE name = {n:String}) "
                  "+ toIntervalMillisecond(1))", {"n": name, "v": value})


def slice_watermarks(as_of: dt.datetime) -> str:
    """Each unit's last seq recorded at or before `as_of` (a rebuild's source positions), in
    the rebuild's slice {part} 0 only. Read from `facts`, what the rebuild folds, not from the
    ledger: the worker appends the next batch while it projects one (`streams.ingest`), and
    a watermark past the facts folded would have a catch-up skip those rows."""
    return (f"SELECT unit_id, max(seq) AS top FROM facts WHERE recorded_at <= toDateTime64({ts(as_of)}, 6, 'UTC') "
            "AND {part:UInt32} = 0 GROUP BY unit_id")


class Folds:
    """Keeps one live table in step with the ledger, in the configured local time zone."""

    kind = ""  # the live table's name, and the key of its recorded settings
    columns: tuple[str, ...] = ()
    # The table's rows as fully merged (what checksums compare: independent of merge progress),
    # a SELECT over `{table}` giving `merged_columns`.
    merged_form = ""
    merged_columns = ""
    # How many INSERT … SELECTs a rebuild is made of at most (`rebuild_sql` over the slice
    # {part} of the facts, each fact's slice by `slice_key`): one per `slice_scale` × SLICE_FACTS facts.
    rebuild_slices = 1
    slice_scale = 1
    slice_key = "0"  # an SQL hash over a resolved fact (`resolved_sql`'s rows): its rebuild slice

    def __init__(self, store: ClickHouseStore, timezone: str = "Asia/Shanghai", trees: AncestryTable | None = None):
        self.store = store
        self.timezone = timezone
        self.trees = trees or AncestryTable(store)

    def fold_sql(self, params: dict, corrections: bool) -> str:
        """The SELECT of the table's rows (`columns`) for the ranges in `params` (u, lo, hi, tz,
        tree) and their watermark rows (`FOLD_WATERMARKS`); may add parameters to `params`."""
        raise NotImplementedError

    def resolved_sql(self, as_of: dt.datetime) -> str:
        """The SELECT of the facts a rebuild folds, each in its version known at `as_of`."""
        raise NotImplementedError

    def rebuild_sql(self, facts: str, as_of: dt.datetime) -> str:
        """The SELECT of the table's rows folded from `facts` (a SELECT of `resolved_sql`'s
        rows), with the watermark rows as of `as_of` in the slice {part} 0 only."""
        raise NotImplementedError

    def coarse_passes(self, table: str) -> list[tuple[str, int]]:
        """The coarse rows (monthly, all-time) that the daily rows in `table` add up to, as
        passes of (the SELECT of the slice {part} of {parts}, at most how many slices: one per
        COARSE_FACTS facts). A live fold writes daily and coarse rows at once; a rebuild writes
        the daily rows first (`rebuild_sql`, which writes no coarse row), then these."""
        return []

    def fold(self, bounds: Mapping[str, tuple[int, int]], tree: str, corrections: bool = True) -> None:
        """Fold each unit's ledger rows lo..hi (already in `facts`) into the table, atomically,
        under the hierarchy version `tree`, which the table must be right for (`settle` it first:
        when that rebuilds the table, there is nothing left to fold).

        `corrections=False` promises the ranges hold no correction or retraction."""
        units = list(bounds)
        params = {"u": units, "lo": [bounds[u][0] for u in units], "hi": [bounds[u][1] for u in units],
                  "tz": self.timezone, "tree": tree}
        sql = self.fold_sql(params, corrections)
        self.store.command(f"INSERT INTO {self.kind} ({', '.join(self.columns)}) {sql}", params,
                           settings=FOLD_SETTINGS)

    def catch_up(self, tree: str) -> int:
        """Fold every unit's ledger rows past its last folded seq; return the units folded.

        An empty table (new, or its time zone changed) is rebuilt in one INSERT…SELECT and
        swapped in. Otherwise one fold covers every unit behind: a fold's "before" is
        everything in `facts` outside its ranges, which is exactly what has been folded only
        when no other range is pending."""
        changed = self._setting("timezone") != self.timezone
        if changed or not self.store.rows(f"SELECT 1 FROM {self.kind} LIMIT 1"):
            units = self._ledger_units()
            if units:
                self.rebuild_live(tree)
            if changed:
                self._record("timezone", self.timezone)
            return units
        if self.settle(tree):
            return self._ledger_units()
        behind = self.store.rows(
            f"SELECT l.unit_id, d.upto + 1, l.top FROM (SELECT unit_id, max(seq) AS top FROM ledger "
            f"GROUP BY unit_id) AS l LEFT JOIN (SELECT unit_id, max(upto_seq) AS upto "
            f"FROM {self.kind} GROUP BY unit_id) AS d USING unit_id WHERE l.top > d.upto",
            settings={"join_use_nulls": 0})
        if behind:
            self.fold({u: (int(lo), int(hi)) for u, lo, hi in behind}, tree)
        return len(behind)

    def rebuild_into(self, target: str, tree: str, as_of: dt.datetime | None = None) -> None:
        """Create `target` like the live table and fill it with the folds of the whole ledger
        as known at `as_of`, under hierarchy version `tree` (replay, and live rebuilds)."""
        self.store.command(f"DROP TABLE IF EXISTS {target}")
        self.store.command(f"CREATE TABLE {target} AS {self.kind}")
        as_of = as_of or FAR_FUTURE
        # Slices bound memory on large ledgers; on small ones each is only planning overhead.
        facts = int(self.store.scalar("SELECT count() FROM facts") or 0)
        parts = max(1, min(self.rebuild_slices, facts // (SLICE_FACTS * self.slice_scale)))
        settings = rebuild_settings(facts)
        params = {"tz": self.timezone, "tree": tree, "parts": parts}
        with self._sliced_facts(target, as_of, facts, parts, settings) as sliced:
            sql = self.rebuild_sql(sliced, as_of)
            for part in range(parts):
                self._write_slice(target, sql, params | {"part": part}, settings)
        for coarse, most in self.coarse_passes(target):
            parts = max(1, min(most, facts // COARSE_FACTS))
            for part in range(parts):
                self._write_slice(target, coarse, {"part": part, "parts": parts}, settings)
        # Merged before it is swapped in: the API reads it next, and every part costs each of
        # its queries. Read in the 5-10 parts the slices left (background merges done), a grown
        # 10M ledger's 200 requests over HTTP took p50 27-29 / p99 49-54 ms, merged 20-22 /
        # 35-38 (daily and items: 2.3 s, some of it won back by the checksums over one part).
        # The merge must be the table's own: a part merged elsewhere (a plain MergeTree, 2.3x
        # faster) and attached is a part of level 0, which reads with FINAL merge again on every
        # request (a real 10M ledger's API p99 ~115 ms instead of ~50; session 14).
        self.store.command(f"OPTIMIZE TABLE {target} FINAL")
        # Slices reuse what the one before freed; what the last freed goes back to the system
        # (purging between slices: a real 10M ledger's replay 146 -> 164 s for 53 MB less).
        self.store.release_memory()

    @contextlib.contextmanager
    def _sliced_facts(self, target: str, as_of: dt.datetime, facts: int, parts: int, settings: dict) -> Iterator[str]:
        """The SELECT of the facts a rebuild of `target` folds in its slice {part} of {parts}."""
        if parts == 1:
            yield self.resolved_sql(as_of)
        elif facts > LARGE_LEDGER:
            # Each slice resolves the facts again: slower, and that holds the replay's peak down.
            # A real 10M ledger resolved once (below): 178 -> 154 s, but slices that fast leave
            # the table's merges of the slices written before them running beside the next
            # (ClickHouse ~600 MB during a slice, not ~530), and the bench's 10M run peaked at
            # 1,662 MB instead of 1,512.
            yield f"SELECT * FROM ({self.resolved_sql(as_of)}) WHERE {self.slice_key} % {{parts:UInt32}} = {{part:UInt32}}"
        else:
            with self._resolved_once(target, as_of, parts, settings) as sliced:
                yield sliced

    @contextlib.contextmanager
    def _resolved_once(self, target: str, as_of: dt.datetime, parts: int, settings: dict) -> Iterator[str]:
        """The facts a rebuild folds, resolved once into a table ordered by slice: yields the
        SELECT of the slice {part}, which reads that slice's rows only. Resolving corrections
        over the whole of `facts` again is most of a slice's time (a real 10M ledger: a `daily`
        slice 1.7-2.1 s that way, 0.8-1.0 s from the table, which took 2.5 s; a real 1M
        ledger's replay 12.4 -> 10.4-11.2 s, with 200k-row blocks)."""
        table = f"{target}_resolved"
        select = f"SELECT toUInt32({self.slice_key} % {{parts:UInt32}}) AS part, * FROM ({self.resolved_sql(as_of)})"
        params = {"tz": self.timezone, "parts": parts}
        self.store.command(f"DROP TABLE IF EXISTS {table}")
        self.store.command(f"CREATE TABLE {table} ENGINE = MergeTree ORDER BY part EMPTY AS {select}", params)
        # Read a few times, then dropped: merging its parts meanwhile would only take memory
        # and a core from the slices.
        self.store.command(f"SYSTEM STOP MERGES {table}")
        self.store.command(f"INSERT INTO {table} {select}", params, settings={"max_insert_threads": 2, **settings})
        try:
            yield f"SELECT * EXCEPT part FROM {table} WHERE part = {{part:UInt32}}"
        finally:
            self.store.command(f"DROP TABLE IF EXISTS {table}")

    def _write_slice(self, table: str, sql: str, params: dict, settings: dict) -> None:
        """Write one slice of a rebuild (an INSERT … SELECT of `sql`) into `table`."""
        self.store.command(f"INSERT INTO {table} ({', '.join(self.columns)}) {sql}", params, settings=settings)

    def rebuild_live(self, tree: str) -> None:
        """Rebuild the live table aside and swap it in: a kill midway leaves the old one whole.
        The version stamp is written after the swap: a kill between the two rebuilds again."""
        target = f"{self.kind}_rebuild"
        self.rebuild_into(target, tree)
        self.store.command(f"EXCHANGE TABLES {self.kind} AND {target}")
        self.store.command(f"DROP TABLE {target}")
        self.record_tree(tree)

    def record_tree(self, tree: str) -> None:
        """Record that the live table now holds folds under hierarchy version `tree`."""
        self._record("tree", tree)

    def settle(self, tree: str) -> bool:
        """Make the table right for hierarchy version `tree`: nothing to do when it was written
        with it; a new stamp when its version extends to `tree`; else rebuild it from the
        ledger, and return True (the rebuild holds every row a fold would add)."""
        stamped = self._setting("tree")
        if stamped == tree:
            return False
        if stamped and self.trees.extends(stamped, tree):
            self.record_tree(tree)
            return False
        self.rebuild_live(tree)
        return True

    def _ledger_units(self) -> int:
        return int(self.store.scalar("SELECT uniqExact(unit_id) FROM ledger") or 0)

    def _setting(self, name: str) -> str | None:
        return recorded(self.store, [f"{self.kind}.{name}"]).get(f"{self.kind}.{name}")

    def _record(self, name: str, value: str) -> None:
        record(self.store, f"{self.kind}.{name}", value)
