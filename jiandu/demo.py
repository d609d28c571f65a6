"""`jiandu up --demo`: register a realistic province, then keep events flowing."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from domain.decode import decode_batch
from producers.service import Spooled, Submitter
from producers.simulate import CST, START, Workload, build_province
from projections.hierarchy import HierarchySource
from projections.store import ClickHouseStore

log = logging.getLogger("jiandu.demo")
DEMO_BATCH = 300
DEMO_INTERVAL_S = 1.0


async def run_demo(submitter: Submitter, hierarchy: HierarchySource, stopping: asyncio.Event) -> None:
    units = build_province()
    tree = await asyncio.to_thread(hierarchy.at)
    if units[0]["subject_id"] not in tree:
        await _submit(submitter, units)
    workload = Workload.fresh(units, start=await asyncio.to_thread(_resume_at, hierarchy.store))
    while not stopping.is_set():
        await _submit(submitter, workload.next_batch(DEMO_BATCH))
        await asyncio.sleep(DEMO_INTERVAL_S)


def _resume_at(store: ClickHouseStore) -> dt.datetime:
    """Where a restarted demo picks up its simulated clock: after the latest event it sent
    (each start from START piled every run into the same first months)."""
    latest = store.scalar("SELECT max(occurred_at) FROM ledger")  # naive UTC; 1970 when empty
    return max(START, latest.replace(tzinfo=dt.UTC).astimezone(CST)) if latest is not None else START


async def _submit(submitter: Submitter, raws: list[dict]) -> None:
    events = decode_batch(raws)
    try:
        await asyncio.to_thread(submitter.submit, events, "demo")
    except Spooled as exc:  # the relay delivers it later
        log.warning("%s", exc)
