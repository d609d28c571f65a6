"""The faust app: one ingest agent over `jiandu.events`, rejects to `jiandu.events.dlq`; and
the `Worker` that runs it and starts it again when its consumer has left the group for good."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from jiandu.settings import DLQ_TOPIC, TOPIC, Settings
from streams.ingest import Delivery, Ingestor, Outcome

log = logging.getLogger("jiandu.worker")
T = TypeVar("T")

RECORDS_PER_WRITE = 32  # Kafka records (≤ 2,000 events each) folded into one ledger insert
WRITE_WITHIN_S = 0.05
FETCH_MAX_WAIT_MS = 50
SOLE_CHECK_S = 0.5  # how often a worker holding off (`_until_sole_writer`) looks again

# faust hard-codes fetch_max_wait_ms=1500 and Tansu holds an empty fetch for the whole wait
# instead of answering when data arrives, so every event waited ~0.75 s on average (measured
# by `jiandu bench` freshness). Shorten the wait on the consumer faust builds.
_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer


def _short_fetch_wait(self, transport):  # noqa: ANN001, ANN202 - faust's own signature
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


AIOKafkaConsumerThread._create_worker_consumer = _short_fetch_wait


def create_app(settings: Settings, bootstrap: str, ingestor: Ingestor,
               on_outcome: Callable[[Outcome], None] | None = None) -> faust.App:
    """Build the worker app. Offsets are acked only after the ledger write returned."""
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{h}" for h in bootstrap.split(",")],
        web_enabled=False,
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.2,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=10,
        producer_compression_type="zstd",
        producer_max_request_size=32 << 20,
        consumer_max_fetch_size=32 << 20,
        stream_wait_empty=False,
        # Records fetched but not yet written wait in faust's buffer (4,096 by default, ~560 KB
        # each): when submissions run ahead of the worker, that backlog was the process's
        # memory. Two writes' worth is enough to keep the worker busy (3M events end to end:
        # RSS at the end of submitting 1,112 -> 887 MB, same rate).
        stream_buffer_maxsize=2 * RECORDS_PER_WRITE,
        # Static membership (KIP-345): a worker restarted after kill -9 takes its old place in
        # the group at once. Without it the dead member lingers and keeps its partitions.
        consumer_group_instance_id=settings.worker_id,
    )
    events_topic = app.topic(TOPIC, value_type=bytes, value_serializer="raw", key_serializer="raw",
                             partitions=settings.partitions)
    dlq_topic = app.topic(DLQ_TOPIC, value_type=bytes, value_serializer="raw", key_serializer="raw",
                          partitions=1)

    async def _reload_on_assignment(app: faust.App, assigned, **kwargs) -> None:  # noqa: ANN001
        # Partitions (and so units) may have moved here from another worker: its chain heads
        # are in the ledger, not in our memory.
        ingestor.stale = True
        if _take_assignment(app, assigned, settings):
            app.jiandu_loading = asyncio.create_task(_load_now(ingestor))

    async def _hold_on_revocation(app: faust.App, revoked, **kwargs) -> None:  # noqa: ANN001
        app.jiandu_sole = False  # until the next assignment says otherwise

    # mode keeps a signal's receivers on the App class, not on the app: connected strongly, the
    # handler (and the ingestor it holds, with its known event ids, 8 bytes an event) outlived
    # the app, in every process that builds more than one (the bench's 10M run: its replay began
    # at 903 MB resident after the end-to-end phase, 747 without the leak). Connected weakly and
    # held by the app, it goes with the app.
    app.jiandu_handlers = [_reload_on_assignment, _hold_on_revocation]
    app.on_partitions_assigned.connect(_reload_on_assignment, weak=True)
    app.on_partitions_revoked.connect(_hold_on_revocation, weak=True)

    @app.agent(events_topic, name="ingest")
    async def ingest(stream: faust.Stream) -> None:
        # A batch's projection (ClickHouse's work) runs while the next batch is written
        # (Python's): see streams.ingest. Projections stay in write order, one at a time.
        projecting: asyncio.Task | None = None
        try:
            async for batch in stream.take_events(RECORDS_PER_WRITE, within=WRITE_WITHIN_S):
                _hold_acks(batch, True)  # until it is written (faust acks a batch it hands out when it stops)
                await _until_sole_writer(app)
                deliveries = [Delivery(e.value, e.message.partition, e.message.offset) for e in batch]
                outcome = await _write_until_done(ingestor, deliveries)
                _hold_acks(batch, False)
                for reject in outcome.rejected:
                    await dlq_topic.send(key=reject["unit_id"].encode() or None,
                                         value=json.dumps(reject, default=str, ensure_ascii=False).encode())
                if projecting is not None:
                    await projecting
                projecting = asyncio.create_task(_project_until_done(ingestor, outcome, on_outcome))
        finally:
            # Stopping (agents stop before the consumer leaves the group): let the write and the
            # projection in flight land first, each in a thread, so that no other worker takes
            # these partitions over while they are still arriving in the store.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.to_thread(ingestor.wait_idle, 30), 31)
            if projecting is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(projecting), 30)

    return app


def _hold_acks(batch: list[faust.EventT], held: bool) -> None:
    """Keep faust from acknowledging a batch (`held`), or let it again.

    faust's `take_events` acknowledges every event of the batch it handed out when the stream
    stops (`Stream.on_stop` closes the generator), written or not, and the consumer commits
    those offsets as it stops. A worker stopped while its batch waited (its write retried with
    the store down, or held while another worker was in the group) had that batch skipped: the
    next worker started at the committed offsets, and only an outbox relay publishing the batch
    again (the API's does) brought it back. A message marked acked already is one faust's ack
    passes over (`Message.ack`), so while held its offset is never committed and Kafka
    delivers it again; the ingestor skips whatever of it was written after all.
    """
    for event in batch:
        event.message.acked = held


async def _write_until_done(ingestor: Ingestor, deliveries: list[Delivery]) -> Outcome:
    """Retry the ledger write until it succeeds: an unwritten record must never be acked."""
    return await _until_done(ingestor.write, deliveries, what="账本写入失败 (ledger write failed)")


async def _project_until_done(ingestor: Ingestor, outcome: Outcome,
                              on_outcome: Callable[[Outcome], None] | None) -> None:
    """Retry the projection until it succeeds (a retry catches up from the ledger); then the
    outcome is reported: its events are queryable."""
    await _until_done(ingestor.project, what="投影失败 (projection failed)")
    if on_outcome is not None:
        on_outcome(outcome)


async def _until_done(step: Callable[..., T], *args: object, what: str) -> T:
    delay = 0.2
    while True:
        try:
            return await asyncio.to_thread(step, *args)
        except Exception as exc:  # noqa: BLE001 - store trouble: wait and try again
            log.error("%s，%.1f 秒后重试 (retrying in %.1f s): %s", what, delay, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def _until_sole_writer(app: faust.App) -> None:
    """Return once this worker holds every partition of the events topic (`_take_assignment`).
    Until then another member is in the consumer group (a second worker, or a static member
    that stopped less than the session timeout ago), and this worker writes nothing.

    Two workers writing at once are not safe yet (docs/deploy.md, "One worker"): a worker
    catching up folds what the ledger holds beyond the folds, another's batch still being
    projected among it (a second `jiandu worker` started and stopped three times while 120k
    events flowed: 6 % of every figure counted twice; see also `_load_now`). Holding keeps the
    records in Kafka, unacknowledged, until one worker is left, which then writes them all.
    """
    while not getattr(app, "jiandu_sole", False):
        await asyncio.sleep(SOLE_CHECK_S)


async def _load_now(ingestor: Ingestor) -> None:
    """Catch the projections up and reload chain heads as soon as this worker holds every
    partition. Not before: at a worker's start, another worker in the group may have a batch
    written and still being projected, which a catch-up would fold a second time (a second
    `jiandu worker` started while the first ingested: figures ~6 % high, hold or no hold)."""
    try:
        await asyncio.to_thread(ingestor.load_if_stale)
    except Exception as exc:  # noqa: BLE001 - the store may be away: the first write loads again
        log.warning("追平投影失败，首批写入时重试 (catching up failed; the first write tries again): %s", exc)


def _take_assignment(app: faust.App, assigned: set, settings: Settings) -> bool:
    """Note whether this worker now holds every partition of the events topic, say so in the
    log when that changes (it holds off while it does not: `_until_sole_writer`), and return
    whether it does."""
    owned = len({tp.partition for tp in assigned if tp.topic == TOPIC})
    total = app.consumer.topic_partitions(TOPIC) or settings.partitions  # before it has seen the topic
    app.jiandu_sole = owned >= total
    if not app.jiandu_sole:
        log.warning("本 worker 只分到 %d/%d 个分区：消费组 %s 中还有别的成员。两个 worker 同时写入会重复计数，"
                    "暂停写入，直到只剩一个 worker (this worker holds %d of %d partitions: another member "
                    "is in the group. Writing is on hold until one worker is left: run one worker)",
                    owned, total, settings.consumer_group, owned, total)
    elif getattr(app, "jiandu_held", False):
        log.warning("已分到全部 %d 个分区，继续写入 (all %d partitions are this worker's again: writing resumed)",
                    total, total)
    app.jiandu_held = not app.jiandu_sole
    return app.jiandu_sole


class Worker:
    """The ingest app, started again when its consumer was put out of the group and stays out.

    A consumer that has not fetched for the max poll interval (faust's default 1,000 s) leaves
    its group. The worker does not fetch while its agent waits: the stream's buffer is full
    behind a write held by a replay (`Ingestor.paused`) or retried while the store is down.
    aiokafka rejoins only once the application fetches again, and faust fetches only once it
    has partitions again: the worker waited for ever, every later event in Kafka and none in
    the ledger (a 20 s hold with a 5 s interval: ~4,500 of 80,000 events landed, none in the
    5 minutes after). When the consumer has been out of the group for `rejoin_within_s`,
    the app is stopped and a new one started; it takes the partitions again (static
    membership), Kafka delivers what was not acknowledged again, and the ingestor skips what
    it already wrote. A write of the old app still waiting (paused) runs first:
    `Ingestor.write` runs one write at a time.
    """

    def __init__(self, settings: Settings, bootstrap: str, ingestor: Ingestor,
                 on_outcome: Callable[[Outcome], None] | None = None, *,
                 max_poll_interval_s: float | None = None, rejoin_within_s: float = 30.0):
        self._build = lambda: create_app(settings, bootstrap, ingestor, on_outcome)
        self.max_poll_interval_s = max_poll_interval_s  # faust's default when None
        self.rejoin_within_s = rejoin_within_s
        self.restarts = 0
        self.app: faust.App | None = None
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        await self._start_app()
        self._watch = asyncio.create_task(self._watch_membership(), name="worker-membership")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.app is not None:
            await self.app.stop()

    async def _start_app(self) -> None:
        self.app = self._build()
        if self.max_poll_interval_s is not None:
            self.app.conf.broker_max_poll_interval = self.max_poll_interval_s
        await self.app.start()

    async def _watch_membership(self) -> None:
        joined, out_since = False, None  # out of the group only counts once the app has joined
        while True:
            await asyncio.sleep(self.rejoin_within_s / 6)
            member = _in_group(self.app)
            joined = joined or member
            if member or not joined:
                out_since = None
                continue
            out_since = out_since or time.monotonic()
            if time.monotonic() - out_since < self.rejoin_within_s:
                continue
            log.warning("消费者已离开消费组 %.0f 秒，重新启动 (the consumer left its group %.0f s ago and did "
                        "not rejoin: starting the worker again)", self.rejoin_within_s, self.rejoin_within_s)
            try:
                await self.app.stop()
                await self._start_app()
            except Exception as exc:  # noqa: BLE001 - the broker may be away: try again later
                log.error("重新启动失败，%.0f 秒后重试 (restart failed, trying again in %.0f s): %s",
                          self.rejoin_within_s, self.rejoin_within_s, exc)
                out_since = time.monotonic()
                continue
            self.restarts += 1
            joined, out_since = False, None


def _in_group(app: faust.App) -> bool:
    """Whether the app's Kafka consumer is a member of its group. aiokafka's group coordinator
    (private, under faust's consumer thread) knows; faust's own assignment outlives leaving."""
    try:
        coordinator = app.consumer._thread._consumer._coordinator  # noqa: SLF001
    except AttributeError:  # not started yet, or the libraries moved it: no restart on a guess
        return True
    return bool(coordinator.member_id)
