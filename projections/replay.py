"""Rebuild projections from the ledger inside ClickHouse (INSERT … SELECT), then swap them in.

The rebuild reads the same view (`facts_source`) the worker projects through, so live folding
and replay share one definition. Each table gets an order-independent checksum: the same ledger always gives
the same checksums.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from projections.store import ClickHouseStore

BUCKETS = 16  # slices of the ledger, for the progress bar
PROJECTIONS = {"facts": "facts_source"}  # projection table → the view that derives it


def columns(store: ClickHouseStore, table: str) -> list[str]:
    return [r[0] for r in store.rows("SELECT name FROM system.columns WHERE database = currentDatabase() "
                                     "AND table = {t:String} ORDER BY position", {"t": table})]


def checksum(store: ClickHouseStore, table: str) -> str:
    """Row count and an order-independent hash of every row."""
    cols = ", ".join(f"`{c}`" for c in columns(store, table))
    count, digest = store.rows(f"SELECT count(), sum(cityHash64(toString(tuple({cols})))) FROM {table}")[0]
    return f"{count}:{int(digest):016x}"


def replay(store: ClickHouseStore, as_of: dt.datetime | None = None, into: str | None = None,
           progress: Callable[[int, int], None] | None = None) -> dict[str, str]:
    """Rebuild every projection; swap atomically unless `into` names a separate table prefix."""
    sums = {}
    for table, view in PROJECTIONS.items():
        select = f"SELECT * FROM {view}"
        cols = ", ".join(f"`{c}`" for c in columns(store, table))
        target = f"{into}_{table}" if into else f"{table}_replay_{uuid.uuid4().hex[:8]}"
        store.command(f"DROP TABLE IF EXISTS {target}")
        store.command(f"CREATE TABLE {target} AS {table}")
        cutoff = ""
        if as_of is not None:
            cutoff = f" AND recorded_at <= toDateTime64('{as_of.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"
        for bucket in range(BUCKETS):
            store.command(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM ({select}) "
                          f"WHERE cityHash64(unit_id) % {BUCKETS} = {bucket}{cutoff}",
                          settings={"max_insert_threads": 2})
            if progress:
                progress(bucket + 1, BUCKETS)
        if into:
            sums[target] = checksum(store, target)
            continue
        store.command(f"EXCHANGE TABLES {table} AND {target}")
        store.command(f"DROP TABLE {target}")
        sums[table] = checksum(store, table)
    return sums
