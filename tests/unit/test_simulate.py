"""The synthetic province and its event workload."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import pytest

from domain.decode import decode_batch
from producers.simulate import START, Workload, build_province

ID = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@pytest.fixture(scope="module")
def units() -> list[dict[str, Any]]:
    return build_province()


@pytest.fixture(scope="module")
def events(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    workload = Workload(units)
    # Several batches: lifecycles must carry over between calls.
    return [e for size in (7_000, 13_000, 40_000) for e in workload.next_batch(size)]


def _by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def _at(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["occurred_at"])


def _opened(events: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {e["subject_id"]: e for e in _by_type(events, kind)}


def test_province_has_expected_shape(units: list[dict[str, Any]]) -> None:
    levels = Counter(e["payload"]["level"] for e in units)
    assert levels["province"] == 1 and levels["city"] == 11
    assert 85 <= levels["county"] <= 95
    assert 2 * levels["county"] <= levels["township"] <= 4 * levels["county"]
    parents = {e["subject_id"]: e["payload"].get("parent_id") for e in units}
    groups = Counter(parents[e["subject_id"]] for e in units
                     if e["payload"]["level"] == "stationed_group")
    assert groups["gd"] == 40
    assert all(22 <= groups[c] <= 28 for c in parents if parents[c] == "gd" and ".c" in c)
    assert all(6 <= groups[k] <= 15 for k in parents if ".k" in k and k.count(".") == 2)
    root = units[0]
    assert root["subject_id"] == root["unit_id"] == "gd"
    assert root["payload"]["name"] == "广东省纪委监委" and "parent_id" not in root["payload"]


def test_units_are_registered_parent_before_child_by_their_parent(units: list[dict[str, Any]]) -> None:
    seen = {units[0]["subject_id"]}
    for event in units[1:]:
        parent = event["payload"]["parent_id"]
        assert parent in seen and event["unit_id"] == parent
        assert event["subject_id"].startswith(parent + ".")
        seen.add(event["subject_id"])
    assert all(ID.match(e["subject_id"]) for e in units)
    assert {e["payload"]["effective_from"] for e in units} == {"2020-01-01"}


def test_province_is_deterministic_per_seed() -> None:
    assert build_province(3) == build_province(3)
    assert build_province(3)[0]["event_id"] != build_province(4)[0]["event_id"]
    assert build_province(root_id="zj")[1]["subject_id"] == "zj.c01"


def test_every_simulated_event_validates(units: list[dict[str, Any]],
                                         events: list[dict[str, Any]]) -> None:
    everything = units + events
    decoded = [e for i in range(0, len(everything), 10_000)
               for e in decode_batch(everything[i:i + 10_000])]
    assert len(decoded) == len(everything)
    assert len({e.event_id for e in decoded}) == len(everything)


def test_province_and_workload_ids_never_collide(units: list[dict[str, Any]]) -> None:
    # Same seed, same default: the two streams must still differ, or ids would repeat.
    workload_ids = {e["event_id"] for e in Workload(units).next_batch(len(units))}
    assert workload_ids.isdisjoint(e["event_id"] for e in units)
    assert {e["event_id"] for e in build_province(root_id="zj")}.isdisjoint(
        e["event_id"] for e in units)


def test_workload_is_deterministic(units: list[dict[str, Any]]) -> None:
    assert Workload(units, seed=1).next_batch(500) == Workload(units, seed=1).next_batch(500)
    assert Workload(units, seed=1).next_batch(50) != Workload(units, seed=2).next_batch(50)


def test_time_moves_forward_from_start(events: list[dict[str, Any]]) -> None:
    times = [_at(e) for e in events]
    assert times[0] > START
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert all(t.utcoffset() == dt.timedelta(hours=8) for t in times[:100])


def test_root_records_nothing_but_task_assignments(events: list[dict[str, Any]]) -> None:
    assert {e["type"] for e in events if e["unit_id"] == "gd"} <= {"task_assigned"}


def test_clue_is_registered_before_it_is_disposed(events: list[dict[str, Any]]) -> None:
    registered = _opened(events, "clue_registered")
    disposals = Counter()
    for event in _by_type(events, "clue_disposed"):
        clue = registered[event["subject_id"]]
        assert clue["unit_id"] == event["unit_id"] and _at(clue) < _at(event)
        disposals[event["subject_id"]] += 1
    assert disposals and set(disposals.values()) <= {1, 2}
    assert 2 in disposals.values()


def test_case_is_filed_before_it_is_closed(events: list[dict[str, Any]]) -> None:
    filed = _opened(events, "case_filed")
    closed = _by_type(events, "case_closed")
    assert closed
    for event in closed:
        case = filed[event["subject_id"]]
        assert case["unit_id"] == event["unit_id"] and _at(case) < _at(event)
    assert len({e["subject_id"] for e in closed}) == len(closed)


def test_suggestions_are_due_15_to_90_days_out_and_answered_later(events: list[dict[str, Any]]) -> None:
    issued = _opened(events, "suggestion_issued")
    for event in issued.values():
        days = (dt.date.fromisoformat(event["payload"]["due_date"]) - _at(event).date()).days
        assert 15 <= days <= 90
    closed = set()
    for event in events:
        if event["type"] in ("suggestion_replied", "suggestion_closed"):
            origin = issued[event["subject_id"]]
            assert origin["unit_id"] == event["unit_id"] and _at(origin) < _at(event)
            assert event["subject_id"] not in closed
        if event["type"] == "suggestion_closed":
            closed.add(event["subject_id"])
    assert closed and _by_type(events, "suggestion_replied")


def test_rectification_is_opened_before_it_is_closed(events: list[dict[str, Any]]) -> None:
    opened = _opened(events, "rectification_opened")
    assert all(dt.date.fromisoformat(e["payload"]["due_date"]) > _at(e).date() for e in opened.values())
    for event in _by_type(events, "rectification_closed"):
        assert _at(opened[event["subject_id"]]) < _at(event)


def test_tasks_go_to_child_units_and_progress_rises(units: list[dict[str, Any]],
                                                   events: list[dict[str, Any]]) -> None:
    parent = {e["subject_id"]: e["payload"].get("parent_id") for e in units}
    level = {e["subject_id"]: e["payload"]["level"] for e in units}
    tasks = _opened(events, "task_assigned")
    for task in tasks.values():
        assert parent[task["payload"]["assignee_unit"]] == task["unit_id"]
        assert level[task["unit_id"]] in ("province", "city", "county")
    last: dict[str, float] = {}
    for event in events:
        if event["type"] == "task_progress_reported":
            assert event["unit_id"] == tasks[event["subject_id"]]["payload"]["assignee_unit"]
            assert event["payload"]["percent"] > last.get(event["subject_id"], 0)
            last[event["subject_id"]] = event["payload"]["percent"]
    assert last and _by_type(events, "task_completed")


def test_mix_looks_like_a_commission(events: list[dict[str, Any]]) -> None:
    counts = Counter(e["type"] for e in events)
    assert counts["petition_received"] > counts["clue_registered"] > counts["case_filed"] > 0
    forms = Counter(e["payload"]["form"] for e in _by_type(events, "four_forms_applied"))
    total = sum(forms.values())
    assert 0.60 <= forms[1] / total <= 0.72 and 0.22 <= forms[2] / total <= 0.32
    assert forms[3] + forms[4] < forms[2]


def test_person_events_name_a_person_of_the_unit(events: list[dict[str, Any]]) -> None:
    kinds = ("sanction_imposed", "four_forms_applied", "transferred_to_procuratorate")
    people = [e for e in events if e["type"] in kinds]
    assert people
    assert all(e["payload"]["person_id"].startswith(f"p-{e['unit_id']}-") for e in people)


def test_corrections_replace_an_earlier_petition_of_the_same_unit(events: list[dict[str, Any]]) -> None:
    petitions = {e["event_id"]: e for e in _by_type(events, "petition_received")}
    corrections = _by_type(events, "event_corrected")
    assert 5 <= len(corrections) <= 80  # about 1 in 2,000
    for event in corrections:
        original = petitions[event["payload"]["corrects"]]
        assert original["unit_id"] == event["unit_id"] and _at(original) < _at(event)
        assert set(event["payload"]["payload"]) == {"channel", "category"}


def test_fresh_workloads_share_no_event_and_no_subject(units: list[dict[str, Any]]) -> None:
    # `jiandu simulate` run twice, or the demo restarted: the second run must add events, and
    # its cases and clues must not continue (close, dispose) the first run's.
    first, second = (Workload.fresh(units).next_batch(5_000) for _ in range(2))
    opened = {"clue_registered", "case_filed", "suggestion_issued", "rectification_opened", "task_assigned"}
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}
    subjects = [{e["subject_id"] for e in run if e["type"] in opened} for run in (first, second)]
    assert subjects[0] and subjects[1] and not subjects[0] & subjects[1]
    assert all(ID.match(e["subject_id"]) for e in second)
    decode_batch(second)  # still valid events
