"""A machine that only submits (no platform on its data dir, a broker named by
JIANDU_KAFKA_BOOTSTRAP): what it spooled while offline goes out with its next submission."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess

from aiokafka import AIOKafkaConsumer

from domain.records import decode_events
from jiandu.broker import ensure_topics
from jiandu.settings import TOPIC
from producers.outbox import Outbox
from tests.harness import ROOT, event, jiandu_cmd


def _write(path, n: int, prefix: str):
    events = [event("petition_received", "p", f"{prefix}{i}", {"channel": "letter", "category": "appeal"})
              for i in range(n)]
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return {e["event_id"] for e in events}


def _nothing_listening() -> str:
    """An address where no broker answers (a port bound a moment, never listened on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _submit(path, data, bootstrap: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JIANDU_DATA_DIR": str(data), "JIANDU_KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.run(jiandu_cmd("submit", str(path)), capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


async def _event_ids_on(bootstrap: str) -> list[str]:
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        ids = []
        while batch := await consumer.getmany(timeout_ms=2000):
            for messages in batch.values():
                for message in messages:
                    ids += [str(e.event_id) for e in decode_events(message.value)[1]]
        return ids
    finally:
        await consumer.stop()


def test_what_was_spooled_offline_goes_out_with_the_next_submission(broker, tmp_path):
    ensure_topics(broker.bootstrap, 4)
    data = tmp_path / "data"
    offline = _nothing_listening()
    first = _write(tmp_path / "first.jsonl", 5, "a")
    second = _write(tmp_path / "second.jsonl", 3, "b")

    spooled = _submit(tmp_path / "first.jsonl", data, offline)
    assert spooled.returncode == 0, spooled.stderr
    assert "spooled: 5" in spooled.stdout

    online = _submit(tmp_path / "second.jsonl", data, broker.bootstrap)
    assert online.returncode == 0, online.stderr
    assert "已投递此前暂存的 5 条" in online.stdout and "已投递 delivered: 3" in online.stdout
    # No platform on this data dir reads the ledger's receipts: the broker's acknowledgement
    # handed the batches over, so the outbox does not grow with every submission.
    assert Outbox(data / "outbox.sqlite").stats() == {"batches": 0, "events": 0, "unpublished_batches": 0,
                                                        "unpublished_events": 0}
    ids = asyncio.run(_event_ids_on(broker.bootstrap))
    assert sorted(ids) == sorted(first | second)  # each once: the spooled five are not sent again

    again = _submit(tmp_path / "second.jsonl", data, broker.bootstrap)
    assert "此前暂存" not in again.stdout  # nothing left over to deliver


def _outbox(data, *args: str, bootstrap: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "JIANDU_DATA_DIR": str(data)}
    env.pop("JIANDU_KAFKA_BOOTSTRAP", None)
    if bootstrap:
        env["JIANDU_KAFKA_BOOTSTRAP"] = bootstrap
    return subprocess.run(jiandu_cmd("outbox", *args), capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def test_jiandu_outbox_shows_what_waits_and_delivers_it_with_nothing_new_to_submit(broker, tmp_path):
    """A clerk back online with nothing new to send: `jiandu outbox` says what waits, and
    `--deliver` sends it, once each."""
    ensure_topics(broker.bootstrap, 4)
    data = tmp_path / "data"
    offline = _nothing_listening()
    spooled_ids = _write(tmp_path / "offline.jsonl", 4, "o")
    assert "spooled: 4" in _submit(tmp_path / "offline.jsonl", data, offline).stdout

    shown = _outbox(data)
    assert shown.returncode == 0 and "waiting for the broker: 4 条 events" in shown.stdout
    refused = _outbox(data, "--deliver")  # no platform here and no broker named
    assert refused.returncode == 2 and "JIANDU_KAFKA_BOOTSTRAP" in refused.stderr

    delivered = _outbox(data, "--deliver", bootstrap=broker.bootstrap)
    assert delivered.returncode == 0, delivered.stderr
    assert "已投递此前暂存的 4 条" in delivered.stdout and "waiting for the broker: 0 条" in delivered.stdout
    assert sorted(asyncio.run(_event_ids_on(broker.bootstrap))) == sorted(spooled_ids)
    assert Outbox(data / "outbox.sqlite").stats()["batches"] == 0
