"""`jiandu bench` (DESIGN §9): the pipeline against its own limits, in one run, on one broker
and one store. Ratios between figures of one run are what count."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

from domain.decode import decode_batch, decode_body
from domain.gcpause import freeze_startup_heap
from jiandu import console
from jiandu.broker import TansuBroker, ensure_topics, free_port
from jiandu.settings import TOPIC, Settings
from producers.outbox import Outbox
from producers.publisher import KafkaPublisher
from producers.service import Submitter
from producers.simulate import Workload, build_province
from projections.ledger import LEDGER_COLUMNS, ClickHouseLedger, ledger_columns
from projections.store import ClickHouseStore
from streams.ingest import Ingestor

FIGURES = ("events", "e2e_events_per_s", "ceiling_consume_events_per_s", "ceiling_insert_rows_per_s",
           "naive_events_per_s", "freshness_p50_ms", "freshness_p95_ms", "replay_events_per_s",
           "api_p50_ms", "api_p99_ms", "rss_mb")
BATCH = 5000  # events per submission
CHUNK = 50_000  # rows per insert in the insert-only ceiling
NAIVE_TOPIC = "bench.naive"
# "Queryable" means in the live figures: an event whose seq its unit's watermarks in `daily`
# and in `items` have both reached is in `facts`, `items` and `daily` (the two fold at once:
# `projections.ledger`). The probe names the events' units too (the ledger's key): by event id
# alone a poll read the whole ledger's ids, 66 ms a poll on a 10M ledger instead of 28, on the
# cores the worker is using.
_WATERMARKS = ("SELECT unit_id, max(upto_seq) AS upto FROM {table} WHERE {column} = 'upto'{units} GROUP BY unit_id")
_UNITS = " AND unit_id IN {units:Array(String)}"
FOLDED = ("SELECT count() FROM (SELECT unit_id, seq FROM ledger WHERE unit_id IN {units:Array(String)} "
          "AND event_id IN {ids:Array(UUID)}) AS l "
          f"INNER JOIN ({_WATERMARKS.format(table='daily', column='person_type', units=_UNITS)}) AS d USING unit_id "
          f"INNER JOIN ({_WATERMARKS.format(table='items', column='kind', units=_UNITS)}) AS i USING unit_id "
          "WHERE l.seq <= d.upto AND l.seq <= i.upto")
UNFOLDED = ("SELECT count() FROM (SELECT unit_id, max(seq) AS top FROM ledger GROUP BY unit_id) AS l "
            f"LEFT JOIN ({_WATERMARKS.format(table='daily', column='person_type', units='')}) AS d USING unit_id "
            f"LEFT JOIN ({_WATERMARKS.format(table='items', column='kind', units='')}) AS i USING unit_id "
            "WHERE l.top > d.upto OR l.top > i.upto SETTINGS join_use_nulls = 0")
RAW_TOPIC = "bench.raw"


def _rss_mb() -> float:
    try:  # Linux: resident pages of this process
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20
    except (OSError, IndexError, ValueError):
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _restart_peak_rss() -> bool:
    """Make the peak RSS start again from the current RSS (Linux: /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Bench:
    def __init__(self, events: int, work: Path, scale_to: int | None = None):
        self.n = events
        self.scale_to = scale_to
        self.work = work
        # Always its own broker and a throwaway chDB: never the JIANDU_* production endpoints.
        self.settings = Settings(data_dir=work / "data", partitions=4, consumer_group="bench-e2e",
                                 clickhouse_url=None, kafka_bootstrap=None, worker_id="bench")
        self.results: dict[str, float | int] = {"events": events}

    async def run(self) -> dict:
        broker = TansuBroker(0, None, self.work / "tansu.log")
        await asyncio.to_thread(broker.start)
        try:
            self.bootstrap = broker.bootstrap
            await asyncio.to_thread(ensure_topics, self.bootstrap, self.settings.partitions)
            self.store = ClickHouseStore(self.settings.store_url)
            self.store.migrate()
            self.probe = ClickHouseStore(self.settings.store_url)  # polls without taking the writer's lock
            self.units = build_province()
            await asyncio.to_thread(self.generate)
            for phase in (self.insert_ceiling, self.consume_ceiling, self.end_to_end, self.naive):
                await phase()
                self._settle()
            await self.replay_rate()
            await self.api_latency()
            self.results["rss_mb"] = _peak_rss_mb()
            if self.scale_to and self.scale_to > self.n:
                await self.at_scale()
        finally:
            await asyncio.to_thread(broker.stop)
            for store in (getattr(self, "store", None), getattr(self, "probe", None)):
                if store is not None:
                    store.close()
        return {key: self.results[key] for key in FIGURES}  # in DESIGN §9 order

    def _settle(self) -> None:
        """Hand back what a phase left behind before the next one starts: its garbage (reference
        cycles too) and what the allocators keep freed. Otherwise the bench's own scaffolding
        stayed resident under the platform's later peaks: 3M rows through the insert-only ceiling
        left +415 MB, +100 MB after a collection and a purge."""
        gc.collect()
        self.store.release_memory()

    def _say(self, message: str) -> None:
        """A phase's start, with the peak RSS so far and now (which phase grows it shows in the
        log) and, of now, what chDB counts as in use (the rest: Python, and what chDB's allocator
        freed but still holds)."""
        tracked = self.probe.scalar("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'") or 0
        print(f"{message}  [峰值内存 peak RSS so far {_peak_rss_mb():,.0f} MB, 当前 now {_rss_mb():,.0f} MB, "
              f"chDB 在用 in use {int(tracked) / 2**20:,.0f} MB]", file=sys.stderr, flush=True)

    def generate(self) -> None:
        """Write the N events to a file, one batch of 5,000 per line, each line the body a client
        would POST (`{"events": [...]}`): every phase streams them from there, so a 10M run
        holds one batch in memory, and generating is never timed."""
        workload = Workload(self.units)
        self.events_file = self.work / "events.jsonl"
        progress = console.bar("生成事件 generating events")
        with self.events_file.open("wb") as out:
            for i in range(0, self.n, BATCH):
                out.write(orjson.dumps({"events": workload.next_batch(min(BATCH, self.n - i))}) + b"\n")
                progress(min(i + BATCH, self.n), self.n)

    def bodies(self) -> Iterator[bytes]:
        with self.events_file.open("rb") as lines:
            yield from lines

    def batches(self) -> Iterator[list[dict]]:
        for body in self.bodies():
            yield orjson.loads(body)["events"]

    async def insert_ceiling(self) -> None:
        """ClickHouse insert-only: ledger-shaped rows, columnar, one insert per 50k (CHUNK)."""
        self._say("① ClickHouse 写入上限 insert-only …")
        self.store.command("CREATE TABLE bench_insert AS ledger")
        ingestor = Ingestor(ClickHouseLedger(self.store))
        rows = []
        for raws in itertools.islice(self.batches(), 4):
            rows += [ingestor._chain({}, e, e.payload.model_dump(mode="json"), "bench", e.event_id, e.type,
                                     ingestor.clock())
                     | {"source_partition": 0, "source_offset": 0, "batch_id": ""} for e in decode_batch(raws)]
        # One 50k-row chunk of columns, inserted until N rows are in: N rows' worth of column
        # lists would be the bench's own memory (~200 MB per million), not the platform's.
        rows = (rows * (CHUNK // max(len(rows), 1) + 1))[:CHUNK]
        chunk = ledger_columns(rows)  # as the worker's `append` hands them to the driver
        started = time.perf_counter()
        for i in range(0, self.n, CHUNK):
            size = min(CHUNK, self.n - i)
            self.store.insert_columns("bench_insert", {c: v[:size] for c, v in chunk.items()})
        self.results["ceiling_insert_rows_per_s"] = round(self.n / (time.perf_counter() - started))
        self.store.command("DROP TABLE bench_insert")

    async def consume_ceiling(self) -> None:
        """aiokafka consume-only: fetch the same records the pipeline gets, do nothing with them."""
        from aiokafka import AIOKafkaConsumer

        self._say("② Kafka 消费上限 consume-only …")
        from producers.service import prepare

        def publish_all() -> int:
            publisher, published = KafkaPublisher(self.bootstrap, RAW_TOPIC), 0
            for raws in self.batches():
                records = [b.record for b in prepare(decode_batch(raws), "bench", 4)]
                publisher.publish(records)
                published += len(records)
            publisher.close()
            return published

        published = await asyncio.to_thread(publish_all)
        consumer = AIOKafkaConsumer(RAW_TOPIC, bootstrap_servers=self.bootstrap, group_id=f"raw-{uuid.uuid4()}",
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    max_partition_fetch_bytes=32 << 20, fetch_max_bytes=64 << 20)
        await consumer.start()
        try:
            started, seen = time.perf_counter(), 0
            while seen < published:
                for _tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                    seen += len(messages)
            elapsed = time.perf_counter() - started
        finally:
            await consumer.stop()
        self.results["ceiling_consume_events_per_s"] = round(self.n / elapsed)

    async def end_to_end(self) -> None:
        """Producer → broker → faust worker → ledger + facts, until all N are queryable."""
        from streams.app import create_app

        self._say("③ 端到端 end-to-end …")
        submitter = Submitter(Outbox(self.work / "outbox.sqlite"), KafkaPublisher(self.bootstrap, TOPIC), 4)
        submitter.submit(decode_batch(self.units), "bench")
        ingestor = Ingestor(ClickHouseLedger(self.store))  # loaded once assigned (streams.app._load_now)
        projected = asyncio.Event()  # set each time the worker has projected a batch
        app = create_app(self.settings, self.bootstrap, ingestor, on_outcome=lambda _outcome: projected.set())
        await app.start()
        try:
            await self._wait_count(len(self.units))
            base = len(self.units)
            started = time.perf_counter()
            await asyncio.to_thread(self._submit_all, submitter)
            await self._wait_count(base + self.n)
            self.results["e2e_events_per_s"] = round(self.n / (time.perf_counter() - started))
            await self.freshness(submitter, projected)
        finally:
            await app.stop()
            submitter.publisher.close()

    def _submit_all(self, submitter: Submitter) -> None:
        """Validate and submit every batch as `POST /v1/events` does with a client's body (less
        HTTP and the scope check), off the event loop: the worker's stream runs on it (as the
        API's submissions run in its thread pool)."""
        progress = console.bar("③ 端到端 end-to-end (submitted)")
        for done, body in enumerate(self.bodies(), start=1):
            submitter.submit(decode_body(body), "bench")
            progress(min(done * BATCH, self.n), self.n)

    async def _wait_count(self, expected: int, timeout: float = 900) -> None:
        """Until `expected` events are in the ledger and every live fold has caught up with them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # polls are ClickHouse queries too: not too often
            count = await asyncio.to_thread(self.probe.scalar, "SELECT count() FROM ledger")
            if count >= expected and not await asyncio.to_thread(self.probe.scalar, UNFOLDED):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"only {count} of {expected} events became queryable")

    async def freshness(self, submitter: Submitter, projected: asyncio.Event) -> None:
        """Ack of a small submission → its events queryable; 40 samples. Checked each time the
        worker has projected a batch, not polled: a poll is a ClickHouse query (~24 ms of a core
        on a 10M ledger), and polls every 10 ms took the core the worker's folds plan on. A
        sample ends when the check that finds the events returns (its time included)."""
        workload = Workload(self.units, seed=99)
        latencies = []
        for _ in range(40):
            events = decode_batch(workload.next_batch(20))
            ids = [str(e.event_id) for e in events]
            units = sorted({e.unit_id for e in events})
            projected.clear()
            await asyncio.to_thread(submitter.submit, events, "bench")
            acked = time.perf_counter()
            while True:
                await asyncio.wait_for(projected.wait(), 120)
                projected.clear()  # before the check: a batch projected during it sets it again
                found = await asyncio.to_thread(self.probe.scalar, FOLDED, {"ids": ids, "units": units})
                if found >= len(ids):
                    break
            latencies.append((time.perf_counter() - acked) * 1000)
        latencies.sort()
        self.results["freshness_p50_ms"] = round(statistics.median(latencies), 1)
        self.results["freshness_p95_ms"] = round(latencies[int(len(latencies) * 0.95) - 1], 1)

    async def naive(self) -> None:
        """The tutorial pipeline: one event per record, faust per event, one INSERT per event."""
        import faust

        count = min(self.n, 1000)  # slow by design: a larger count only makes the run longer
        self._say(f"④ 朴素基线 naive baseline ({count} events) …")
        publisher = KafkaPublisher(self.bootstrap, NAIVE_TOPIC)
        from producers.publisher import OutgoingRecord
        flat = list(itertools.islice((e for raws in self.batches() for e in raws), count))
        await asyncio.to_thread(publisher.publish, [
            OutgoingRecord(i % 4, e["unit_id"].encode(), json.dumps(e).encode()) for i, e in enumerate(flat)])
        publisher.close()
        self.store.command("CREATE TABLE bench_naive AS ledger")
        app = faust.App("bench-naive", broker=f"kafka://{self.bootstrap}", web_enabled=False,
                        store="memory://", datadir=str(self.work / "naive"), topic_partitions=4,
                        consumer_auto_offset_reset="earliest")
        topic = app.topic(NAIVE_TOPIC, value_type=bytes, value_serializer="raw")
        done = asyncio.Event()
        state = {"n": 0, "t0": None}
        naive_store = self.store

        @app.agent(topic)
        async def one_by_one(stream):
            from domain.decode import decode_event
            async for value in stream:
                state["t0"] = state["t0"] or time.perf_counter()
                e = decode_event(json.loads(value))
                ingestor = Ingestor(None)
                row = ingestor._chain({}, e, e.payload.model_dump(mode="json"), "naive", e.event_id, e.type,
                                      ingestor.clock())
                row.update(source_partition=0, source_offset=0, batch_id="")
                await asyncio.to_thread(naive_store.insert, "bench_naive", [[row[c] for c in LEDGER_COLUMNS]],
                                        LEDGER_COLUMNS)
                state["n"] += 1
                if state["n"] >= count:
                    done.set()

        await app.start()
        try:
            await asyncio.wait_for(done.wait(), 900)
            self.results["naive_events_per_s"] = round(count / (time.perf_counter() - state["t0"]))
        finally:
            await app.stop()
            self.store.command("DROP TABLE bench_naive")

    async def replay_rate(self) -> None:
        from projections.replay import replay

        self._say("⑤ 重放 replay in ClickHouse …")
        total = self.store.scalar("SELECT count() FROM ledger")
        started = time.perf_counter()
        await asyncio.to_thread(replay, self.store)
        self.results["replay_events_per_s"] = round(total / (time.perf_counter() - started))

    async def at_scale(self) -> None:
        """Replay and API latency again on a ledger grown to `scale_to` events by cloning the
        generated ones inside ClickHouse: each copy gets fresh event ids, its own subjects and
        seqs past the originals, same units and days (so unit-days get denser, as a busier
        year would). Not a valid chain (hashes are copied): for latency and replay figures only."""
        from domain.events import UNIT_EVENT_TYPES

        total = int(self.store.scalar("SELECT count() FROM ledger"))
        top = int(self.store.scalar("SELECT max(seq) FROM ledger"))
        cols = ", ".join(LEDGER_COLUMNS)
        ids = "toUUID(UUIDNumToString(MD5(concat(toString({col}), '~{k}'))))"
        copy, progress = 0, console.bar(f"⑦ 扩充账本 growing the ledger to {self.scale_to:,}")
        while total < self.scale_to:
            copy += 1
            progress(total, self.scale_to)
            exprs = {c: c for c in LEDGER_COLUMNS} | {
                "seq": f"seq + {copy * top}", "event_id": ids.format(col="event_id", k=copy),
                "target_id": ids.format(col="target_id", k=copy), "subject_id": f"concat(subject_id, '~{copy}')"}
            self.store.command(
                f"INSERT INTO ledger ({cols}) SELECT {', '.join(exprs[c] for c in LEDGER_COLUMNS)} FROM ledger "
                f"WHERE seq <= {top} AND type NOT IN {list(UNIT_EVENT_TYPES)!r} LIMIT {self.scale_to - total}",
                settings={"max_insert_threads": 2})
            total = int(self.store.scalar("SELECT count() FROM ledger"))
        progress(total, total)
        # Growing is the bench's own scaffolding (a 1M ledger copied nine times in ClickHouse):
        # its memory is handed back and the peak restarted, so scaled_rss_mb is the peak of the
        # platform's work on the grown ledger (replay, API) over all the process holds by then.
        self._say(f"⑦ 扩充账本 grown to {total:,} rows")
        self.store.release_memory()
        self.peak_restarted = _restart_peak_rss()
        self._say("⑦ 已归还扩充所用内存 the growing's memory handed back")
        figures = {"events": self.n, "api_p50_ms": self.results["api_p50_ms"],
                   "api_p99_ms": self.results["api_p99_ms"], "replay_events_per_s": self.results["replay_events_per_s"]}
        await self.replay_rate()  # rebuilds facts and the live folds over the grown ledger
        await self.api_latency()
        self.scaled = {"scaled_events": total, "scaled_replay_events_per_s": self.results["replay_events_per_s"],
                       "scaled_api_p50_ms": self.results["api_p50_ms"], "scaled_api_p99_ms": self.results["api_p99_ms"],
                       "scaled_rss_mb": _peak_rss_mb(), "scaled_rss_excludes_growing": self.peak_restarted}
        self.results.update(figures)  # the DESIGN §9 object stays the figures of the N-event run

    async def api_latency(self, requests: int = 200) -> None:
        import uvicorn

        from api.app import create_app as create_api
        from api.app import warm_app
        from api.context import ApiContext
        from projections.hierarchy import HierarchySource
        from projections.indicators import IndicatorService
        from projections.tokens import TokenStore

        self._say(f"⑥ 接口延迟 API latency ({requests} indicator queries) …")
        hierarchy = HierarchySource(self.store)
        ctx = ApiContext(self.store, hierarchy, IndicatorService(self.store, hierarchy), TokenStore(self.store),
                         None, "bench-token")
        app = create_api(ctx)
        await asyncio.to_thread(ctx.indicators.warm)  # as `jiandu up` and `jiandu api` do before serving
        await warm_app(app)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            await asyncio.sleep(0.05)
        freeze_startup_heap()  # as `jiandu up` and `jiandu api` do once set up
        units = ["gd"] + [u["subject_id"] for u in self.units if u["payload"]["level"] in ("city", "county")][:40]
        shapes = [{}, {"group_by": "child"}, {"from": "2025-01-01", "to": "2025-07-01"}, {"group_by": "month"}]
        timings: list[tuple[float, dict]] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": "Bearer bench-token"}, timeout=60) as client:
            for i in range(requests):
                params = {"unit": units[i % len(units)], **shapes[i % len(shapes)]}
                started = time.perf_counter()
                response = await client.get("/v1/indicators", params=params)
                timings.append(((time.perf_counter() - started) * 1000, params))
                response.raise_for_status()
        server.should_exit = True
        thread.join(10)
        timings.sort(key=lambda t: t[0])
        ms = [t for t, _ in timings]
        self.results["api_p50_ms"] = round(statistics.median(ms), 1)
        self.results["api_p99_ms"] = round(ms[int(len(ms) * 0.99) - 1], 1)
        # Which requests the p99 is made of (it is the third slowest of 200): the shape to look at
        # when it moves.
        slowest = ", ".join(f"{t:.0f} ms ({' '.join(f'{k}={v}' for k, v in params.items())})"
                            for t, params in reversed(timings[-5:]))
        print(f"⑥ 最慢的请求 slowest requests: {slowest}", file=sys.stderr, flush=True)


def bench(events: int, as_json: bool, scale_to: int | None = None) -> int:
    import logging

    for noisy in ("faust", "mode", "aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    # chDB may still be merging parts in the store when the run ends: a directory it writes to
    # while it is removed must not turn a finished run into an error without its figures.
    with tempfile.TemporaryDirectory(prefix="jiandu-bench-", ignore_cleanup_errors=True) as work:
        run = Bench(events, Path(work), scale_to)
        results = asyncio.run(run.run())
    scaled = getattr(run, "scaled", None)
    if scaled:  # its own line, before the DESIGN §9 object (which stays the last line)
        print(json.dumps(scaled) if as_json else "\n".join(f"{k}  {v:,}" if not isinstance(v, bool) else f"{k}  {v}"
                                                            for k, v in scaled.items()))
    if as_json:
        print(json.dumps(results))
    else:
        width = max(map(len, results))
        for key, value in results.items():
            print(f"{key:<{width}}  {value:,}")
    return 0
