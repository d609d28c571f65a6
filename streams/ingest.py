"""Fold Kafka records into the ledger: upcast → validate → dedupe → chain → write → project.

`Ingestor` holds no faust code so it runs the same under the faust agent, in tests and in
the benchmark. It changes its in-memory state (chain heads, known event ids) only after
the ledger write returned, so a failed or killed write leaves nothing half-applied: the
record is delivered again and every event in it is either new or a known duplicate.

A batch is two steps. `write` is Python's work and the ledger insert: once it returns the
batch is durable and its records may be acknowledged. `project` folds what was written into
`facts`, `daily` and `items`, in ClickHouse. The worker runs a batch's `project` while it
`write`s the next one (ClickHouse works while Python validates); projections run one at a
time, in write order. Rows written but not yet projected are found again from the ledger by
`catch_up` (start, rebalance, a failed projection), so nothing is lost and, because a
catch-up takes over the pending rows, nothing is folded twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from domain.chain import GENESIS, canonical_json, link_hash_parts
from domain.decode import DecodeError, Problem
from domain.events import CORRECTION_TYPES, PAYLOADS, EnvelopeBase, payload_of
from domain.gcpause import gc_paused
from domain.records import decode_events
from projections.ledger import Head, LedgerStore, Target
from projections.store import release_heap
from streams.known_ids import KnownIds

# The payload field naming the event a correction or retraction is about.
TARGET_FIELDS = {"event_corrected": "corrects", "event_retracted": "retracts"}
_ONE_US = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Delivery:
    """One Kafka record as the worker received it."""

    value: bytes | None
    partition: int = 0
    offset: int = 0


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    units: set[str] = field(default_factory=set)


class Ingestor:
    """Turns deliveries into chained ledger rows, exactly once per event_id."""

    def __init__(self, ledger: LedgerStore, clock: Callable[[], dt.datetime] | None = None):
        self.ledger = ledger
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.heads: dict[str, Head] = {}
        self.seen = KnownIds()
        # Set when in-memory state may trail the ledger: partitions moved to this worker, or a
        # write failed in a way that may still have committed. The next batch reloads first.
        self.stale = True
        # Written rows not yet projected: (unit_id, seq) keys, and whether any is a correction.
        self._pending: list[tuple[str, int]] = []
        self._pending_corrections = False
        self._behind = False  # a projection failed midway
        self._projecting = threading.Lock()  # one projection or catch-up at a time
        # One write at a time: a write chains onto the heads and checks the ids as they were
        # when it began. Two at once (a restarted worker's, beside the old one's still held
        # by a replay) would both chain onto one head and both store the same events.
        self._writing = threading.Lock()
        self._appending = threading.Lock()  # a ledger append and its pending keys, together
        store = getattr(ledger, "store", None)
        if store is not None:  # a replay rebuilds from the ledger: no pending rows then
            store.pause_with(self.paused)

    def load(self) -> None:
        """Read chain heads and known event ids back from the ledger (start, rebalance)."""
        self.catch_up()
        self.heads = self.ledger.heads()
        self.seen = KnownIds(self.ledger.event_ids())
        self.stale = False

    def load_if_stale(self) -> None:
        """`load`, unless a write has since: a worker that holds its partitions catches up at
        once (after a crash, with nothing new arriving), not at its first batch."""
        with self._writing:
            if self.stale:
                self.load()

    def catch_up(self) -> None:
        """Project every ledger row the projections lack, the pending ones included."""
        with self._projecting, self._appending:  # no append in between: each row folded once
            self._catch_up()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Project what is pending and hold further writes and projections (a replay runs
        meanwhile: rows in the ledger but not yet in `facts` would be folded by both)."""
        with self._projecting, self._appending:
            if self._behind:
                self._catch_up()
            elif self._pending:
                self._project(self._pending, self._pending_corrections)
                self._pending, self._pending_corrections = [], False
            yield

    def _catch_up(self) -> None:
        self.ledger.catch_up()
        self._pending, self._pending_corrections, self._behind = [], False, False

    def _project(self, keys: list[tuple[str, int]], corrections: bool) -> None:
        try:
            self.ledger.project(keys, corrections)
        except BaseException:
            self._behind = True  # part of it may have landed: only a catch-up knows what
            raise

    def handle(self, deliveries: Iterable[Delivery]) -> Outcome:
        """Write a list of deliveries and project them: when it returns, they are queryable."""
        outcome = self.write(deliveries)
        self.project()
        return outcome

    def write(self, deliveries: Iterable[Delivery]) -> Outcome:
        """Validate, dedupe and chain a list of deliveries, then write them in one insert."""
        with self._writing, gc_paused():  # tens of thousands of short-lived objects: see domain.gcpause
            return self._write(deliveries)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the write in flight, if any, to end; return whether
        it did (a worker stopping lets it land before another takes its partitions over)."""
        if not self._writing.acquire(timeout=timeout):
            return False
        self._writing.release()
        return True

    def project(self) -> None:
        """Fold every row written so far into the projections (after a failed projection, by
        catching up from the ledger)."""
        with self._projecting:
            with self._appending:
                if self._behind:
                    self._catch_up()
                    return
                keys, corrections = self._pending, self._pending_corrections
                self._pending, self._pending_corrections = [], False
            if keys:  # appends go on meanwhile: their rows are past these ranges
                self._project(keys, corrections)
        # What a batch freed goes to glibc's free lists, which kept growing with the events
        # ingested (3M events end to end: 945 MB resident after; trimmed after each batch, 744).
        release_heap()

    def _write(self, deliveries: Iterable[Delivery]) -> Outcome:
        if self.stale:
            self.load()
        outcome = Outcome()
        decoded: list[tuple[Delivery, str, str, EnvelopeBase]] = []
        for delivery in deliveries:
            try:
                record, events = decode_events(delivery.value)
            except ValueError as exc:
                outcome.rejected.append(self._reject(delivery, 0, None, Problem(0, None, "(record)", str(exc))))
                continue
            outcome.batch_ids.append(record.batch_id)
            for index, event in enumerate(events):
                if isinstance(event, DecodeError):  # then the record carries its raw events
                    outcome.rejected.append(self._reject(delivery, index, record.events[index], *event.problems))
                    continue
                decoded.append((delivery, record.batch_id, record.submitted_by, event))

        known = self._known([item[3].event_id for item in decoded])
        accepted: list[tuple[Delivery, str, str, EnvelopeBase]] = []
        batch_seen: set[bytes] = set()
        for item in decoded:
            key = item[3].event_id.bytes
            if key in known or key in batch_seen:
                outcome.duplicates += 1
                continue
            batch_seen.add(key)
            accepted.append(item)

        targets = self._targets(accepted)
        rows: list[dict[str, Any]] = []
        heads = dict(self.heads)
        now = self.clock()  # the batch's recorded_at (later than each unit's last, see _chain)
        for delivery, batch_id, submitted_by, event in accepted:
            try:
                target_id, target_type, payload = self._resolve(event, targets)
            except DecodeError as exc:
                outcome.rejected.append(self._reject(delivery, 0, _raw(event), *exc.problems))
                continue
            row = self._chain(heads, event, payload, submitted_by, target_id, target_type, now)
            row.update(source_partition=delivery.partition, source_offset=delivery.offset,
                       batch_id=batch_id)
            rows.append(row)
            if event.type not in CORRECTION_TYPES:  # type: ignore[attr-defined]
                targets[event.event_id] = Target(target_type, event.unit_id, False)

        try:
            with self._appending:
                self.ledger.append(rows)
                self._pending += [(r["unit_id"], r["seq"]) for r in rows]
                self._pending_corrections |= any(r["type"] in CORRECTION_TYPES for r in rows)
            self.ledger.reject(outcome.rejected)
            self.ledger.finish_batches(outcome.batch_ids)
        except BaseException:
            self.stale = True  # the insert may have landed after all: trust only the ledger
            raise
        # Only now, with the write durable, does in-memory state move on.
        self.heads = heads
        self.seen.add([r["event_id"].bytes for r in rows])
        outcome.stored = len(rows)
        outcome.units = {r["unit_id"] for r in rows}
        return outcome

    def _known(self, event_ids: list[uuid.UUID]) -> set[bytes]:
        """The ids among `event_ids` the ledger holds: those the prefix index may know, each
        confirmed by the ledger (a shared prefix is not a duplicate)."""
        hits = self.seen.maybe_known([i.bytes for i in event_ids])
        maybe = [i for i, hit in zip(event_ids, hits, strict=True) if hit]
        return {i.bytes for i in self.ledger.targets(maybe)} if maybe else set()

    def _targets(self, accepted: list[tuple[Delivery, str, str, EnvelopeBase]]) -> dict[uuid.UUID, Target]:
        # By type, not getattr(payload, "corrects", None): a missing attribute on a pydantic
        # model raises and catches an AttributeError (~3 µs, for every event of a batch).
        wanted = {getattr(event.payload, TARGET_FIELDS[event.type])  # type: ignore[attr-defined]
                  for *_, event in accepted if event.type in TARGET_FIELDS}  # type: ignore[attr-defined]
        return self.ledger.targets(wanted) if wanted else {}

    def _resolve(self, event: EnvelopeBase, targets: dict[uuid.UUID, Target]) -> tuple[uuid.UUID, str, dict]:
        """Return (target id, target type, normalised payload); corrections are checked here."""
        event_type: str = event.type  # type: ignore[attr-defined]
        payload = payload_of(event)
        if event_type not in CORRECTION_TYPES:
            return event.event_id, event_type, payload
        field_name = TARGET_FIELDS[event_type]
        target_id = getattr(event.payload, field_name)  # type: ignore[attr-defined]
        target = targets.get(target_id)
        where = f"payload.{field_name}"

        def fail(message: str, loc: str = where) -> DecodeError:
            return DecodeError([Problem(0, str(event.event_id), loc, message)])

        if target is None:
            raise fail(f"被更正的事件 {target_id} 不存在 (the referenced event is not in the ledger)")
        if target.is_correction:
            raise fail("不能更正或撤回一条更正/撤回事件 (cannot correct a correction)")
        if target.unit_id != event.unit_id:
            raise fail("只能更正本单位的事件 (a unit corrects only its own events)", "unit_id")
        if event_type == "event_corrected":
            try:
                replacement = PAYLOADS[target.type].model_validate(event.payload.payload)  # type: ignore[attr-defined]
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise fail(f"更正内容不符合 {target.type}: {err['msg']}", f"payload.payload.{loc}") from None
            payload = {"corrects": str(target_id),
                       "payload": replacement.model_dump(mode="json", exclude_none=True)}
        return target_id, target.type, payload

    def _chain(self, heads: dict[str, Head], event: EnvelopeBase, payload: dict, submitted_by: str,
               target_id: uuid.UUID, target_type: str, now: dt.datetime) -> dict[str, Any]:
        """The ledger row of `event`, chained onto its unit's head in `heads` (which moves on).
        `recorded_at` is `now`, or 1 µs past the unit's last when that is not earlier."""
        head = heads.get(event.unit_id)
        if head is not None and now <= head.recorded_at:
            now = head.recorded_at + _ONE_US
        row = {
            "event_id": event.event_id,
            "type": event.type,  # type: ignore[attr-defined]
            "schema_version": event.schema_version,
            "unit_id": event.unit_id,
            "subject_id": event.subject_id,
            "occurred_at": event.occurred_at,
            "recorded_at": now,
            "submitted_by": submitted_by,
            "seq": (head.seq if head else 0) + 1,
            "payload": canonical_json(payload),
            "prev_hash": head.hash if head else GENESIS,
            "target_id": target_id,
            "target_type": target_type,
        }
        row["hash"] = link_hash_parts(row["prev_hash"], str(event.event_id), row["type"], event.schema_version,
                                      event.unit_id, event.subject_id, event.occurred_at, now,
                                      submitted_by, row["seq"], row["payload"])
        heads[event.unit_id] = Head(row["seq"], row["hash"], now)
        return row

    def _reject(self, delivery: Delivery, index: int, raw: Any, *problems: Problem) -> dict[str, Any]:
        first = problems[0]
        raw_text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
        return {
            "source_partition": delivery.partition,
            "source_offset": delivery.offset,
            "idx": index,
            "rejected_at": self.clock(),
            "unit_id": str(raw.get("unit_id", ""))[:64] if isinstance(raw, dict) else "",
            "event_id": first.event_id or "",
            "field": first.field,
            "reason": "; ".join(f"{p.field}: {p.message}" for p in problems)[:2000],
            "raw": (raw_text or "")[:10_000],
        }


def _raw(event: EnvelopeBase) -> dict[str, Any]:
    return json.loads(event.model_dump_json())
