"""The embedded platform: broker, worker, outbox relay and API in one foreground process.

chDB allows one process per data path, so the worker (which writes) and the API (which
reads) share this process, each with its own client. The broker is a child process that
dies with us, even on kill -9.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import uvicorn

from api.app import create_app as create_api
from api.app import warm_app
from api.context import ApiContext
from domain.gcpause import freeze_startup_heap
from jiandu.broker import TansuBroker, ensure_topics
from jiandu.settings import TOPIC, Settings
from producers.outbox import Outbox
from producers.publisher import KafkaPublisher
from producers.service import OutboxRelay, Submitter
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorService
from projections.ledger import ClickHouseLedger
from projections.store import ClickHouseStore
from projections.tokens import TokenStore
from projections.worker_pause import PauseWatch
from streams.app import Worker
from streams.ingest import Ingestor, Outcome

log = logging.getLogger("jiandu")
RELAY_INTERVAL_S = 1.0
# A stop asked for (SIGINT, SIGTERM) ends the process within this, cleanly or not: leaving
# at any point is what a kill -9 does, which every path is built to survive (README,
# "Nothing lost"). A second signal leaves at once.
STOP_WITHIN_S = 90
FORCED_EXIT = 3
# Client libraries log every reconnect and driver failure; ours says what failed in plain words.
NOISY_LOGGERS = ("faust", "mode", "aiokafka", "kafka", "clickhouse_connect")


@dataclass
class Stats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_write: float = 0.0
    started: float = field(default_factory=time.time)

    def record(self, outcome: Outcome) -> None:
        self.stored += outcome.stored
        self.duplicates += outcome.duplicates
        self.rejected += len(outcome.rejected)
        self.last_write = time.time()


class Platform:
    """Everything `jiandu up` runs. `run()` returns when asked to stop."""

    def __init__(self, settings: Settings, demo: bool = False, with_api: bool = True,
                 with_worker: bool = True):
        self.settings, self.demo = settings, demo
        self.with_api, self.with_worker = with_api, with_worker
        self.stats = Stats()
        self.stopping = asyncio.Event()
        self.broker: TansuBroker | None = None
        self.worker_ready = False
        self.started = False  # the banner is out: the platform ran

    def request_stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        admin_token = s.ensure_admin_token() if self.with_api else ""
        # The API's port first: taken, it is a plain error before anything has started (uvicorn
        # found it taken after the banner, said so in English and exited 3, our forced exit's code).
        api_socket = listen_socket(s.api_host, s.api_port) if self.with_api else None
        bootstrap = s.kafka_bootstrap
        if not bootstrap:
            self.broker = TansuBroker(s.broker_port, s.tansu_bin, s.data_dir / "tansu.log")
            await asyncio.to_thread(self.broker.start)
            bootstrap = self.broker.bootstrap
        try:
            await self._run(bootstrap, admin_token, api_socket)
        finally:
            if api_socket is not None:
                api_socket.close()
            if self.broker is not None:
                await asyncio.to_thread(self.broker.stop)
            _remove_runtime(s)

    async def _run(self, bootstrap: str, admin_token: str, api_socket: socket.socket | None) -> None:
        s = self.settings
        await asyncio.to_thread(ensure_topics, bootstrap, s.partitions)
        write_store = ClickHouseStore(s.store_url)
        await asyncio.to_thread(write_store.migrate)
        read_store = ClickHouseStore(s.store_url)
        # The outbox belongs to the process that accepts. A worker alone never opens it: the
        # split's worker and API on one data dir, setting up its journal at once, failed.
        publisher = relay = submitter = None
        if self.with_api:
            outbox = Outbox(s.outbox_path)
            publisher = KafkaPublisher(
                bootstrap, TOPIC, ensure_topics=lambda: ensure_topics(bootstrap, s.partitions, timeout_s=3))
            relay = OutboxRelay(outbox, publisher, ClickHouseLedger(read_store).finished_batches)
            if self.broker is not None:
                relay.forget_broker()  # a fresh memory broker holds nothing we published before
            submitter = Submitter(outbox, publisher, s.partitions)

        worker = watch = None
        if self.with_worker:
            # Not loaded (caught up) here: the worker does that once it holds every partition
            # (`streams.app._load_now`); another worker's batch may be mid-projection till then.
            ingestor = Ingestor(ClickHouseLedger(write_store, s.timezone))
            if not self.with_api and not s.embedded_store:  # replays run in other processes
                watch = PauseWatch(ClickHouseStore(s.store_url), ingestor.paused, s.worker_id or "worker")
                await asyncio.to_thread(watch.start)
            worker = Worker(s, bootstrap, ingestor, self.stats.record)
            await worker.start()
            self.worker_ready = True

        hierarchy = HierarchySource(read_store)
        tasks = [asyncio.create_task(self._relay_loop(relay), name="relay")] if relay is not None else []
        server = None
        port = api_socket.getsockname()[1] if api_socket is not None else 0
        if self.with_api:
            context = ApiContext(
                store=read_store, hierarchy=hierarchy,
                indicators=IndicatorService(read_store, hierarchy, s.timezone),
                tokens=TokenStore(read_store), submitter=submitter, admin_token=admin_token,
                readiness=lambda: self._readiness(read_store), progress=self.progress, max_request_bytes=s.max_request_bytes,
                writer=write_store, rate_limit_per_minute=s.rate_limit_per_minute)
            app = create_api(context)
            config = uvicorn.Config(app, host=s.api_host, port=port, log_level="warning", lifespan="off")
            try:
                await asyncio.to_thread(context.indicators.warm)
                await warm_app(app)
            except Exception as exc:  # noqa: BLE001 - a slower first request is no reason not to start
                log.warning("预热失败 (warm-up failed, the first request will do it): %s", exc)
            server = uvicorn.Server(config)
            # We own SIGINT and SIGTERM (`run_foreground`). uvicorn takes them over while it serves
            # and raises them again as it ends, so one Ctrl-C reached `_stop_asked` twice: the
            # second time is "leave now".
            server.capture_signals = contextlib.nullcontext
            tasks.append(asyncio.create_task(server.serve(sockets=[api_socket]), name="api"))
        if self.demo:
            from jiandu.demo import run_demo
            tasks.append(asyncio.create_task(run_demo(submitter, hierarchy, self.stopping), name="demo"))

        freeze_startup_heap()  # set up: keep full collections off what lives as long as we do
        self._write_runtime(bootstrap, port)
        self._banner(bootstrap, port)
        if not tasks:  # a worker alone: just keep folding until asked to stop
            tasks.append(asyncio.create_task(self.stopping.wait(), name="idle"))
        try:
            stopper = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception():
                    raise task.exception()
        finally:
            if server is not None:
                server.should_exit = True
            for task in tasks:
                if task.get_name() != "api":
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if worker is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker.stop(), 10)
            if watch is not None:
                await asyncio.to_thread(watch.stop)
            if publisher is not None:
                publisher.close()
            write_store.close()
            read_store.close()

    async def _relay_loop(self, relay: OutboxRelay) -> None:
        while True:
            try:
                await asyncio.to_thread(relay.run_once)
            except Exception as exc:  # noqa: BLE001 - the relay must outlive passing faults
                log.warning("outbox relay: %s", exc)
            await asyncio.sleep(RELAY_INTERVAL_S)

    def _readiness(self, store: ClickHouseStore) -> dict[str, bool]:
        try:
            store_ok = store.scalar("SELECT 1") == 1
        except Exception:  # noqa: BLE001
            store_ok = False
        broker_ok = self.broker is None or (self.broker.process is not None
                                            and self.broker.process.poll() is None)
        return {"store": store_ok, "broker": broker_ok,
                "worker": self.worker_ready or not self.with_worker}

    def progress(self) -> dict[str, int]:
        """What this process's worker has folded since it started (for operators and tests)."""
        return {"stored": self.stats.stored, "duplicates": self.stats.duplicates,
                "rejected": self.stats.rejected}

    def _write_runtime(self, bootstrap: str, port: int) -> None:
        info = {"pid": os.getpid(), "kafka_bootstrap": bootstrap}
        if self.with_api:  # a worker alone serves nothing: commands reach its store directly
            info["api_url"] = f"http://{self.settings.api_host}:{port}"
        self.settings.runtime_path.write_text(json.dumps(info), encoding="utf-8")

    def _banner(self, bootstrap: str, port: int) -> None:
        """What runs where: `up` runs every part; `worker` and `api` one each."""
        self.started = True
        url = f"http://{self.settings.api_host}:{port}"
        role = ("embedded" if self.with_api and self.with_worker and self.settings.embedded_store
                else "+".join(part for part, on in (("api", self.with_api), ("worker", self.with_worker)) if on))
        api = f"""
  页面 dashboard   {url}/
  接口 API docs    {url}/docs""" if self.with_api else ""
        token = f"""
  管理令牌 admin token: {self.settings.admin_token_path if not self.settings.admin_token else "$JIANDU_ADMIN_TOKEN"}""" \
            if self.with_api else ""
        print(f"""
监督 jiandu 已启动 (running, {role}){api}
  消息队列 broker  {bootstrap}{" (embedded Tansu)" if self.broker else ""}
  分析库 store     {self.settings.store_url}{token}
按 Ctrl-C 停止 (Ctrl-C to stop)""", flush=True)


def _remove_runtime(settings: Settings) -> None:
    """Remove runtime.json if this process wrote it: one that failed to start on a data dir
    in use removed the running platform's, and `jiandu report` then said it was not running."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        if json.loads(settings.runtime_path.read_text(encoding="utf-8"))["pid"] == os.getpid():
            settings.runtime_path.unlink()


def listen_socket(host: str, port: int) -> socket.socket:
    """The API's socket, bound (port 0: any free one); a port taken is a plain error."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"接口地址 {host}:{port} 无法监听 (cannot listen there: {exc.strerror or exc})；"
                         f"端口被占用时用 --api-port 或 JIANDU_API_PORT 换一个，0 为任选空闲端口 "
                         f"(if the port is taken, choose another; 0 picks a free one)") from None
    return sock


def _stop_asked(platform: Platform) -> None:
    """Stop cleanly, and leave anyway if that has not happened within STOP_WITHIN_S (a worker
    that never stopped on SIGTERM was seen once, its event loop idle, with no cause found);
    asked a second time, leave now."""
    if platform.stopping.is_set():
        _leave_now(platform, "再次收到停止信号，立即退出 (asked to stop again: leaving now)")
    platform.request_stop()
    timer = threading.Timer(STOP_WITHIN_S, _leave_now, args=(
        platform, f"{STOP_WITHIN_S} 秒内未能停止，强制退出 (not stopped within {STOP_WITHIN_S} s: leaving now)"))
    timer.daemon = True
    timer.start()


def _leave_now(platform: Platform, message: str) -> None:
    """Leave as kill -9 would, less the runtime file (`jiandu submit` would try its dead broker
    before spooling)."""
    _remove_runtime(platform.settings)
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(FORCED_EXIT)


def run_foreground(platform: Platform) -> int:
    """Run until SIGINT/SIGTERM; stop everything cleanly."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stop_asked, platform)
        await platform.run()

    level = os.environ.get("JIANDU_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level == "WARNING":  # client libraries are noisy about every reconnect
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    code = 0
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError) as exc:  # in plain words already (a port taken, a store in use)
        log.debug("platform failed", exc_info=True)
        print(f"错误 (error): {exc}", file=sys.stderr)
        code = 2
    except Exception as exc:  # noqa: BLE001 - say what failed in plain words, then exit non-zero
        log.exception("platform failed")
        print(f"错误 (error): {exc}", file=sys.stderr)
        code = 2
    if platform.started:  # a platform that never started has only its error to say
        print("已停止 (stopped)", flush=True)
    # Client libraries may leave non-daemon threads polling a broker that is gone; every
    # write is durable by now, so leave without waiting for them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
