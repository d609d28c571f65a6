"""A worker held longer than the consumer's max poll interval (a long replay, a store away for
a while, with events arriving) leaves its Kafka group. It must come back and fold every event
once, on the real broker and chDB."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from domain.decode import decode_batch
from jiandu.broker import ensure_topics
from jiandu.settings import TOPIC, Settings
from producers.publisher import KafkaPublisher
from producers.service import prepare
from projections.ledger import ClickHouseLedger
from streams.app import Worker, _in_group
from streams.ingest import Ingestor
from tests.harness import event
from tests.integration.test_daily import assert_live_equals_recomputed
from tests.integration.test_indicator_properties import _province
from tests.integration.test_overlap import _facts_and_ledger

# A backlog of one-unit records, published at once: one fetch brings more records than the
# stream's buffer (64) has room for, and the fetcher waits for room instead of fetching.
RECORDS, PER_RECORD = 300, 4


def _petitions(unit: str, n: int) -> list[dict]:
    return [event("petition_received", unit, f"s{uuid.uuid4().hex[:12]}", {"channel": "letter", "category": "accusation"})
            for _ in range(n)]


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)
    return result


def test_a_worker_held_past_the_max_poll_interval_rejoins_and_folds_every_event_once(broker, chdb_store, tmp_path):
    prefix = f"w{uuid.uuid4().hex[:8]}."
    ensure_topics(broker.bootstrap, 4)
    settings = Settings(data_dir=tmp_path, partitions=4, consumer_group=f"rejoin-{prefix}", clickhouse_url=None,
                        kafka_bootstrap=None, worker_id=f"rejoin-{prefix}")
    ingestor = Ingestor(ClickHouseLedger(chdb_store))
    ingestor.load()
    publisher = KafkaPublisher(broker.bootstrap, TOPIC)
    units = _province(prefix)
    expected = len(units) + RECORDS * PER_RECORD

    async def scenario() -> None:
        worker = Worker(settings, broker.bootstrap, ingestor, max_poll_interval_s=3, rejoin_within_s=3)
        start_app, attempts = worker._start_app, []

        async def first_restart_fails() -> None:  # as when the broker is away at that moment
            attempts.append(1)
            if len(attempts) == 2:
                raise ConnectionError("broker away")
            await start_app()

        worker._start_app = first_restart_fails
        await worker.start()
        try:
            await asyncio.to_thread(publisher.publish, [b.record for b in prepare(decode_batch(units), "test", 4)])
            await _until(lambda: _facts_and_ledger(chdb_store, prefix)[0] == len(units), 60, "the units")
            assert _in_group(worker.app)

            release, held = threading.Event(), threading.Event()

            def hold() -> None:  # as a replay in another process holds the worker
                with ingestor.paused():
                    held.set()
                    release.wait(120)

            holder = threading.Thread(target=hold)
            holder.start()
            held.wait(30)
            backlog = [batch.record for i in range(RECORDS)
                       for batch in prepare(decode_batch(_petitions(prefix + ("k1", "k2")[i % 2], PER_RECORD)),
                                            "test", 4)]
            await asyncio.to_thread(publisher.publish, backlog)
            # Out of the group after 3 s without a fetch (faust's buffer is full), and back:
            # started again after 3 s out (a failed start tried again 3 s later). Its first
            # write waits behind the old app's.
            await _until(lambda: not _in_group(worker.app), 60, "the consumer to leave its group")
            await _until(lambda: _in_group(worker.app), 60, "the worker to be back in its group")
            await asyncio.sleep(3)
            assert _facts_and_ledger(chdb_store, prefix)[1] == len(units)  # still held: nothing written
            assert (len(attempts), worker.restarts) == (3, 1)
            release.set()
            holder.join(30)
            await _until(lambda: _facts_and_ledger(chdb_store, prefix)[0] >= expected, 120, "every event folded")
        finally:
            await worker.stop()
            publisher.close()

    asyncio.run(scenario())
    assert _facts_and_ledger(chdb_store, prefix) == (expected, expected)
    distinct = chdb_store.scalar("SELECT uniqExact(event_id) FROM ledger WHERE unit_id LIKE {p:String}", {"p": prefix + "%"})
    assert distinct == expected
    seqs = chdb_store.rows("SELECT unit_id, count(), max(seq), uniqExact(seq) FROM ledger "
                           "WHERE unit_id LIKE {p:String} GROUP BY unit_id", {"p": prefix + "%"})
    assert all(n == top == distinct for _, n, top, distinct in seqs), seqs  # one chain a unit, no fork
    assert_live_equals_recomputed(chdb_store, prefix)
