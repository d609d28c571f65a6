"""A replay pauses a worker that runs in another process (server stores).

A replay rebuilds `facts` and the folds aside and swaps them in: whatever a worker writes to
the live tables meanwhile is gone after the swap (the split, a replay through the API while
`jiandu worker` ingested 60k events: ~3 % of them missing from the figures, all in the ledger).
In one process the replay pauses its own ingestor (`ClickHouseStore.exclusive`). A worker in
another process is asked through the store, in `projection_settings`:

- each worker (`PauseWatch`, a thread of `jiandu worker`) records `worker.alive.<its id>`
  every few seconds, and checks for a live `replay.request`;
- a replay (`workers_paused`) records `replay.request` = its id, renews it while it runs (a
  lease: a request not renewed for LEASE_S is over, so a replay that died pauses no one for
  long), and waits until every live worker has recorded `replay.paused.<its id>` = that id.
  A worker does so once it has projected what it wrote and holds further writes
  (`Ingestor.paused`);
- when the replay ends it records an empty request, and the worker goes on.

A worker not heard from for ALIVE_WITHIN_S is not running: with none, a replay goes ahead. `jiandu up` runs its worker in the replaying process and pauses it there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from projections.folds import record  # later than the name's last value: a release is the latest
from projections.store import ClickHouseStore, StoreUnavailable

log = logging.getLogger("jiandu.worker")

REQUEST, PAUSED, ALIVE = "replay.request", "replay.paused.", "worker.alive."  # the last two + a worker's id
HEARTBEAT_S = 2.0  # how often a worker says it is alive and looks for a request
LEASE_S = 30.0  # a request not renewed for this long is over
ACK_TIMEOUT_S = 600.0  # a worker finishes the batch it is on (a catch-up may take minutes)
ALIVE_WITHIN_S = 5 * HEARTBEAT_S  # a worker heard from this recently is running


def _latest(store: ClickHouseStore) -> dict[str, tuple[str, float]]:
    """REQUEST and each worker's PAUSED and ALIVE, as (latest value, seconds since recorded)."""
    rows = store.rows("SELECT name, argMax(value, set_at), dateDiff('millisecond', max(set_at), now64(3)) / 1000 "
                      "FROM projection_settings WHERE name = {r:String} OR startsWith(name, {p:String}) "
                      "OR startsWith(name, {a:String}) GROUP BY name", {"r": REQUEST, "p": PAUSED, "a": ALIVE})
    return {name: (value, float(age)) for name, value, age in rows}


def _unpaused(latest: dict[str, tuple[str, float]], request: str) -> list[str]:
    """The live workers (heard from within ALIVE_WITHIN_S) that have not paused for `request`."""
    alive = [name.removeprefix(ALIVE) for name, (_, age) in latest.items()
             if name.startswith(ALIVE) and age < ALIVE_WITHIN_S]
    return [worker for worker in alive if latest.get(PAUSED + worker, ("", 0.0))[0] != request]


@contextlib.contextmanager
def workers_paused(store: ClickHouseStore, ack_timeout_s: float = ACK_TIMEOUT_S) -> Iterator[None]:
    """Hold while a replay runs: every live worker of another process has paused until it ends."""
    request = uuid.uuid4().hex
    record(store, REQUEST, request)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_S / 3):
            record(store, REQUEST, request)

    renewer = threading.Thread(target=renew, name="replay-lease", daemon=True)
    renewer.start()
    try:
        deadline = time.monotonic() + ack_timeout_s
        while unpaused := _unpaused(_latest(store), request):  # none running: nothing writes
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"工作进程 {ack_timeout_s:.0f} 秒内未暂停 (workers that did not pause for the "
                                       f"replay: {', '.join(unpaused)}): a replay beside a writing worker would lose "
                                       "its writes; retry, or stop them first")
            time.sleep(HEARTBEAT_S / 4)
        yield
    finally:
        stop.set()
        renewer.join()
        record(store, REQUEST, "")


class PauseWatch:
    """The worker's side: a thread that says the worker is alive and, while a replay asks,
    holds the ingestor paused (`pause`, a context manager). It owns `store`: `stop` closes it."""

    def __init__(self, store: ClickHouseStore, pause: Callable[[], contextlib.AbstractContextManager],
                 worker_id: str):
        self.store, self.pause = store, pause
        self.alive, self.paused = ALIVE + worker_id, PAUSED + worker_id
        self._stop = threading.Event()
        self._checked = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pause-watch", daemon=True)

    def start(self) -> None:
        """Start watching; return after the first check, so a worker that starts while a
        replay runs writes nothing before it has paused."""
        self._thread.start()
        self._checked.wait(30)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                record(self.store, self.alive, "")
                request, age = _latest(self.store).get(REQUEST, ("", float("inf")))
                if request and age < LEASE_S:
                    self._hold(request)
            except Exception as exc:  # noqa: BLE001 - the store may be down for a while
                log.warning("暂停检查失败 (pause check failed): %s", exc)
            self._checked.set()
            self._stop.wait(HEARTBEAT_S)

    def _hold(self, request: str) -> None:
        """Paused until the replay `request` is over (released, or its lease ran out)."""
        log.warning("重放进行中，暂停写入 (a replay is running: ingest paused)")
        with self.pause():
            self._checked.set()  # a worker starting now writes after this replay, not before
            record(self.store, self.paused, request)
            while not self._stop.is_set():
                record(self.store, self.alive, "")
                current, age = _latest(self.store).get(REQUEST, ("", float("inf")))
                if current != request or age >= LEASE_S:
                    break
                self._stop.wait(HEARTBEAT_S / 4)
            record(self.store, self.paused, "")
        log.warning("重放结束，继续写入 (replay over: ingest resumed)")
