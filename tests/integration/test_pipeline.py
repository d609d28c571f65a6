"""The whole embedded pipeline through HTTP: jiandu up with its own Tansu and chDB."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from tests.harness import ROOT, Up, event, jiandu_cmd
from tests.workloads import counting_workload


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    platform = Up(tmp_path_factory.mktemp("up")).wait_ready()
    platform.register_small_province()
    yield platform
    platform.stop()


def test_one_event_becomes_visible(up):
    before = up.totals("p")["cases.filed"]
    started = time.monotonic()
    response = up.post([event("case_filed", "k1", "case-visible", {"subject_rank": "county"})])
    assert response.status_code == 202 and response.json() == {"accepted": 1}
    waited = up.wait_for("p", "cases.filed", before + 1, timeout=30)
    print(f"\none event visible after {time.monotonic() - started:.2f} s (polled {waited:.2f} s)")


def test_same_events_submitted_twice_are_counted_once(up):
    events, expected = counting_workload(300, seed=11)
    before = up.totals("p")
    assert up.post(events).status_code == 202
    assert up.post(events).status_code == 202
    assert up.post(events[:50]).status_code == 202
    up.wait_for("p", "petitions.received", before["petitions.received"] + expected["petitions.received"])
    time.sleep(1.5)  # let any late duplicate arrive: it must not move the figures
    after = up.totals("p")
    for name, value in expected.items():
        assert after[name] - before[name] == value, name


def test_batch_with_one_bad_event_is_rejected_whole(up):
    before = up.totals("p")["petitions.received"]
    marker_before = up.totals("k2")["cases.filed"]
    good = [event("petition_received", "k2", f"pt{i}", {"channel": "visit", "category": "appeal"})
            for i in range(5)]
    bad = event("petition_received", "k2", "ptx", {"channel": "pigeon", "category": "appeal"})
    response = up.post(good[:2] + [bad] + good[2:])
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [(p["index"], p["event_id"], p["field"]) for p in problems] == \
        [(2, bad["event_id"], "payload.channel")]
    # A later marker proves the worker moved past the point where the batch would have landed.
    assert up.post([event("case_filed", "k2", "marker", {"subject_rank": "general"})]).status_code == 202
    up.wait_for("k2", "cases.filed", marker_before + 1, timeout=30)
    assert up.totals("p")["petitions.received"] == before


def test_server_fields_cannot_be_set_by_clients(up):
    forged = event("petition_received", "k1", "f", {"channel": "visit", "category": "appeal"})
    forged["seq"] = 1
    forged["recorded_at"] = "2020-01-01T00:00:00Z"
    response = up.post([forged])
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["problems"]} == {"seq", "recorded_at"}


def test_request_without_token_is_401_and_bad_token_too(up):
    import httpx

    assert httpx.get(up.url + "/v1/indicators", params={"unit": "p"}).status_code == 401
    assert httpx.get(up.url + "/v1/indicators", params={"unit": "p"},
                     headers={"Authorization": "Bearer nope"}).status_code == 401


def test_token_reads_only_its_subtree(up):
    import httpx

    response = httpx.post(up.url + "/v1/tokens", json={"unit_id": "c1", "role": "viewer"},
                          headers=up.headers(), timeout=30)
    assert response.status_code == 201
    token = response.json()["token"]
    assert up.indicators("c1", token=token).status_code == 200
    assert up.indicators("k1", token=token).status_code == 200
    assert up.indicators("c2", token=token).status_code == 403
    assert up.indicators("p", token=token).status_code == 403
    assert up.post([event("case_filed", "k1", "c", {"subject_rank": "county"})], token=token).status_code == 403


def test_units_endpoints_show_the_hierarchy(up):
    import httpx

    unit = httpx.get(up.url + "/v1/units/k1", headers=up.headers(), timeout=30).json()
    assert unit["path"] == ["p", "c1", "k1"] and unit["level"] == "county"
    children = httpx.get(up.url + "/v1/units/p/children", headers=up.headers(), timeout=30).json()
    assert sorted(c["unit_id"] for c in children) == ["c1", "c2", "g1"]


def _worker_counts(up: Up) -> dict[str, int]:
    return httpx.get(up.url + "/readyz", timeout=10).json()["worker"]


def _settled_counts(up: Up) -> dict[str, int]:
    """The worker's counts once nothing more arrives (they move when a batch is queryable, a
    moment after its units are)."""
    counts = _worker_counts(up)
    while True:
        time.sleep(1.5)
        counts, before = _worker_counts(up), counts
        if counts == before:
            return counts


def _wait_counts(up: Up, stored: int, duplicates: int) -> dict[str, int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _worker_counts(up)["stored"] < stored:
        time.sleep(0.2)
    time.sleep(1.5)  # anything more than expected would have arrived by now
    counts = _worker_counts(up)
    assert (counts["stored"], counts["duplicates"]) == (stored, duplicates)
    return counts


def test_simulate_run_twice_adds_new_events_both_times(up):
    """`jiandu simulate` against the running platform (the broker from its runtime.json):
    the second run's events are new ones, and only its unit registrations repeat."""
    env = {**os.environ, "JIANDU_DATA_DIR": str(up.data_dir)}
    env.pop("JIANDU_KAFKA_BOOTSTRAP", None)
    before = _settled_counts(up)
    for run in (1, 2):
        result = subprocess.run(jiandu_cmd("simulate", "--units", "30", "--events", "1000"),
                                capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "1000/1000" in result.stdout and "spooled" not in result.stdout
        _wait_counts(up, before["stored"] + 30 + 1000 * run, before["duplicates"] + 30 * (run - 1))

