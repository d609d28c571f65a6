"""The ledger port (`LedgerStore`) and its ClickHouse implementation."""

from __future__ import annotations

import datetime as dt
import functools
import operator
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from projections.ancestry import AncestryTable
from projections.daily import DailyFolds
from projections.folds import SEQ_RANGES
from projections.items import ItemFolds
from projections.store import ClickHouseStore

LEDGER_COLUMNS = ("unit_id", "seq", "event_id", "type", "schema_version", "subject_id",
                  "occurred_at", "recorded_at", "submitted_by", "payload", "prev_hash", "hash",
                  "target_id", "target_type", "source_partition", "source_offset", "batch_id")
DLQ_COLUMNS = ("source_partition", "source_offset", "idx", "rejected_at", "unit_id", "event_id",
               "field", "reason", "raw")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The ledger's DateTime64 columns and their ticks: their values go to the driver as ticks since
# the epoch, which it writes as they are (it converts a datetime through its float timestamp,
# ~0.9 µs a value, a third of a 40k-event batch's insert building).
TICKS = {"occurred_at": dt.timedelta(milliseconds=1), "recorded_at": dt.timedelta(microseconds=1)}


def ledger_columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """Ledger rows (aware datetimes) as the columns of an insert."""
    if not rows:
        return {name: [] for name in LEDGER_COLUMNS}
    values = map(operator.itemgetter(*LEDGER_COLUMNS), rows)  # each row's, in column order
    columns = {name: list(column) for name, column in zip(LEDGER_COLUMNS, zip(*values, strict=True), strict=True)}
    for name, tick in TICKS.items():
        columns[name] = [(value - _EPOCH) // tick for value in columns[name]]
    return columns


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    recorded_at: dt.datetime  # aware, UTC


@dataclass(frozen=True)
class Target:
    """What a correction needs to know about the event it points at."""

    type: str
    unit_id: str
    is_correction: bool


class LedgerStore(Protocol):
    def heads(self) -> dict[str, Head]: ...
    def event_ids(self) -> Iterator[bytes]: ...
    def targets(self, event_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Target]: ...
    def append(self, rows: list[dict[str, Any]]) -> None: ...
    def project(self, keys: list[tuple[str, int]], corrections: bool = True) -> None: ...
    def catch_up(self) -> int: ...
    def reject(self, rows: list[dict[str, Any]]) -> None: ...
    def finish_batches(self, batch_ids: Iterable[str]) -> None: ...
    def finished_batches(self, batch_ids: Iterable[str]) -> set[str]: ...


def beside(*steps: Callable[[], object]) -> None:
    """Run `steps` at once, the first ones each in a thread of its own, the last in this one;
    return when all have ended, raising the first error (this thread's first)."""
    errors: list[BaseException] = []

    def run(step: Callable[[], object]) -> None:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,), name="jiandu-fold", daemon=True) for step in steps[:-1]]
    for thread in threads:
        thread.start()
    try:
        if steps:
            steps[-1]()
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


class ClickHouseLedger:
    """LedgerStore on ClickHouse (chDB or server)."""

    def __init__(self, store: ClickHouseStore, timezone: str = "Asia/Shanghai"):
        self.store = store
        self.trees = AncestryTable(store)
        self.timezone = timezone
        self.daily = DailyFolds(store, timezone, self.trees)

    @functools.cached_property
    def items(self) -> ItemFolds:
        """On a client of its own (made when first needed): a batch's `items` fold runs beside
        its `daily` fold."""
        return ItemFolds(self.store.sibling(), self.timezone, self.trees)

    def heads(self) -> dict[str, Head]:
        rows = self.store.rows("SELECT unit_id, max(seq), argMax(hash, seq), max(recorded_at) "
                               "FROM ledger GROUP BY unit_id")
        # The client returns DateTime64(6, 'UTC') as naive datetimes: say they are UTC once here.
        return {u: Head(int(s), h, r.replace(tzinfo=dt.UTC)) for u, s, h, r in rows}

    def event_ids(self) -> Iterator[bytes]:
        # Stream in slices so a large ledger never materialises as one Python list.
        units = [r[0] for r in self.store.rows("SELECT DISTINCT unit_id FROM ledger")]
        for i in range(0, len(units), 2000):
            chunk = units[i:i + 2000]
            for (event_id,) in self.store.rows(
                    "SELECT event_id FROM ledger WHERE unit_id IN {u:Array(String)}", {"u": chunk}):
                yield event_id.bytes

    def targets(self, event_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Target]:
        ids = [str(i) for i in event_ids]
        if not ids:
            return {}
        rows = self.store.rows(
            "SELECT event_id, target_type, unit_id, type IN ('event_corrected', 'event_retracted') "
            "FROM ledger WHERE event_id IN {ids:Array(UUID)}", {"ids": ids})
        return {e: Target(t, u, bool(c)) for e, t, u, c in rows}

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.store.insert_columns("ledger", ledger_columns(rows))

    def project(self, keys: list[tuple[str, int]], corrections: bool = True) -> None:
        """Fold just-written ledger rows into `facts` (through `facts_source`), then the live
        folds (`daily`, `items`).

        `corrections=False` promises the rows hold no correction or retraction."""
        if not keys:
            return
        bounds: dict[str, tuple[int, int]] = {}
        for unit, seq in keys:
            lo, hi = bounds.get(unit, (seq, seq))
            bounds[unit] = (min(lo, seq), max(hi, seq))
        # Each unit's new rows are one contiguous seq range: filter by range, not by tuple set,
        # and with arrays rather than one OR branch per unit (cheap to plan for 1,000s of units).
        units = list(bounds)
        self.store.command(f"INSERT INTO facts SELECT * FROM facts_source WHERE {SEQ_RANGES}",
                           {"u": units, "lo": [bounds[u][0] for u in units],
                            "hi": [bounds[u][1] for u in units]})
        # Folded under the hierarchy with this batch's unit events. A table written under
        # another version is rebuilt first, one at a time (a rebuild's memory is a replay's).
        # Then the two folds run at once, each on its own client: most of a small batch's fold
        # is ClickHouse planning it on one core (a real 10M ledger, 20 events: `items` ~120 ms,
        # `daily` ~170), and the machine has two. So a reader may see a batch's counts a moment
        # before its items, or the other way round: each table's watermark says what it holds.
        tree = self.trees.current()
        due = [folds for folds in (self.items, self.daily) if not folds.settle(tree)]
        beside(*(functools.partial(folds.fold, bounds, tree, corrections) for folds in due))

    def catch_up(self) -> int:
        """Project every ledger row that `facts`, `daily` or `items` lacks (a crash between inserts)."""
        behind = [u for u, in self.store.rows(
            "SELECT unit_id FROM (SELECT unit_id, count() AS n FROM ledger GROUP BY unit_id) AS l "
            "LEFT JOIN (SELECT unit_id, count() AS n FROM facts GROUP BY unit_id) AS f USING unit_id "
            "WHERE l.n != f.n")]
        for i in range(0, len(behind), 500):
            self.store.command(
                "INSERT INTO facts SELECT * FROM facts_source WHERE unit_id IN {u:Array(String)} "
                "AND (unit_id, seq) NOT IN (SELECT unit_id, seq FROM facts WHERE unit_id IN {u:Array(String)})",
                {"u": behind[i:i + 500]})
        tree = self.trees.current()
        return len(behind) + self.items.catch_up(tree) + self.daily.catch_up(tree)

    def reject(self, rows: list[dict[str, Any]]) -> None:
        self.store.insert_columns("dlq", {c: [r[c] for r in rows] for c in DLQ_COLUMNS})

    def finish_batches(self, batch_ids: Iterable[str]) -> None:
        now = dt.datetime.now(dt.UTC)
        self.store.insert("ingested_batches", [[b, now] for b in set(batch_ids) if b],
                          ["batch_id", "finished_at"])

    def finished_batches(self, batch_ids: Iterable[str]) -> set[str]:
        ids = list(batch_ids)
        if not ids:
            return set()
        rows = self.store.rows("SELECT DISTINCT batch_id FROM ingested_batches "
                               "WHERE batch_id IN {ids:Array(String)}", {"ids": ids})
        return {r[0] for r in rows}

    def count(self) -> int:
        return int(self.store.scalar("SELECT count() FROM ledger") or 0)
