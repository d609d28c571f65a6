"""Rebuild projections from the ledger inside ClickHouse (INSERT … SELECT), then swap them in.

The rebuild reads the same view (`facts_source`) the worker projects through, so live folding
and replay share one definition. Each table gets an order-independent checksum: the same ledger always gives
the same checksums.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Callable

from projections.ancestry import AncestryTable
from projections.daily import DailyFolds
from projections.items import ItemFolds
from projections.store import ClickHouseStore
from projections.worker_pause import workers_paused

MAX_BUCKETS = 16  # slices of the ledger, for the progress bar
BUCKET_ROWS = 2_500_000  # rows per slice: fewer slices scan the ledger fewer times; smaller ones bound memory
# `facts` is rebuilt in blocks of 50k rows: the memory it takes grows with the block size. A
# grown 10M ledger's facts rebuild: +560-630 MB over the process's start with 200k-row blocks,
# +230-275 MB with 50k, in the same 11-13.5 s. (The live folds' rebuilds size their blocks by
# the ledger's size: `projections.folds.rebuild_settings`.)
BLOCKS = {"min_insert_block_size_rows": 50_000, "min_insert_block_size_bytes": 16 << 20}
PROJECTIONS = {"facts": "facts_source"}  # projection table → the view that derives it


def columns(store: ClickHouseStore, table: str) -> list[str]:
    return [r[0] for r in store.rows("SELECT name FROM system.columns WHERE database = currentDatabase() "
                                     "AND table = {t:String} ORDER BY position", {"t": table})]


LIVE_FOLDS = {folds.kind: folds for folds in (DailyFolds, ItemFolds)}
# The scratch tables of a replay or a rebuild, which a kill midway leaves behind (a replay of a
# 10M ledger: a copy of `facts` and of both folds): `facts_replay_<id>`, `daily_rebuild`, and
# the facts a rebuild resolved (`{target}_resolved`, targets named by `into` too).
SCRATCH = (r"^((facts|daily|items)_replay_[0-9a-f]{8}|(daily|items)_rebuild"
           r"|.*(daily|items)(_replay_[0-9a-f]{8}|_rebuild)?_resolved)$")
# On a ClickHouse server another process may be replaying right now: only older ones are left over.
SCRATCH_LEFT_AFTER_H = 24


def sweep_scratch(store: ClickHouseStore) -> list[str]:
    """Drop the scratch tables of replays and rebuilds that did not finish; return their names.
    Embedded, nothing else can be replaying: the process holds the data dir, and its replays
    hold the store (`ClickHouseStore.exclusive`) and its worker (`Ingestor.paused`)."""
    old = "" if store.embedded else f" AND metadata_modification_time < now() - INTERVAL {SCRATCH_LEFT_AFTER_H} HOUR"
    names = [r[0] for r in store.rows("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                      f"AND match(name, {{p:String}}){old}", {"p": SCRATCH})]
    for name in names:
        store.command(f"DROP TABLE IF EXISTS {name}")
    return names


def unit_slices(store: ClickHouseStore, count: int) -> list[tuple[str, dict[str, str]]]:
    """The ledger cut into about `count` ranges of units of about equal rows, each as (a
    condition on `unit_id`, its parameters). A range of units is a range of the ledger's key,
    so each slice reads only its own granules: the real 10M ledger's `facts` in four slices by
    a hash of the unit, each reading the whole ledger, took 14.6 s; by ranges 10.7, same rows."""
    if count <= 1:
        return [("1", {})]
    units = store.rows("SELECT unit_id, count() FROM ledger GROUP BY unit_id ORDER BY unit_id")
    total, seen, starts = sum(n for _, n in units), 0, []
    for unit, n in units:
        if seen >= total * (len(starts) + 1) / count:
            starts.append(unit)
        seen += n
    return [_unit_range(lo, hi) for lo, hi in itertools.pairwise([None, *starts, None])]


def _unit_range(lo: str | None, hi: str | None) -> tuple[str, dict[str, str]]:
    """Units from `lo` up to `hi` (None: no bound) as a condition and its parameters."""
    conditions, params = ["1"], {}
    if lo is not None:
        conditions.append("unit_id >= {lo:String}")
        params["lo"] = lo
    if hi is not None:
        conditions.append("unit_id < {hi:String}")
        params["hi"] = hi
    return " AND ".join(conditions), params


def checksum(store: ClickHouseStore, table: str, kind: str | None = None) -> str:
    """Row count and an order-independent hash of every row; `kind` is the projection a
    differently named table (a replay target) holds."""
    folds = LIVE_FOLDS.get(kind or table)
    if folds:  # stored rows depend on how far merges got: checksum the merged form instead
        source, cols = f"({folds.merged_form.format(table=table)})", folds.merged_columns
    else:
        source, cols = table, ", ".join(f"`{c}`" for c in columns(store, table))
    count, digest = store.rows(f"SELECT count(), sum(cityHash64(tuple({cols}))) FROM {source}")[0]
    store.release_memory()
    return f"{count}:{int(digest):016x}"


def replay(store: ClickHouseStore, as_of: dt.datetime | None = None, into: str | None = None,
           progress: Callable[[int, int], None] | None = None, timezone: str = "Asia/Shanghai"
           ) -> dict[str, str]:
    """Rebuild every projection; swap atomically unless `into` names a separate table prefix.
    On a server store a worker of another process pauses meanwhile (`workers_paused`); the
    caller pauses its own (`ClickHouseStore.exclusive`)."""
    with contextlib.nullcontext() if store.embedded else workers_paused(store):
        return _replay(store, as_of, into, progress, timezone)


def _replay(store: ClickHouseStore, as_of: dt.datetime | None, into: str | None,
            progress: Callable[[int, int], None] | None, timezone: str) -> dict[str, str]:
    sums = {}
    cutoff = ""
    if as_of is not None:
        cutoff = f" AND recorded_at <= toDateTime64('{as_of.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"
    sweep_scratch(store)
    rows = int(store.scalar("SELECT count() FROM ledger") or 0)
    slices = unit_slices(store, max(1, min(MAX_BUCKETS, rows // BUCKET_ROWS)))
    store.release_memory()  # what ingest left free, before the rebuild's peak lands on it
    for table, view in PROJECTIONS.items():
        select = f"SELECT * FROM {view}"
        cols = ", ".join(f"`{c}`" for c in columns(store, table))
        target = f"{into}_{table}" if into else f"{table}_replay_{uuid.uuid4().hex[:8]}"
        store.command(f"DROP TABLE IF EXISTS {target}")
        store.command(f"CREATE TABLE {target} AS {table}")
        for done, (units, params) in enumerate(slices, start=1):
            store.command(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM ({select}) WHERE {units}{cutoff}",
                          params, settings={"max_insert_threads": 2, **BLOCKS})
            if progress:
                progress(done, len(slices))
        store.release_memory()
        if into:
            sums[target] = checksum(store, target)
            continue
        store.command(f"EXCHANGE TABLES {table} AND {target}")
        store.command(f"DROP TABLE {target}")
        sums[table] = checksum(store, table)
    # The live folds, from the ledger and the (now rebuilt) facts, each into a fresh table,
    # under the hierarchy as known at `as_of`.
    trees = AncestryTable(store)
    tree = trees.current(as_of)
    for live, kind in LIVE_FOLDS.items():
        folds = kind(store, timezone, trees)
        target = f"{into}_{live}" if into else f"{live}_replay_{uuid.uuid4().hex[:8]}"
        folds.rebuild_into(target, tree, as_of)
        if into:
            sums[target] = checksum(store, target, live)
        else:
            store.command(f"EXCHANGE TABLES {live} AND {target}")
            store.command(f"DROP TABLE {target}")
            folds.record_tree(tree)
            sums[live] = checksum(store, live)
    return sums
