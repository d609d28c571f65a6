"""A replay pauses a worker that runs in another process (server stores).

A replay rebuilds `facts` and the folds aside and swaps them in: whatever a worker writes to
the live tables meanwhile is gone after the swap (the split, a replay through the API while
`jiandu worker` ingested 60k events: ~3 % of them missing from the figures, all in the ledger).
In one process the replay pauses its own ingestor (`ClickHouseStore.exclusive`). A worker in
another process is asked through the store, in `projection_settings`:

- the worker (`PauseWatch`, a thread of `jiandu worker`) records `worker.alive` every few
  seconds, and checks for a live `replay.request`;
- a replay (`workers_paused`) records `replay.request` = its id, renews it while it runs (a
  lease: a request not renewed for LEASE_S is over, so a replay that died pauses no one for
  long), and waits until the worker records `replay.paused` = that id. The worker does so
  once it has projected what it wrote and holds further writes (`Ingestor.paused`);
- when the replay ends it records an empty request, and the worker goes on.

A replay that finds no live worker (no `worker.alive` for ALIVE_WITHIN_S) goes ahead: nothing
is writing. `jiandu up` runs its worker in the replaying process and pauses it there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from projections.store import ClickHouseStore, StoreUnavailable

log = logging.getLogger("jiandu.worker")

REQUEST, PAUSED, ALIVE = "replay.request", "replay.paused", "worker.alive"
HEARTBEAT_S = 2.0  # how often a worker says it is alive and looks for a request
LEASE_S = 30.0  # a request not renewed for this long is over
ACK_TIMEOUT_S = 600.0  # a worker finishes the batch it is on (a catch-up may take minutes)
ALIVE_WITHIN_S = 5 * HEARTBEAT_S  # a worker heard from this recently is running


def _record(store: ClickHouseStore, name: str, value: str) -> None:
    store.command("INSERT INTO projection_settings (name, value) VALUES ({n:String}, {v:String})",
                  {"n": name, "v": value})


def _latest(store: ClickHouseStore) -> dict[str, tuple[str, float]]:
    """Each of REQUEST, PAUSED, ALIVE as (latest value, seconds since it was recorded)."""
    rows = store.rows("SELECT name, argMax(value, set_at), dateDiff('millisecond', max(set_at), now64(3)) / 1000 "
                      "FROM projection_settings WHERE name IN {n:Array(String)} GROUP BY name",
                      {"n": [REQUEST, PAUSED, ALIVE]})
    return {name: (value, float(age)) for name, value, age in rows}


@contextlib.contextmanager
def workers_paused(store: ClickHouseStore, ack_timeout_s: float = ACK_TIMEOUT_S) -> Iterator[None]:
    """Hold while a replay runs: a live worker of another process has paused until it ends."""
    request = uuid.uuid4().hex
    _record(store, REQUEST, request)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_S / 3):
            _record(store, REQUEST, request)

    renewer = threading.Thread(target=renew, name="replay-lease", daemon=True)
    renewer.start()
    try:
        deadline = time.monotonic() + ack_timeout_s
        while True:
            latest = _latest(store)
            if latest.get(PAUSED, ("", 0.0))[0] == request:
                break
            alive = latest.get(ALIVE, ("", float("inf")))[1] < ALIVE_WITHIN_S
            if not alive:
                break  # no worker is running: nothing writes meanwhile
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"工作进程 {ack_timeout_s:.0f} 秒内未暂停 (the running worker did not pause "
                                       "for the replay): a replay beside a writing worker would lose its writes; "
                                       "retry, or stop `jiandu worker` first")
            time.sleep(HEARTBEAT_S / 4)
        yield
    finally:
        stop.set()
        renewer.join()
        _record(store, REQUEST, "")


class PauseWatch:
    """The worker's side: a thread that says the worker is alive and, while a replay asks,
    holds the ingestor paused (`pause`, a context manager)."""

    def __init__(self, store: ClickHouseStore, pause: Callable[[], contextlib.AbstractContextManager]):
        self.store, self.pause = store, pause
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

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                _record(self.store, ALIVE, "")
                request, age = _latest(self.store).get(REQUEST, ("", float("inf")))
                self._checked.set()
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
            _record(self.store, PAUSED, request)
            while not self._stop.is_set():
                _record(self.store, ALIVE, "")
                current, age = _latest(self.store).get(REQUEST, ("", float("inf")))
                if current != request or age >= LEASE_S:
                    break
                self._stop.wait(HEARTBEAT_S / 4)
            _record(self.store, PAUSED, "")
        log.warning("重放结束，继续写入 (replay over: ingest resumed)")
