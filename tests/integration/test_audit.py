"""Audit: tampering is caught, as-of views hold, corrections keep history, replay is deterministic."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time

import httpx
import pytest

from tests.harness import ROOT, Up, event, jiandu_cmd, run_in_store
from tests.workloads import counting_workload

TAMPERING = {
    "changed_payload_byte": ("ALTER TABLE ledger UPDATE payload = replace(payload, 'letter', 'lettex') "
                             "WHERE unit_id = 'k1' AND seq = 3 SETTINGS mutations_sync = 1", 3),
    "deleted_row": ("ALTER TABLE ledger DELETE WHERE unit_id = 'k1' AND seq = 4 SETTINGS mutations_sync = 1", 4),
    "swapped_rows": ("CREATE TABLE swap AS ledger; "
                     "INSERT INTO swap SELECT * REPLACE (if(seq = 5, 6, 5) AS seq) FROM ledger "
                     "WHERE unit_id = 'k1' AND seq IN (5, 6); "
                     "ALTER TABLE ledger DELETE WHERE unit_id = 'k1' AND seq IN (5, 6) SETTINGS mutations_sync = 1; "
                     "INSERT INTO ledger SELECT * FROM swap", 5),
    "inserted_forged_row": ("INSERT INTO ledger SELECT * REPLACE (generateUUIDv4() AS event_id, "
                            "'{\"channel\":\"visit\",\"category\":\"appeal\"}' AS payload) "
                            "FROM ledger WHERE unit_id = 'k1' AND seq = 7", 7),
}


def verify(data_dir, *extra):
    return subprocess.run(jiandu_cmd("verify", "--data-dir", str(data_dir), *extra), capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def stopped_ledger(tmp_path_factory):
    data = tmp_path_factory.mktemp("ledger") / "data"
    up = Up(data).wait_ready()
    up.register_small_province()
    events = [event("petition_received", "k1", f"p{i}", {"channel": "letter", "category": "appeal"})
              for i in range(12)]
    events += [event("task_assigned", "k1", "t1", {"title": "台账", "responsible_leader": "甲", "standard": "按期",
                                                  "assignee_unit": "k2", "due_date": "2024-05-01"}),
               event("task_progress_reported", "k2", "t1", {"percent": 40}),
               event("task_completed", "k2", "t1", {})]
    assert up.post(events).status_code == 202
    up.wait_for("k1", "petitions.received", 12)
    up.wait_for("k2", "tasks.completed", 1)
    assert up.stop() == 0
    return data


def test_untouched_ledger_verifies(stopped_ledger):
    result = verify(stopped_ledger)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout and "21" in result.stdout  # 6 registrations + 12 petitions + 3 task events


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_detected_naming_unit_and_seq(stopped_ledger, tmp_path, kind):
    copy = tmp_path / "tampered"
    shutil.copytree(stopped_ledger, copy, symlinks=True)
    sql, seq = TAMPERING[kind]
    for statement in sql.split("; "):
        run_in_store(copy, f"store.command({statement!r})")
    result = verify(copy)
    assert result.returncode == 1, result.stdout
    assert f"unit=k1 seq={seq}" in result.stdout, result.stdout
    assert verify(copy, "--unit", "k2").returncode == 0  # other units' chains still hold


def test_replay_twice_gives_identical_checksums_equal_to_live(stopped_ledger, tmp_path):
    copy = tmp_path / "replayed"
    shutil.copytree(stopped_ledger, copy, symlinks=True)
    live = run_in_store(copy, "from projections.replay import checksum; "
                              "print('\\n'.join(f'{t}\\t{checksum(store, t)}' for t in ('facts', 'daily', 'items')))"
                    ).strip()
    outputs = []
    for _ in range(2):
        result = subprocess.run(jiandu_cmd("replay", "--data-dir", str(copy)), capture_output=True, text=True,
                                cwd=ROOT, timeout=300, env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip())
    assert outputs[0] == outputs[1] == live  # facts and the live daily and item folds, row for row


def test_as_of_between_submissions_shows_the_first_even_after_a_retraction(tmp_path):
    up = Up(tmp_path / "data").wait_ready()
    try:
        up.register_small_province()
        first, expected_first = counting_workload(200, seed=21)
        assert up.post(first).status_code == 202
        up.wait_for("p", "petitions.received", expected_first["petitions.received"])
        then = up.totals("p")
        cutoff = dt.datetime.now(dt.UTC).isoformat()
        time.sleep(0.05)
        second, expected_second = counting_workload(150, seed=22)
        assert up.post(second).status_code == 202
        total = expected_first["petitions.received"] + expected_second["petitions.received"]
        up.wait_for("p", "petitions.received", total)
        victim = next(e for e in first if e["type"] == "petition_received")
        retraction = event("event_retracted", victim["unit_id"], victim["subject_id"],
                           {"retracts": victim["event_id"], "reason": "重复录入"})
        assert up.post([retraction]).status_code == 202
        up.wait_for("p", "petitions.received", total - 1)
        assert up.totals("p", as_of=cutoff) == then

        history = httpx.get(f"{up.url}/v1/audit/subjects/{victim['subject_id']}", headers=up.headers(),
                            timeout=30).json()["events"]
        original = next(e for e in history if e["event_id"] == victim["event_id"])
        assert original["retracted_by"] == [retraction["event_id"]]
        assert {e["type"] for e in history} >= {"petition_received", "event_retracted"}

        pages, cursor = [], None
        while True:
            params = {"unit": "k1", "limit": 40, **({"cursor": cursor} if cursor else {})}
            body = httpx.get(f"{up.url}/v1/audit/events", params=params, headers=up.headers(), timeout=30).json()
            pages.append(body["events"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        seqs = [(e["unit_id"], e["seq"]) for page in pages for e in page]
        assert len(pages) > 1 and len(seqs) == len(set(seqs)) and seqs == sorted(seqs)
        assert all(e["hash"] and e["prev_hash"] for page in pages for e in page)

        checks = httpx.post(f"{up.url}/v1/audit/replay", headers=up.headers(), timeout=300).json()["checksums"]
        assert checks["facts"].startswith(str(6 + 350 + 1) + ":")
        assert up.totals("p", as_of=cutoff) == then and up.totals("p")["petitions.received"] == total - 1
        report = httpx.get(f"{up.url}/v1/audit/verify", headers=up.headers(), timeout=60).json()
        assert report["ok"] and report["rows"] == 6 + 350 + 1
    finally:
        up.stop()


def test_new_consumer_group_rebuilds_identical_figures_from_the_topic(broker, tmp_path):
    first = Up(tmp_path / "a", bootstrap=broker.bootstrap).wait_ready()
    second = None
    try:
        first.register_small_province()
        events, expected = counting_workload(2_000, seed=31)
        assert first.post(events).status_code == 202
        first.wait_for("p", "petitions.received", expected["petitions.received"])
        second = Up(tmp_path / "b", bootstrap=broker.bootstrap,
                    env={"JIANDU_CONSUMER_GROUP": "jiandu-rebuild"}).wait_ready()
        second.wait_for("p", "petitions.received", expected["petitions.received"])
        for unit in ("p", "c1", "c2", "k1", "k2", "g1"):
            for group_by in ("none", "month"):
                a = first.indicators(unit, group_by=group_by).json()["rows"]
                b = second.indicators(unit, group_by=group_by).json()["rows"]
                assert a == b, (unit, group_by)
    finally:
        first.stop()
        if second is not None:
            second.stop()


# A replay killed (SIGKILL, by itself) at its first statement matching the pattern: in the
# facts rebuild, or in the items rebuild with slices that resolve the facts once.
KILLED_AT = {
    "facts": (r"^INSERT INTO facts_replay_", ""),
    "items_resolved": (r"^INSERT INTO items_replay_[0-9a-f]{8}_resolved ", "folds.SLICE_FACTS = 1\n"),
}
_SCRATCH_TABLES = ("print('\\n'.join(r[0] for r in store.rows(\"SELECT name FROM system.tables WHERE "
                   "database = currentDatabase() AND match(name, 'replay|resolved|rebuild')\")))")


@pytest.mark.parametrize("moment", sorted(KILLED_AT))
def test_a_killed_replay_leaves_tables_that_the_next_replay_drops(stopped_ledger, tmp_path, moment):
    copy = tmp_path / "replayed"
    shutil.copytree(stopped_ledger, copy, symlinks=True)
    live = run_in_store(copy, "from projections.replay import checksum; "
                              "print('\\n'.join(f'{t}\\t{checksum(store, t)}' for t in ('facts', 'daily', 'items')))")
    pattern, setup = KILLED_AT[moment]
    with pytest.raises(RuntimeError):  # the process died: no exit code 0
        run_in_store(copy, "import os, re, signal\nfrom projections import folds\n" + setup
                     + "command = store.command\n"
                     + "def command_or_die(sql, *args, **kwargs):\n"
                     + f"    if re.match({pattern!r}, sql):\n"
                     + "        os.kill(os.getpid(), signal.SIGKILL)\n"
                     + "    return command(sql, *args, **kwargs)\n"
                     + "store.command = command_or_die\n"
                     + "from projections.replay import replay\nreplay(store)\n")
    left = run_in_store(copy, _SCRATCH_TABLES).split()
    assert any(name.startswith(f"{moment.split('_')[0]}_replay_") for name in left), left  # the kill left them
    assert any(name.endswith("_resolved") for name in left) == (moment == "items_resolved"), left
    result = subprocess.run(jiandu_cmd("replay", "--data-dir", str(copy)), capture_output=True, text=True,
                            cwd=ROOT, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == live.strip()
    assert run_in_store(copy, _SCRATCH_TABLES).split() == []
