"""The `Publisher` port and its Kafka implementation (kafka-python, acks=all, idempotent)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2


@dataclass(frozen=True)
class OutgoingRecord:
    partition: int
    key: bytes
    value: bytes


class PublishFailed(RuntimeError):
    """The broker did not acknowledge every record."""


class Publisher(Protocol):
    def partitions(self) -> int: ...
    def publish(self, records: list[OutgoingRecord]) -> None: ...
    def close(self) -> None: ...


def bootstrap_timeout(config: dict, timeout_s: float) -> dict:
    """kafka-python 3 waits `bootstrap_timeout_ms` (30 s by default) for a first broker when a
    client is built; 2.x gave up after `api_version_auto_timeout_ms` (2 s). With no broker,
    `jiandu submit` took 30 s to spool a file, and the API's relay 30 s a retry."""
    return {"bootstrap_timeout_ms": int(timeout_s * 1000)} if "bootstrap_timeout_ms" in config else {}


@functools.lru_cache(maxsize=1 << 16)  # murmur2 is pure Python (~2.5 µs); units are few
def partition_for(unit_id: str, partitions: int) -> int:
    """Partition of a unit: the Java/kafka-python default partitioner on key = unit_id."""
    return (murmur2(unit_id.encode("utf-8")) & 0x7FFFFFFF) % partitions


class KafkaPublisher:
    """Publisher on kafka-python. Records are zstd-compressed: the broker is byte-bound."""

    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 15.0,
                 ensure_topics: Callable[[], None] | None = None):
        self.bootstrap, self.topic, self.timeout_s = bootstrap, topic, timeout_s
        # Called after a failure: a broker that came back empty (memory storage) needs its
        # topics again before the next attempt can succeed.
        self.ensure_topics = ensure_topics
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _connect(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self.bootstrap.split(","),
                        acks="all",
                        enable_idempotence=True,
                        compression_type="zstd",
                        linger_ms=2,
                        batch_size=1 << 20,
                        max_request_size=32 << 20,
                        max_block_ms=int(self.timeout_s * 1000),
                        request_timeout_ms=int(self.timeout_s * 1000),
                        delivery_timeout_ms=int(self.timeout_s * 2000),
                        reconnect_backoff_max_ms=2000,
                        **bootstrap_timeout(KafkaProducer.DEFAULT_CONFIG, self.timeout_s),
                    )
                except KafkaError as exc:
                    raise PublishFailed(f"消息队列不可用 (broker {self.bootstrap} unavailable): {exc}") from exc
            return self._producer

    def partitions(self) -> int:
        producer = self._connect()
        try:
            found = producer.partitions_for(self.topic)
        except KafkaError as exc:
            raise PublishFailed(f"无法读取主题 {self.topic} 的分区 (topic metadata): {exc}") from exc
        if not found:
            raise PublishFailed(f"主题 {self.topic} 不存在 (topic missing)")
        return len(found)

    def publish(self, records: list[OutgoingRecord]) -> None:
        """Send every record and return only when the broker acknowledged all of them."""
        if not records:
            return
        producer = self._connect()
        try:
            futures = [producer.send(self.topic, key=r.key, value=r.value, partition=r.partition)
                       for r in records]
            producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not acknowledged"
            self._reset()
            if self.ensure_topics is not None:
                try:
                    self.ensure_topics()
                except Exception:  # noqa: BLE001 - still down: the caller retries later
                    pass
            raise PublishFailed(f"消息队列未确认 (broker did not acknowledge): {exc}") from exc

    def _reset(self) -> None:
        # A producer that failed may hold a fenced idempotent session: start afresh next time.
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=1)
                except Exception:  # noqa: BLE001
                    pass
                self._producer = None

    def close(self) -> None:
        self._reset()
