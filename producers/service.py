"""Submitting validated events: outbox first (durable), then the broker, then the receipt."""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

from domain.events import EnvelopeBase
from domain.gcpause import gc_paused
from domain.records import encode_events
from producers.outbox import Outbox
from producers.publisher import OutgoingRecord, Publisher, PublishFailed, partition_for

log = logging.getLogger("jiandu.producer")
EVENTS_PER_RECORD = 2000


class Spooled(RuntimeError):
    """The broker did not acknowledge; the events wait in the outbox and will be delivered."""

    def __init__(self, events: int, cause: Exception):
        self.events = events
        super().__init__(f"{events} 条事件已暂存待发 (spooled, broker unavailable): {cause}")


@dataclass(frozen=True)
class PreparedBatch:
    batch_id: str
    record: OutgoingRecord
    events: int


def prepare(events: list[EnvelopeBase], submitted_by: str, partitions: int) -> list[PreparedBatch]:
    """Group events by their unit's partition, many events per Kafka record, order kept."""
    groups: dict[int, list[EnvelopeBase]] = defaultdict(list)
    for event in events:
        groups[partition_for(event.unit_id, partitions)].append(event)
    batches = []
    for partition, group in sorted(groups.items()):
        for i in range(0, len(group), EVENTS_PER_RECORD):
            chunk = group[i:i + EVENTS_PER_RECORD]
            batch_id = str(uuid.uuid4())
            value = encode_events(batch_id, submitted_by, chunk)
            record = OutgoingRecord(partition, chunk[0].unit_id.encode("utf-8"), value)
            batches.append(PreparedBatch(batch_id, record, len(chunk)))
    return batches


class Submitter:
    """Accept events: durable in the outbox, then acknowledged by the broker."""

    def __init__(self, outbox: Outbox, publisher: Publisher, partitions: int, until_receipt: bool = True):
        self.outbox, self.publisher, self.partitions = outbox, publisher, partitions
        # True: a published batch stays until the ledger's receipt (an outbox relay checks it).
        # False: the broker's acknowledgement hands it over (no one here can read receipts).
        self.until_receipt = until_receipt

    def submit(self, events: list[EnvelopeBase], submitted_by: str, publish: bool = True) -> int:
        """Return the number accepted; raise Spooled if the broker did not acknowledge, or if
        told not to try (`publish=False`: it did not answer a moment ago)."""
        with gc_paused():  # one JSON document per event: see domain.gcpause
            batches = prepare(events, submitted_by, self.partitions)
        self.outbox.put([(b.batch_id, b.record, b.events) for b in batches])
        if not publish:
            raise Spooled(len(events), PublishFailed("未尝试：消息队列刚才不可用 (not tried: the broker was "
                                                     "unavailable a moment ago)"))
        try:
            self.publisher.publish([b.record for b in batches])
        except PublishFailed as exc:
            raise Spooled(len(events), exc) from exc
        self.published([b.batch_id for b in batches])
        return len(events)

    def published(self, batch_ids: list[str]) -> None:
        """Record that the broker acknowledged these batches."""
        if self.until_receipt:
            self.outbox.mark_published(batch_ids)
        else:
            self.outbox.remove(batch_ids)


class OutboxRelay:
    """Deliver what the outbox holds until the ledger confirms it (by batch receipt)."""

    def __init__(self, outbox: Outbox, publisher: Publisher, finished_batches,
                 republish_after_s: float = 30.0):
        self.outbox, self.publisher = outbox, publisher
        self.finished_batches = finished_batches  # Callable[[list[str]], set[str]]
        self.republish_after_s = republish_after_s

    def forget_broker(self) -> None:
        """The broker restarted empty (memory storage): everything unconfirmed goes again."""
        self.outbox.forget_published([b.batch_id for b in self.outbox.all_pending(limit=10**9)])

    def run_once(self) -> dict[str, int]:
        confirmed = self._confirm()
        published = self._publish(self.outbox.unpublished())
        stale = self.outbox.published_before(time.time() - self.republish_after_s)
        done = self.finished_batches([b.batch_id for b in stale]) if stale else set()
        stale = [b for b in stale if b.batch_id not in done]
        republished = self._publish(stale)
        return {"confirmed": confirmed, "published": published, "republished": republished}

    def _confirm(self) -> int:
        pending = self.outbox.all_pending()
        done = self.finished_batches([b.batch_id for b in pending if b.published_at is not None])
        self.outbox.remove(sorted(done))
        return len(done)

    def _publish(self, batches) -> int:
        if not batches:
            return 0
        try:
            self.publisher.publish([b.record for b in batches])
        except PublishFailed as exc:
            log.warning("暂存事件发送失败，稍后重试 (outbox relay: broker unavailable): %s", exc)
            return 0
        self.outbox.mark_published([b.batch_id for b in batches])
        return sum(b.events for b in batches)
