"""Faults with nothing lost: repeated kill -9, a broker that dies mid-ingest, a paused worker,
a full disk. Figures are printed for the README's reliability section."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import httpx

from jiandu.broker import TansuBroker
from tests.harness import Up, ledger_stats
from tests.integration.test_crashes import _assert_figures, _publish
from tests.workloads import counting_workload


def _progress(up: Up) -> int:
    try:
        return up.totals("p")["petitions.received"]
    except (httpx.HTTPError, KeyError):
        return -1


def _stored(up: Up) -> int:
    try:
        return httpx.get(up.url + "/readyz", timeout=5).json()["worker"]["stored"]
    except (httpx.HTTPError, KeyError, ValueError):
        return 0


def test_worker_killed_ten_times_during_200k_ingest(broker, tmp_path):
    data = tmp_path / "data"
    logs = {"JIANDU_LOG_LEVEL": "INFO"}  # the group protocol's story, if a restart stalls
    up = Up(data, bootstrap=broker.bootstrap, env=logs).wait_ready()
    up.register_small_province()
    events, expected = counting_workload(200_000, seed=77)
    _publish(broker.bootstrap, tmp_path, events, chunk=500)  # small records: each run folds a little
    kills, mid_ingest, folded = 0, 0, 0
    while kills < 10:
        # Kill as soon as this incarnation has written its first batch: always mid-ingest.
        deadline = time.monotonic() + 120
        while _stored(up) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_before_kill = _stored(up)
        up.kill9()
        kills += 1
        folded += stored_before_kill
        mid_ingest += folded + 20_000 < len(events)  # generous margin for what landed after the look
        up = Up(data, bootstrap=broker.bootstrap, log_name=f"up{kills}.log", env=logs).wait_ready()
    up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=600)
    time.sleep(2)
    _assert_figures(up, expected)
    up.stop()
    stats = ledger_stats(data)
    print(f"\nkill -9 x{kills} ({mid_ingest} mid-ingest) during 200k ingest: ledger {stats['rows']} rows, {stats['distinct']} distinct, "
          f"lost {200_006 - stats['distinct']}, doubled {stats['rows'] - stats['distinct']}")
    assert mid_ingest >= 10
    assert stats == {"rows": 200_006, "distinct": 200_006}


def test_broker_killed_and_restarted_mid_ingest_delivers_everything_once(broker, tmp_path):
    data = tmp_path / "data"
    up = Up(data, bootstrap=broker.bootstrap).wait_ready()
    up.register_small_province()
    events, expected = counting_workload(20_000, seed=78)
    port = broker.port
    statuses = []
    revived = None
    for i in range(0, len(events), 1000):
        if i == 8000:
            broker.stop()  # memory storage: whatever it held is gone
        if i == 14000:
            revived = TansuBroker(port).start()
        response = up.post(events[i:i + 1000])
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["spooled"] == 1000  # kept in the outbox, retry is safe
    try:
        assert 503 in statuses and statuses[0] == 202 and statuses[-1] == 202
        up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=300)
        time.sleep(2)
        _assert_figures(up, expected)
        up.stop()
        stats = ledger_stats(data)
        print(f"\nbroker restart mid-ingest: {statuses.count(503)} requests spooled, ledger {stats}")
        assert stats == {"rows": 20_006, "distinct": 20_006}
    finally:
        up.stop()
        if revived:
            revived.stop()


def test_worker_paused_past_session_timeout_causes_no_duplicates(broker, tmp_path):
    data = tmp_path / "data"
    up = Up(data, bootstrap=broker.bootstrap).wait_ready()
    up.register_small_province()
    events, expected = counting_workload(30_000, seed=79)
    _publish(broker.bootstrap, tmp_path, events)
    while _progress(up) <= 0:
        time.sleep(0.05)
    os.kill(up.proc.pid, signal.SIGSTOP)
    time.sleep(15)  # past the 10 s session timeout: the group forgets this member
    os.kill(up.proc.pid, signal.SIGCONT)
    up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=300)
    time.sleep(2)
    _assert_figures(up, expected)
    up.stop()
    assert ledger_stats(data) == {"rows": 30_006, "distinct": 30_006}


def test_full_disk_answers_503_and_recovers_without_losing_acknowledged_events(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], check=True)
    up = None
    try:
        data = mount / "data"
        up = Up(data).wait_ready()
        up.register_small_province()
        events, expected = counting_workload(3_000, seed=80)
        acknowledged = []
        assert up.post(events[:1000]).status_code == 202
        acknowledged += events[:1000]
        filler = mount / "filler"
        # Take every remaining byte. Unbuffered: a buffered file's close would try again to
        # write what the full disk refused, and raise.
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        statuses = [up.post(events[i:i + 500]).status_code for i in range(1000, 2000, 500)]
        assert statuses and all(s in (202, 503) for s in statuses)
        acknowledged += [e for i, s in zip(range(1000, 2000, 500), statuses, strict=True) if s == 202
                         for e in events[i:i + 500]]
        print(f"\ndisk full: statuses {statuses}")
        assert 503 in statuses
        filler.unlink()
        for i in range(1000, 3000, 500):  # retrying after recovery is safe: event ids dedupe
            assert up.post(events[i:i + 500]).status_code == 202
        up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=300)
        time.sleep(2)
        _assert_figures(up, expected)
        assert up.stop() == 0
        assert ledger_stats(data) == {"rows": 3_006, "distinct": 3_006}
    finally:
        if up is not None:
            up.stop()
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(mount, ignore_errors=True)


def test_a_second_ctrl_c_leaves_at_once(tmp_path):
    """Ctrl-C stops cleanly; asked again while that runs, the process leaves at once, as a
    kill -9 would (every path survives one), and its broker goes with it."""
    import json
    import socket

    from jiandu.runtime import FORCED_EXIT

    up = Up(tmp_path / "data").wait_ready()
    host, port = json.loads((tmp_path / "data" / "runtime.json").read_text())["kafka_bootstrap"].split(":")
    # Both arrive together, before a clean stop (under a second when idle) could end: sent while
    # the process is stopped, and two different signals, which the kernel does not merge.
    up.proc.send_signal(signal.SIGSTOP)
    up.proc.send_signal(signal.SIGINT)
    up.proc.send_signal(signal.SIGTERM)
    up.proc.send_signal(signal.SIGCONT)
    assert up.proc.wait(30) == FORCED_EXIT, up.log()
    assert "立即退出" in up.log()
    assert not (tmp_path / "data" / "runtime.json").exists()  # as after a clean stop
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            break  # nothing listens there any more
        assert time.monotonic() < deadline, "the embedded broker outlived jiandu up"
        time.sleep(0.2)


def test_a_second_up_on_the_same_data_dir_is_refused_and_leaves_the_first_alone(tmp_path):
    """chDB opens a data dir in one process; a second `jiandu up` there says who has it, and
    the first keeps running and reachable (the second used to remove its runtime.json)."""
    import json

    from tests.harness import ROOT, jiandu_cmd

    data = tmp_path / "data"
    first = Up(data).wait_ready()
    try:
        runtime = json.loads((data / "runtime.json").read_text())
        second = subprocess.run(jiandu_cmd("up", "--api-port", "0"), capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "JIANDU_DATA_DIR": str(data)}, timeout=90)
        assert second.returncode == 2, second.stderr
        assert f"正被另一个进程使用 (pid {first.proc.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert json.loads((data / "runtime.json").read_text()) == runtime
        first.register_small_province()
        report = subprocess.run(jiandu_cmd("verify"), capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "JIANDU_DATA_DIR": str(data)}, timeout=90)
        assert report.returncode == 0 and "6 条记录" in report.stdout, report.stderr  # through its API
    finally:
        assert first.stop() == 0
