"""`jiandu submit` and `jiandu simulate`: through the API, or straight to the broker with
the outbox in the data dir (spooled when the broker is down)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from domain.decode import decode_batch
from domain.events import EnvelopeBase
from domain.labels import column_label
from domain.records import event_to_json
from jiandu import console, remote
from jiandu.settings import TOPIC, Settings
from producers.outbox import Outbox
from producers.publisher import KafkaPublisher, PublishFailed
from producers.service import Spooled, Submitter

API_CHUNK = 10_000


def _bootstrap(settings: Settings) -> str | None:
    return settings.kafka_bootstrap or (settings.running() or {}).get("kafka_bootstrap")


class _Sink:
    """Where submitted events go: the API, or outbox + broker."""

    def __init__(self, settings: Settings, api: str | None, token: str | None):
        self.api, self.token = api, token
        if api and not token:
            raise ValueError("使用 --api 时需要 --token 或 JIANDU_TOKEN (a token is needed with --api)")
        self.submitter = None
        self.spooled = 0
        self.broker_down = False  # it failed once this run: the rest go straight to the outbox
        if not api:
            bootstrap = _bootstrap(settings) or "127.0.0.1:1"  # nothing listening: spool only
            publisher = KafkaPublisher(bootstrap, TOPIC, timeout_s=5)
            # A platform on this data dir has an outbox relay, which keeps a batch until the ledger
            # receipts it (its embedded broker forgets on restart). Without one, the broker is
            # JIANDU_KAFKA_BOOTSTRAP's, and its acknowledgement (acks=all, replicated) is the
            # hand-over: kept batches would wait for a receipt no one here can read, and the
            # outbox would grow with every submission.
            alone = settings.running() is None
            self.submitter = Submitter(Outbox(settings.outbox_path), publisher, settings.partitions,
                                       until_receipt=not alone)
            if alone:
                self._deliver_spooled()

    def _deliver_spooled(self) -> None:
        """Publish what an earlier run spooled. A platform on this data dir does that with its
        outbox relay; without one (a machine that only submits, to JIANDU_KAFKA_BOOTSTRAP),
        spooled events waited for ever, whatever the message said."""
        outbox, publisher = self.submitter.outbox, self.submitter.publisher
        delivered = 0
        while batches := outbox.unpublished():
            try:
                publisher.publish([b.record for b in batches])
            except PublishFailed:
                self.broker_down = True  # still unavailable: they wait for the next run
                break
            self.submitter.published([b.batch_id for b in batches])
            delivered += sum(b.events for b in batches)
        if delivered:
            print(f"已投递此前暂存的 {delivered} 条 (delivered {delivered} events spooled earlier)")

    def send(self, events: list[EnvelopeBase]) -> list[dict]:
        """Send; return API problems (index relative to `events`), empty when accepted."""
        if self.submitter is not None:
            try:
                # Once the broker has not answered, the rest go straight to the outbox: trying
                # each chunk cost its timeout (5 s), 100 s for a 200k-event file submitted offline.
                self.submitter.submit(events, "cli", publish=not self.broker_down)
            except Spooled as exc:
                self.spooled += exc.events
                self.broker_down = True
            return []
        response = remote.request("POST", f"{self.api.rstrip('/')}/v1/events", timeout=120,
                                  headers={"Authorization": f"Bearer {self.token}"},
                                  json={"events": [event_to_json(e) for e in events]})
        if response.status_code == 202:
            return []
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code in (403, 422) and body.get("problems"):
            return body["problems"]
        raise remote.refused(response)


def submit_file(settings: Settings, path: Path, unit: str | None = None, api: str | None = None,
                token: str | None = None) -> int:
    from producers.importers import chunks, read_events

    reading = console.counter("读取 reading", "行 rows")
    result = read_events(path, progress=reading)
    reading.end()
    problems = [(p.row, p.event_id, p.field, p.message) for p in result.problems]
    events = list(result.events)
    rows = result.rows
    if unit:
        kept = []
        for i, event in enumerate(events):
            if event.unit_id == unit:
                kept.append(event)
            else:
                row = rows[i] if i < len(rows) else 0
                problems.append((row, str(event.event_id), "unit_id",
                                 f"单位 {event.unit_id} 不是 --unit {unit} (row is for another unit)"))
        events = kept
    sink = _Sink(settings, api, token)
    row_of = {str(e.event_id): r for e, r in zip(result.events, result.rows, strict=False)}
    accepted = done = 0
    sending = console.bar("提交 submitting") if len(events) > API_CHUNK else None
    for chunk in chunks(events, API_CHUNK):
        try:
            rejected = sink.send(chunk)
        except remote.Unreachable as exc:
            raise remote.Unreachable(
                f"{exc}\n已确认接收 {accepted} 条，其余未确认；重新提交同一文件是安全的，已接收的事件不会重复计数 "
                f"({accepted} events confirmed, the rest not; submitting the same file again is safe: "
                f"events already accepted are not counted twice)") from None
        if rejected:  # the API refused the whole chunk: name the rows it complained about
            for p in rejected:
                row = row_of.get(str(p.get("event_id")), 0)
                problems.append((row, p.get("event_id"), p.get("field"), p.get("message")))
        else:
            accepted += len(chunk)
        if sending is not None:
            sending(done := done + len(chunk), len(events))
    if getattr(result, "note", None):
        print(result.note)
    for row, event_id, field, message in sorted(problems, key=lambda p: p[0] or 0):
        column = column_label(field) if field else field
        where = f"{column} ({field})" if column != field else field
        print(f"  第 {row} 行 row {row}  {where}: {message}" + (f"  [{event_id}]" if event_id else ""),
              file=sys.stderr)
    delivered = accepted - sink.spooled
    print(f"接收 accepted: {accepted}  拒绝 rejected: {len(problems)}"
          + (f"  其中暂存待发 spooled: {sink.spooled} (消息队列不可用；由本数据目录上运行的平台、下一次 "
             f"jiandu submit 或 jiandu outbox --deliver 投递 — broker unavailable; delivered by the platform "
             f"running on this data dir, the next jiandu submit, or jiandu outbox --deliver)" if sink.spooled else "")
          + (f"  已投递 delivered: {delivered}" if not api else ""))
    return 1 if problems else 0


def outbox(settings: Settings, deliver: bool) -> int:
    """`jiandu outbox`: what the data dir's outbox holds, and (`--deliver`) send what waits."""
    if not settings.outbox_path.exists():
        print(f"发件箱为空 (no outbox in {settings.data_dir})")
        return 0
    platform = settings.running()
    if deliver:
        if platform is None and not settings.kafka_bootstrap:
            raise ValueError("没有可投递的消息队列：请启动本数据目录上的平台（其中转会投递），或设置 "
                             "JIANDU_KAFKA_BOOTSTRAP (no broker to deliver to: start the platform on this "
                             "data dir, whose relay delivers, or set JIANDU_KAFKA_BOOTSTRAP)")
        if platform is None:
            _Sink(settings, None, None)  # delivers what waits, and says so
    stats = Outbox(settings.outbox_path).stats()
    waiting, sent = stats["unpublished_events"], stats["events"] - stats["unpublished_events"]
    print(f"待发送 waiting for the broker: {waiting} 条 events ({stats['unpublished_batches']} 批 batches)")
    print(f"已发出、待账本确认 sent, awaiting the ledger's receipt: {sent} 条 events")
    if platform is not None and stats["batches"]:
        print("本数据目录上的平台正在运行，由其中转投递并在入账后删除 (the platform running on this data dir "
              "delivers them, and removes each once the ledger holds it)")
    elif waiting and deliver:
        print(f"消息队列不可用，仍在等待 (the broker at {settings.kafka_bootstrap} did not take them: they still wait)")
    elif waiting:
        print("投递：jiandu outbox --deliver (设置 JIANDU_KAFKA_BOOTSTRAP)，或启动本数据目录上的平台 "
              "(deliver: jiandu outbox --deliver with JIANDU_KAFKA_BOOTSTRAP, or start the platform here)")
    return 0


def simulate(settings: Settings, units: int, events: int, rate: float, api: str | None,
             token: str | None) -> int:
    from producers.simulate import Workload, build_province

    province = build_province()
    if units:
        province = province[:max(units, 2)]
    sink = _Sink(settings, api, token)
    sink.send(decode_batch(province))
    workload = Workload.fresh(province)
    sent, started, batch = 0, time.monotonic(), 1000
    while sent < events:
        n = min(batch, events - sent)
        problems = sink.send(decode_batch(workload.next_batch(n)))
        if problems:
            raise ValueError(f"模拟数据被拒绝 (simulated events rejected): {problems[:3]}")
        sent += n
        elapsed = time.monotonic() - started
        print(f"\r模拟 simulate: {sent}/{events} 条, {sent / max(elapsed, 1e-6):,.0f} 条/秒", end="", flush=True)
        if rate > 0:
            ahead = sent / rate - elapsed
            if ahead > 0:
                time.sleep(ahead)
    print()
    if sink.spooled:
        print(f"暂存待发 spooled: {sink.spooled}")
    return 0
