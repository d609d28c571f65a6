"""`jiandu up --demo`: register a realistic province, then keep events flowing."""

from __future__ import annotations

import asyncio
import logging

from domain.decode import decode_batch
from producers.service import Spooled, Submitter
from projections.hierarchy import HierarchySource

log = logging.getLogger("jiandu.demo")
DEMO_BATCH = 300
DEMO_INTERVAL_S = 1.0


async def run_demo(submitter: Submitter, hierarchy: HierarchySource, stopping: asyncio.Event) -> None:
    from producers.simulate import Workload, build_province

    units = build_province()
    tree = await asyncio.to_thread(hierarchy.at)
    if units[0]["subject_id"] not in tree:
        await _submit(submitter, units)
    workload = Workload.fresh(units)
    while not stopping.is_set():
        await _submit(submitter, workload.next_batch(DEMO_BATCH))
        await asyncio.sleep(DEMO_INTERVAL_S)


async def _submit(submitter: Submitter, raws: list[dict]) -> None:
    events = decode_batch(raws)
    try:
        await asyncio.to_thread(submitter.submit, events, "demo")
    except Spooled as exc:  # the relay delivers it later
        log.warning("%s", exc)
