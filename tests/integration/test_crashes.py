"""Nothing lost, nothing counted twice: kill -9 and broker outages with real processes."""

from __future__ import annotations

import json
import subprocess
import time

from domain.decode import decode_batch
from jiandu.broker import TansuBroker
from jiandu.settings import TOPIC
from producers.outbox import Outbox
from producers.publisher import KafkaPublisher
from producers.service import Submitter
from tests.harness import ROOT, Up, jiandu_cmd, ledger_stats
from tests.workloads import counting_workload


def _publish(bootstrap: str, outbox_dir, events: list[dict], chunk: int = 10_000) -> None:
    submitter = Submitter(Outbox(outbox_dir / "outbox.sqlite"), KafkaPublisher(bootstrap, TOPIC), 4)
    for i in range(0, len(events), chunk):
        submitter.submit(decode_batch(events[i:i + chunk]), "test")
    submitter.publisher.close()


def _assert_figures(up: Up, expected) -> None:
    totals = up.totals("p")
    wrong = {k: (totals[k], v) for k, v in expected.items() if totals[k] != v}
    assert not wrong, f"figures differ (got, expected): {wrong}"


def test_worker_killed_during_100k_ingest_loses_and_doubles_nothing(broker, tmp_path):
    data = tmp_path / "data"
    up = Up(data, bootstrap=broker.bootstrap).wait_ready()
    up.register_small_province()
    events, expected = counting_workload(100_000, seed=5)
    _publish(broker.bootstrap, tmp_path, events)
    seen = 0
    while seen == 0:
        seen = up.totals("p")["petitions.received"]
    up.kill9()
    print(f"\nkilled the worker with {seen} of {expected['petitions.received']} petitions folded")

    up = Up(data, bootstrap=broker.bootstrap, log_name="up2.log").wait_ready()
    up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=300)
    time.sleep(2)
    _assert_figures(up, expected)
    up.stop()
    assert ledger_stats(data) == {"rows": 100_006, "distinct": 100_006}


def test_whole_platform_killed_right_after_202_keeps_every_event(tmp_path):
    data = tmp_path / "data"
    up = Up(data).wait_ready()
    up.register_small_province()
    events, expected = counting_workload(5_000, seed=9)
    assert up.post(events).status_code == 202
    up.kill9()  # the embedded broker dies with it: only the outbox remembers

    up = Up(data, log_name="up2.log").wait_ready()
    up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=180)
    _assert_figures(up, expected)
    up.stop()
    assert ledger_stats(data) == {"rows": 5_006, "distinct": 5_006}


def test_submit_spools_while_broker_is_down_and_delivers_when_it_returns(broker, tmp_path):
    data = tmp_path / "data"
    up = Up(data, bootstrap=broker.bootstrap).wait_ready()
    up.register_small_province()
    port = broker.port
    broker.stop()

    events, expected = counting_workload(500, seed=3)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events), encoding="utf-8")
    env = {"JIANDU_DATA_DIR": str(data), "JIANDU_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run(jiandu_cmd("submit", str(path)), capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "spooled: 500" in result.stdout
    assert Outbox(data / "outbox.sqlite").stats()["events"] >= 500

    revived = TansuBroker(port).start()
    try:
        up.wait_for("p", "petitions.received", expected["petitions.received"], timeout=180)
        _assert_figures(up, expected)
        up.stop()
        assert ledger_stats(data) == {"rows": 506, "distinct": 506}
    finally:
        up.stop()
        revived.stop()
