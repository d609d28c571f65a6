"""The production split (DESIGN §4): `jiandu migrate`, then `jiandu worker` and `jiandu api` as
separate processes, against an external broker and one ClickHouse over HTTP, answer exactly
as the embedded `jiandu up` does for the same events.

No ClickHouse server runs here, so the shared store is `jiandu chdb-server`: chDB (ClickHouse's
engine) holding the data path in its own process and serving ClickHouse's HTTP interface. The
worker and the API reach it as they would reach a server (`JIANDU_CLICKHOUSE_URL=http://…`),
through clickhouse-connect's HTTP client: the server code paths, not the embedded ones.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import clickhouse_connect
import httpx
import pytest

from domain.decode import decode_batch
from jiandu.bench import UNFOLDED
from jiandu.broker import free_port
from jiandu.settings import TOPIC
from producers.outbox import Outbox
from producers.publisher import KafkaPublisher
from producers.service import Submitter
from producers.simulate import Workload, build_province
from tests.harness import ROOT, Up, jiandu_cmd, small_province
from tests.workloads import counting_workload

ADMIN_TOKEN = "split-test-admin-token-0123456789"
HOLD_LOG = "暂停写入"  # a worker's log, when it holds off (another worker is in the group)
RESUMED_LOG = "继续写入"
HELD_FOR_S = 5  # how long a test watches the ledger not move while two workers are in the group
# The workload spans two days from 2025-01-01: all time, by child, by month, and its first day
# (`to` is exclusive).
SHAPES = ({}, {"group_by": "child"}, {"group_by": "month"}, {"from": "2025-01-01", "to": "2025-01-02"})


def _events() -> tuple[list[dict], list[dict]]:
    """The demo province's units, then a realistic workload over them with a few retractions
    (corrections take the two-sided fold paths)."""
    units = build_province()
    events = Workload(units).next_batch(3_000)
    retracted = [e for e in events if e["type"] == "petition_received"][:5]
    events += [{"event_id": str(uuid.uuid4()), "type": "event_retracted", "unit_id": e["unit_id"],
                "subject_id": e["subject_id"], "occurred_at": e["occurred_at"],
                "payload": {"retracts": e["event_id"], "reason": "录入错误"}} for e in retracted]
    return units, events


class Split:
    """`jiandu chdb-server`, `jiandu migrate`, `jiandu worker` and `jiandu api`, each its own process."""

    def __init__(self, work: Path, bootstrap: str):
        self.store_port, self.api_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.store_url = f"http://127.0.0.1:{self.store_port}"
        work.mkdir(parents=True, exist_ok=True)
        self.work, self.procs = work, {}
        self.env = {**os.environ, "JIANDU_DATA_DIR": str(work), "JIANDU_CLICKHOUSE_URL": self.store_url,
                    "JIANDU_KAFKA_BOOTSTRAP": bootstrap, "JIANDU_ADMIN_TOKEN": ADMIN_TOKEN,
                    "JIANDU_API_PORT": str(self.api_port)}
        try:
            self.start("chdb-server", "--port", str(self.store_port), env={**self.env, "JIANDU_CLICKHOUSE_URL": ""})
            self.wait_until(lambda: httpx.get(self.store_url + "/ping", timeout=2).status_code == 200, "chdb-server")
            migrate = subprocess.run(jiandu_cmd("migrate"), env=self.env, cwd=ROOT, capture_output=True, text=True,
                                     timeout=120)
            assert migrate.returncode == 0, migrate.stderr
            self.start("worker")
            self.start("api")
            self.wait_until(lambda: httpx.get(self.url + "/readyz", timeout=2).status_code == 200, "api")
        except BaseException:
            self.stop()  # a part that failed to start leaves none of the others running
            raise

    def stop_one(self, name: str) -> None:
        """kill -9 the process started as `name`."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def start(self, verb: str, *args: str, env: dict | None = None, name: str | None = None) -> None:
        """Start `jiandu <verb> <args>`, known (and logging to `<name>.log`) as `name`, the verb
        by default."""
        name = name or verb
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        self.procs[name] = subprocess.Popen(jiandu_cmd(verb, *args), stdout=log, stderr=subprocess.STDOUT,
                                            env=env or self.env, cwd=ROOT)

    def wait_until(self, ready, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for verb, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{verb} exited {proc.returncode}: {self.log(verb)}")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{what} not ready: {self.log(what)}")

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def post(self, events: list[dict]) -> None:
        response = httpx.post(self.url + "/v1/events", json={"events": events},
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)
        assert response.status_code == 202, response.text

    def wait_folded(self, events: int, timeout: float = 180) -> None:
        """Until the shared store holds `events` ledger rows and both folds have caught up."""
        self.wait_until(lambda: self.store("SELECT count() FROM ledger") == events
                   and self.store(UNFOLDED) == 0, "worker", timeout)

    def store(self, sql: str):
        """One value from the shared store, as any client of the server reads it."""
        client = clickhouse_connect.get_client(dsn=self.store_url)
        try:
            return client.command(sql)
        finally:
            client.close()

    def indicators(self, unit: str, **params) -> list[dict]:
        response = httpx.get(self.url + "/v1/indicators", params={"unit": unit, **params},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
        response.raise_for_status()
        return response.json()["rows"]

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):  # the store last
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


@pytest.fixture
def split(tmp_path, broker):
    s = Split(tmp_path / "split", broker.bootstrap)
    yield s
    s.stop()


def _assert_exact(split: Split, total: int, expected) -> None:
    """Every event once in an unbroken chain per unit, and every figure what the events give."""
    assert split.store("SELECT uniqExact(event_id) FROM ledger") == total
    totals = split.indicators("p")[0]["indicators"]
    wrong = {k: (totals[k], v) for k, v in expected.items() if totals[k] != v}
    assert not wrong, f"figures differ (got, expected): {wrong}"
    verify = httpx.get(split.url + "/v1/audit/verify", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                       timeout=120).json()
    assert verify["ok"] and verify["rows"] == total, verify


def test_worker_and_api_as_separate_processes_answer_as_up(split, tmp_path):
    units, events = _events()
    split.post(units)
    for i in range(0, len(events), 500):
        split.post(events[i:i + 500])
    split.wait_folded(len(units) + len(events))
    assert "(running, worker)" in split.log("worker") and "(running, api)" in split.log("api")

    up = Up(tmp_path / "up").wait_ready()
    try:
        response = up.post(units)
        assert response.status_code == 202, response.text
        for i in range(0, len(events), 500):
            assert up.post(events[i:i + 500]).status_code == 202
        province = units[0]["subject_id"]
        expected = split.indicators(province)
        assert expected[0]["indicators"]["petitions.received"] > 0  # the workload reached the figures
        deadline = time.monotonic() + 120
        while up.indicators(province).json()["rows"] != expected:
            assert time.monotonic() < deadline, "jiandu up never reached the split's province figures"
            time.sleep(0.3)
        children = [u["subject_id"] for u in units if u["payload"].get("parent_id") == province]
        for unit in [province, *children[:3]]:
            for shape in SHAPES:
                assert up.indicators(unit, **shape).json()["rows"] == split.indicators(unit, **shape), (unit, shape)

        # A county moves to another city: the worker rebuilds its folds under the new
        # hierarchy, and the API, another process, answers with it.
        source, target = children[:2]
        counties = Counter(e["unit_id"] for e in events)
        moved = max((u["subject_id"] for u in units if u["payload"].get("parent_id") == source), key=counties.__getitem__)
        move = {"event_id": str(uuid.uuid4()), "type": "unit_moved", "unit_id": moved, "subject_id": moved,
                "occurred_at": "2025-01-03T09:00:00+08:00", "payload": {"parent_id": target, "effective_from": "2024-12-01"}}
        before = split.indicators(province, group_by="child")
        split.post([move])
        assert up.post([move]).status_code == 202
        split.wait_until(lambda: split.indicators(province, group_by="child") != before, "worker")
        deadline = time.monotonic() + 120
        while up.indicators(province, group_by="child").json()["rows"] != split.indicators(province, group_by="child"):
            assert time.monotonic() < deadline, "jiandu up never reached the split's figures after the move"
            time.sleep(0.3)
        for unit in (province, source, target):
            for shape in SHAPES:
                assert up.indicators(unit, **shape).json()["rows"] == split.indicators(unit, **shape), (unit, shape)
        verify = httpx.get(split.url + "/v1/audit/verify", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           timeout=120).json()
        assert verify["ok"] and verify["rows"] == len(units) + len(events) + 1, verify
    finally:
        up.stop()


def test_split_worker_killed_mid_ingest_loses_and_doubles_nothing(split, broker):
    """kill -9 of the worker alone, in the middle of a backlog, while the API keeps running: a
    restarted worker folds every event once, through the server store's paths (its known ids
    and chain heads read back over HTTP)."""
    units = small_province()
    split.post(units)
    split.wait_folded(len(units))
    split.stop_one("worker")  # a backlog waits in the broker, so the kill lands mid-way
    events, expected = counting_workload(150_000, seed=11)
    submitter = Submitter(Outbox(split.work / "publisher.sqlite"), KafkaPublisher(broker.bootstrap, TOPIC), 4)
    for i in range(0, len(events), 10_000):
        submitter.submit(decode_batch(events[i:i + 10_000]), "test")
    submitter.publisher.close()
    total = len(units) + len(events)
    client = clickhouse_connect.get_client(dsn=split.store_url)
    try:
        split.start("worker")
        deadline = time.monotonic() + 120
        while client.command("SELECT count() FROM ledger") == len(units):  # until its first write lands
            assert time.monotonic() < deadline, split.log("worker")
            time.sleep(0.01)
        split.stop_one("worker")
        killed_at = client.command("SELECT count() FROM ledger")
    finally:
        client.close()
    print(f"\nkilled the worker with {killed_at:,} of {total:,} events in the ledger")
    assert len(units) < killed_at < total  # killed mid-way: some written, some not
    split.start("worker")

    split.wait_folded(total)
    _assert_exact(split, total, expected)


def test_worker_stopped_while_the_store_is_down_leaves_its_batch_in_kafka(split, broker):
    """The store goes away, the worker retries its write, and is stopped (SIGTERM) meanwhile:
    the batch it never wrote is delivered again to the next worker, not acknowledged. faust
    acknowledges a batch handed out by `take_events` when the agent stops, written or not:
    without `streams.app._hold_acks` those events were skipped for good."""
    units = small_province()
    split.post(units)
    split.wait_folded(len(units))
    split.stop_one("chdb-server")
    events, expected = counting_workload(4_000, seed=19)
    submitter = Submitter(Outbox(split.work / "publisher.sqlite"), KafkaPublisher(broker.bootstrap, TOPIC), 4)
    submitter.submit(decode_batch(events), "test")
    submitter.publisher.close()
    split.wait_until(lambda: "账本写入失败" in split.log("worker"), "worker")  # its write is being retried
    worker = split.procs.pop("worker")
    worker.terminate()
    assert worker.wait(60) == 0, split.log("worker")

    split.start("chdb-server", "--port", str(split.store_port), env={**split.env, "JIANDU_CLICKHOUSE_URL": ""})
    split.wait_until(lambda: httpx.get(split.store_url + "/ping", timeout=2).status_code == 200, "chdb-server")
    split.start("worker")
    split.wait_folded(len(units) + len(events))
    _assert_exact(split, len(units) + len(events), expected)


def test_split_replay_through_the_api_while_the_worker_ingests(split, broker):
    """A replay asked of the API process while the worker, another process, keeps writing:
    afterwards the live tables are what a replay of the whole ledger gives."""

    units = small_province()
    split.post(units)
    split.wait_folded(len(units))
    events, expected = counting_workload(60_000, seed=13)
    done = threading.Event()

    def publish() -> None:
        submitter = Submitter(Outbox(split.work / "publisher.sqlite"), KafkaPublisher(broker.bootstrap, TOPIC), 4)
        for i in range(0, len(events), 2_000):
            submitter.submit(decode_batch(events[i:i + 2_000]), "test")
            time.sleep(0.05)
        submitter.publisher.close()
        done.set()

    thread = threading.Thread(target=publish)
    thread.start()
    response = httpx.post(split.url + "/v1/audit/replay", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                          timeout=300)
    assert response.status_code == 200, response.text
    during = split.store("SELECT count() FROM ledger")
    thread.join()
    print(f"\nreplayed with {during:,} of {len(units) + len(events):,} events in the ledger")
    split.wait_folded(len(units) + len(events))
    _assert_exact(split, len(units) + len(events), expected)


def test_split_worker_holds_for_a_replay_and_resumes_when_its_lease_runs_out(split):
    """A replay request that is never renewed (its process died): the worker writes nothing
    while the request is live, then goes on by itself."""
    from projections.folds import record
    from projections.store import ClickHouseStore
    from projections.worker_pause import LEASE_S, PAUSED, REQUEST, _latest

    units = small_province()
    split.post(units)
    split.wait_folded(len(units))
    store = ClickHouseStore(split.store_url)
    try:
        record(store, REQUEST, "a-replay-that-died")
        def paused() -> list[str]:
            return [value for name, (value, _) in _latest(store).items() if name.startswith(PAUSED)]

        split.wait_until(lambda: paused() == ["a-replay-that-died"], "worker")
        asked = time.monotonic()
        events, expected = counting_workload(2_000, seed=17)
        split.post(events)
        time.sleep(3)
        assert split.store("SELECT count() FROM ledger") == len(units)  # held: nothing written
        split.wait_folded(len(units) + len(events), timeout=LEASE_S + 60)
        assert time.monotonic() - asked < LEASE_S + 30
        assert paused() == [""]
    finally:
        store.close()
    assert split.indicators("p")[0]["indicators"]["petitions.received"] == expected["petitions.received"]


def test_split_replay_with_the_worker_stopped_goes_ahead(split):
    """No worker has been heard from for ALIVE_WITHIN_S: nothing writes, so nothing to wait for."""
    from projections.worker_pause import ALIVE_WITHIN_S

    units = small_province()
    split.post(units)
    split.wait_folded(len(units))
    split.stop_one("worker")
    time.sleep(ALIVE_WITHIN_S)
    started = time.monotonic()
    response = httpx.post(split.url + "/v1/audit/replay", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                          timeout=300)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 60  # not the ten minutes it would wait for a live worker
    assert set(response.json()["checksums"]) == {"facts", "daily", "items"}


def test_two_workers_hold_until_one_is_left(split, broker):
    """A second worker in the consumer group: neither writes until one is left, and then every
    event lands once and every figure is exact. Two workers writing at once counted figures
    twice (`streams.app._until_sole_writer`)."""
    units = small_province()
    split.post(units)
    split.wait_folded(len(units))
    submitter = Submitter(Outbox(split.work / "publisher.sqlite"), KafkaPublisher(broker.bootstrap, TOPIC), 4)
    second = {**split.env, "JIANDU_WORKER_ID": "second-worker"}
    total = len(units)
    try:
        # A second worker starts while the first ingests a stream of events (starting, it must
        # not catch up on the first's batches still being projected). Both hold while more
        # events arrive; then the first is killed -9, and the second, alone once the dead
        # member's session has expired, writes them all.
        stream, stream_expected = counting_workload(60_000, seed=31)
        publishing = threading.Thread(target=_publish_slowly, args=(submitter, stream))
        publishing.start()
        split.wait_until(lambda: split.store("SELECT count() FROM ledger") > total, "worker")  # it is writing
        split.start("worker", env=second, name="second")
        split.wait_until(lambda: HOLD_LOG in split.log("worker") and HOLD_LOG in split.log("second"), "second")
        publishing.join()
        held_at = _settled_count(split)
        first_events, first_expected = counting_workload(20_000, seed=23)
        submitter.submit(decode_batch(first_events[:10_000]), "test")
        submitter.submit(decode_batch(first_events[10_000:]), "test")
        time.sleep(HELD_FOR_S)
        assert split.store("SELECT count() FROM ledger") == held_at, "a worker wrote while another was in the group"
        split.stop_one("worker")
        total += len(stream) + len(first_events)
        split.wait_folded(total)
        assert RESUMED_LOG in split.log("second")
        _assert_exact(split, total, stream_expected + first_expected)

        # The first comes back: both hold again; the second stops (SIGTERM), the first goes on.
        split.start("worker")
        split.wait_until(lambda: split.log("second").count(HOLD_LOG) == 2, "second")
        more_events, more_expected = counting_workload(20_000, seed=29)
        submitter.submit(decode_batch(more_events[:10_000]), "test")
        submitter.submit(decode_batch(more_events[10_000:]), "test")
        time.sleep(HELD_FOR_S)
        assert split.store("SELECT count() FROM ledger") == total, "a worker wrote while another was in the group"
        proc = split.procs.pop("second")
        proc.terminate()
        assert proc.wait(60) == 0, split.log("second")
        total += len(more_events)
        split.wait_folded(total)
        _assert_exact(split, total, stream_expected + first_expected + more_expected)
    finally:
        submitter.publisher.close()


def _publish_slowly(submitter: Submitter, events: list[dict]) -> None:
    """1,000 events every 50 ms: a worker busy with them has a batch in projection most of
    the time."""
    for i in range(0, len(events), 1_000):
        submitter.submit(decode_batch(events[i:i + 1_000]), "test")
        time.sleep(0.05)


def _settled_count(split: Split) -> int:
    """The ledger's row count once it has not moved for 2 s (a write in flight has landed)."""
    count, since = split.store("SELECT count() FROM ledger"), time.monotonic()
    while time.monotonic() - since < 2:
        time.sleep(0.2)
        now = split.store("SELECT count() FROM ledger")
        if now != count:
            count, since = now, time.monotonic()
    return count
