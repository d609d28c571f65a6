"""The whole embedded pipeline through HTTP: jiandu up with its own Tansu and chDB."""

from __future__ import annotations

import time

import pytest

from tests.harness import Up, event, small_province
from tests.workloads import counting_workload


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    platform = Up(tmp_path_factory.mktemp("up")).wait_ready()
    assert platform.post(small_province()).status_code == 202
    platform.wait_unit("k2")
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
