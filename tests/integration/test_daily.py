"""The live figures (`daily` and `items` folds) equal the full recomputation from `facts`, on
real chDB.

The live path serves every indicator request without `as_of`; the `facts` path serves `as_of`.
Corrections and retractions, in the same batch as their target or later, and an item's later
events (a closure, a progress report, a second disposition, from another unit too) make the
folds write -1/+1 rows; a fold that dies after `facts` was written is finished by the next start.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from domain.records import encode_record
from projections import folds as folds_module
from projections import replay as replay_module
from projections.daily import DailyFolds
from projections.folds import FOLD_SETTINGS, INSERT_SETTINGS
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorQuery, IndicatorService
from projections.items import ItemFolds
from projections.ledger import ClickHouseLedger
from projections.replay import checksum, replay, unit_slices
from projections.store import ClickHouseStore
from streams.ingest import Delivery, Ingestor
from tests.integration.test_indicator_properties import _province

UNITS = ("c1", "c2", "k1", "k2", "g1")
DUE = st.sampled_from(["2024-02-10", "2024-03-15", "2099-01-01"])
PAYLOADS = {
    "sanction_imposed": lambda d: {"person_id": d(st.sampled_from("pqrs")),
                                   "kind": d(st.sampled_from(["party", "government"])),
                                   "rank": d(st.sampled_from(["general", "county", "bureau"]))},
    "four_forms_applied": lambda d: {"person_id": "x", "form": d(st.integers(1, 4))},
    "talk_conducted": lambda d: {"person_id": "y", "kind": d(st.sampled_from(["reminder", "integrity"]))},
    "petition_received": lambda d: {"channel": "letter",
                                    "category": d(st.sampled_from(["accusation", "appeal"]))},
    "case_filed": lambda d: {"subject_rank": d(st.sampled_from(["general", "county"]))},
    "integrity_file_updated": lambda d: {"person_id": d(st.sampled_from("pq")), "section": "家庭"},
    "clue_disposed": lambda d: {"method": d(st.sampled_from(["shelved", "talk_inquiry", "concluded"]))},
    "suggestion_issued": lambda d: {"kind": "discipline", "target_unit": "某局", "due_date": d(DUE)},
    "suggestion_closed": lambda d: {},
    "rectification_opened": lambda d: {"source": "audit", "responsible": "甲", "due_date": d(DUE)},
    "rectification_closed": lambda d: {},
    "task_assigned": lambda d: {"title": "台账", "responsible_leader": "乙", "standard": "按期",
                                "assignee_unit": "@" + d(st.sampled_from(UNITS)), "due_date": d(DUE)},
    "task_progress_reported": lambda d: {"percent": d(st.sampled_from([0, 12.5, 40, 99.9]))},
    "task_completed": lambda d: {},
}
ITEM_FAMILIES = ("clue", "suggestion", "rectification", "task")  # events about one of 3 items each
# All time reads the folds' monthly and all-time rows; a period, the monthly rows of its whole
# months and the daily rows of the rest (none whole, open-ended, edges on both sides).
SHAPES = ({}, {"group_by": "child"}, {"group_by": "level"}, {"group_by": "month"}, {"scope": "self"},
          {"scope": "self", "group_by": "child"}, {"from_": dt.date(2024, 2, 1), "to": dt.date(2024, 3, 1)},
          {"from_": dt.date(2024, 1, 15), "to": dt.date(2024, 3, 10), "group_by": "child"},
          {"from_": dt.date(2024, 2, 3), "to": dt.date(2024, 2, 20)}, {"to": dt.date(2024, 3, 1)},
          {"from_": dt.date(2024, 2, 10), "group_by": "level"})


@st.composite
def histories(draw) -> tuple[list[dict], list[tuple[str, int]], list[int]]:
    """Originals, then corrections/retractions of some of them, then where the batches split."""
    originals = []
    for _ in range(draw(st.integers(1, 14))):
        event_type = draw(st.sampled_from(sorted(PAYLOADS)))
        family = event_type.split("_")[0]
        subject = f"{family}{draw(st.integers(0, 2))}" if family in ITEM_FAMILIES else f"s{len(originals)}"
        originals.append((draw(st.sampled_from(UNITS)), event_type, PAYLOADS[event_type](draw),
                          draw(st.integers(0, 89)), subject))
    changes = draw(st.lists(st.tuples(st.sampled_from(["correct", "retract"]),
                                      st.integers(0, len(originals) - 1)), max_size=8))
    corrected = []
    for action, index in changes:
        event_type = originals[index][1]
        corrected.append((action, index, PAYLOADS[event_type](draw) if action == "correct" else None))
    cuts = draw(st.lists(st.integers(1, len(originals) + len(corrected)), max_size=3))
    return originals, corrected, sorted(set(cuts))


def _raw_events(prefix: str, history) -> list[dict]:
    originals, corrected, _ = history
    start = dt.date(2024, 1, 1)
    raws = []
    for unit, event_type, payload, day, subject in originals:
        raws.append({"event_id": str(uuid.uuid4()), "type": event_type, "unit_id": prefix + unit, "subject_id": subject,
                     "occurred_at": f"{start + dt.timedelta(days=day)}T23:30:00+08:00",
                     "payload": _prefixed(prefix, payload)})
    retracted: set[int] = set()
    for action, index, payload in corrected:
        if index in retracted:
            continue  # a retracted event cannot be corrected again: the worker would reject it
        if action == "retract":
            retracted.add(index)
        raws += _changed([raws[index]], _prefixed(prefix, payload) if action == "correct" else None, "2024-06-01")
    return raws


def _prefixed(prefix: str, payload: dict) -> dict:
    """A drawn task's assignee ("@k1") as the unit id of this example's province."""
    unit = payload.get("assignee_unit", "")
    return {**payload, "assignee_unit": prefix + unit[1:]} if unit.startswith("@") else payload


def _ingest(store: ClickHouseStore, raws: list[dict], cuts: list[int]) -> None:
    ingestor = Ingestor(ClickHouseLedger(store))
    ingestor.load()
    bounds = [0, *[c for c in cuts if c < len(raws)], len(raws)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if hi > lo:
            outcome = ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "test", raws[lo:hi]))])
            assert not outcome.rejected, outcome.rejected


def _rows(service: IndicatorService, unit: str, **shape) -> dict[str, dict]:
    return {r["key"]: r["indicators"] for r in service.compute(IndicatorQuery(unit, **shape))["rows"]}


def assert_live_equals_recomputed(store: ClickHouseStore, prefix: str) -> None:
    service = IndicatorService(store, HierarchySource(store))
    for unit in (prefix + "p", prefix + "c1"):
        for shape in SHAPES:
            live = _rows(service, unit, **shape)
            now = dt.datetime.now(dt.UTC)  # overdue and due figures are "as of today" on both paths
            recomputed = _rows(service, unit, as_of=now, **shape)
            assert live == recomputed, (unit, shape)


# No shrinking: each example is a real ingest, and shrinking one can take minutes.
@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
# One person sanctioned on two days in one batch, one of the two retracted in the next: the
# person's all-time count must be 2 after the first fold (not 1), or the retraction drops them.
@example(history=([("k1", "sanction_imposed", {"person_id": "p", "kind": "party", "rank": "general"}, 3, "s0"),
                   ("k1", "sanction_imposed", {"person_id": "p", "kind": "party", "rank": "general"}, 40, "s1")],
                  [("retract", 0, None)], [2]))
def test_live_figures_equal_the_recomputation_after_corrections_and_retractions(chdb_store, history):
    prefix = f"d{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    raws = _raw_events(prefix, history)
    _ingest(chdb_store, raws, history[2])
    assert_live_equals_recomputed(chdb_store, prefix)


def _crash_in_fold_then_restart(store, monkeypatch, folds: str, event: dict, unit: str):
    """Ingest `event` with the `folds` fold dying (after `facts`, while the other fold lands);
    return the unit's figures then, and after two restarts (the second must fold nothing more)."""
    ingestor = Ingestor(ClickHouseLedger(store))
    ingestor.load()

    def die(*args):
        raise RuntimeError(f"killed before the {folds} fold")

    monkeypatch.setattr(getattr(ingestor.ledger, folds), "fold", die)
    with pytest.raises(RuntimeError):
        ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "test", [event]))])
    service = IndicatorService(store, HierarchySource(store))
    stale = _rows(service, unit)[unit]
    restarted = Ingestor(ClickHouseLedger(store))
    restarted.load()  # catch-up folds each unit's rows past its last upto_seq, once
    restarted.load()  # and a second start finds nothing left to fold
    return stale, _rows(service, unit)[unit]


def test_a_fold_lost_to_a_crash_is_finished_on_the_next_start(chdb_store, monkeypatch):
    prefix = f"e{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    first = [{"event_id": str(uuid.uuid4()), "type": "sanction_imposed", "unit_id": prefix + "k1",
              "subject_id": f"s{i}", "occurred_at": "2024-01-05T10:00:00+08:00",
              "payload": {"person_id": f"m{i % 3}", "kind": "party", "rank": "county"}} for i in range(6)]
    _ingest(chdb_store, first, [])
    [fix] = _changed(first[:1], {"person_id": "m9", "kind": "government", "rank": "bureau"}, "2024-02-01")

    stale, live = _crash_in_fold_then_restart(chdb_store, monkeypatch, "daily", fix, prefix + "k1")
    assert stale["sanctions.government"] == 0  # the fold really did not happen
    assert live["sanctions.government"] == 1 and live["sanctions.bureau"] == 1
    assert live["sanctions.persons"] == 4  # m0 (still sanctioned by s3), m1, m2, m9
    assert_live_equals_recomputed(chdb_store, prefix)


def test_an_item_fold_lost_to_a_crash_is_finished_on_the_next_start(chdb_store, monkeypatch):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    assigned = {"event_id": str(uuid.uuid4()), "type": "task_assigned", "unit_id": prefix + "c1",
                "subject_id": "t1", "occurred_at": "2024-01-05T10:00:00+08:00",
                "payload": {"title": "台账", "responsible_leader": "甲", "standard": "按期",
                            "assignee_unit": prefix + "k1", "due_date": "2024-03-01"}}
    _ingest(chdb_store, [assigned], [])
    completed = {"event_id": str(uuid.uuid4()), "type": "task_completed", "unit_id": prefix + "k1",
                 "subject_id": "t1", "occurred_at": "2024-02-01T10:00:00+08:00", "payload": {}}
    stale, live = _crash_in_fold_then_restart(chdb_store, monkeypatch, "items", completed, prefix + "k1")
    assert (stale["tasks.completed"], stale["tasks.overdue"]) == (0, 1)  # the fold really did not happen
    assert (live["tasks.assigned"], live["tasks.completed"], live["tasks.overdue"],
            live["tasks.avg_progress"]) == (1, 1, 0, 100.0)
    assert_live_equals_recomputed(chdb_store, prefix)


def test_a_changed_time_zone_refolds_days(chdb_store):
    prefix = f"z{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    late = [{"event_id": str(uuid.uuid4()), "type": "petition_received", "unit_id": prefix + "c1",
             "subject_id": "s1", "occurred_at": "2024-02-01T01:30:00+08:00",
             "payload": {"channel": "letter", "category": "appeal"}}]
    _ingest(chdb_store, late, [])
    before = checksum(chdb_store, "daily")
    try:
        ClickHouseLedger(chdb_store, "UTC").catch_up()
        january = chdb_store.rows("SELECT day FROM daily WHERE unit_id = {u:String} AND family = 'child' AND person_type = ''",
                                  {"u": prefix + "c1"})
        assert january == [(dt.date(2024, 1, 31),)]  # 17:30 UTC on the 31st, 01:30 on the 1st in Beijing
        assert checksum(chdb_store, "daily") != before
    finally:
        ClickHouseLedger(chdb_store, "Asia/Shanghai").catch_up()
    assert checksum(chdb_store, "daily") == before
    assert chdb_store.rows("SELECT day FROM daily WHERE unit_id = {u:String} AND family = 'child' AND person_type = ''",
                           {"u": prefix + "c1"}) == [(dt.date(2024, 2, 1),)]
    replay(chdb_store)  # a rebuild from the ledger gives the same folds, row for row
    assert checksum(chdb_store, "daily") == before


def _petition(prefix: str, unit: str, day: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": "petition_received", "unit_id": prefix + unit,
            "subject_id": f"s-{uuid.uuid4().hex[:6]}", "occurred_at": f"{day}T10:00:00+08:00",
            "payload": {"channel": "letter", "category": "accusation"}}


def _petitions(service: IndicatorService, unit: str, **shape) -> dict[str, int]:
    return {k: v["petitions.received"] for k, v in _rows(service, unit, **shape).items()}


def test_a_moved_unit_is_refolded_under_its_new_parent_from_the_move_on(chdb_store, monkeypatch):
    prefix = f"m{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    _ingest(chdb_store, [_petition(prefix, "k1", "2024-01-10"), _petition(prefix, "k1", "2024-03-01"),
                         _petition(prefix, "c2", "2024-03-02")], [])
    service = IndicatorService(chdb_store, HierarchySource(chdb_store))
    c1, c2 = prefix + "c1", prefix + "c2"
    assert _petitions(service, prefix + "p", group_by="child")[c1] == 2
    move = {"event_id": str(uuid.uuid4()), "type": "unit_moved", "unit_id": prefix + "k1",
            "subject_id": prefix + "k1", "occurred_at": "2024-02-20T09:00:00+08:00",
            "payload": {"parent_id": c2, "effective_from": "2024-02-15"}}

    # The worker dies before folding the move: the API sees a hierarchy its folds were not
    # written under, and recomputes from facts instead of serving the old rollup.
    ingestor = Ingestor(ClickHouseLedger(chdb_store))
    ingestor.load()
    monkeypatch.setattr(ingestor.ledger.items, "settle", lambda *args: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "test", [move]))])
    by_child = _petitions(service, prefix + "p", group_by="child")
    assert (by_child[c1], by_child[c2]) == (1, 2)  # k1's March petition is c2's now
    assert _petitions(service, c2, group_by="month") == {"2024-03": 2}

    restarted = Ingestor(ClickHouseLedger(chdb_store))
    restarted.load()  # rebuilds both folds under the new hierarchy
    trees = {name: value for name, value in chdb_store.rows(
        "SELECT name, argMax(value, set_at) FROM projection_settings "
        "WHERE name IN ('daily.tree', 'items.tree') GROUP BY name")}
    assert trees["daily.tree"] == trees["items.tree"] == service.trees.tree_id(service.hierarchy.at())
    assert chdb_store.scalar("SELECT count() FROM daily WHERE unit_id = {u:String} AND family = 'child' "
                             "AND scope_key = {k:String} AND person_type = '' AND day >= '2024-02-15'",
                             {"u": c2, "k": prefix + "k1"}) == 1  # the rollup itself moved
    assert _petitions(service, prefix + "p", group_by="child")[c2] == 2
    assert _petitions(service, c1) == {c1: 1}
    assert_live_equals_recomputed(chdb_store, prefix)
    for shape in SHAPES:
        assert _rows(service, c2, **shape) == _rows(service, c2, as_of=dt.datetime.now(dt.UTC), **shape), shape


def test_registering_units_keeps_the_folds_and_their_figures(chdb_store, monkeypatch):
    prefix = f"r{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    _ingest(chdb_store, [_petition(prefix, "k1", "2024-01-10")], [])
    stamp = "SELECT argMax(value, set_at) FROM projection_settings WHERE name = 'daily.tree'"
    rebuilds = []
    rebuild = DailyFolds.rebuild_live
    monkeypatch.setattr(DailyFolds, "rebuild_live", lambda self, tree: rebuilds.append(tree) or rebuild(self, tree))
    township = {"event_id": str(uuid.uuid4()), "type": "unit_registered", "unit_id": prefix + "k1",
                "subject_id": prefix + "t1", "occurred_at": "2024-02-01T09:00:00+08:00",
                "payload": {"name": "t1", "level": "township", "parent_id": prefix + "k1",
                            "effective_from": "2024-02-01"}}
    _ingest(chdb_store, [township], [])
    service = IndicatorService(chdb_store, HierarchySource(chdb_store))
    assert chdb_store.scalar(stamp) == service.trees.tree_id(service.hierarchy.at())
    assert rebuilds == []  # stamped for the new hierarchy, not rebuilt
    _ingest(chdb_store, [_petition(prefix, "t1", "2024-02-03")], [])
    assert _petitions(service, prefix + "k1", group_by="child") == {prefix + "k1": 1, prefix + "t1": 1}
    assert_live_equals_recomputed(chdb_store, prefix)


def test_upgrading_to_hashed_person_keys_rebuilds_daily_with_the_same_figures(chdb_store):
    """Migration 0010 drops `daily` (its person ids become 64-bit hashes) and clears its stamp:
    meanwhile the API answers from `facts`; the worker's next start rebuilds it from the ledger,
    with the same figures (the persons' counts included)."""
    prefix = f"h{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    sanctions = [{"event_id": str(uuid.uuid4()), "type": "sanction_imposed", "unit_id": prefix + ("k1", "c1")[i % 2],
                  "subject_id": f"s{i}", "occurred_at": f"2024-01-{5 + i:02d}T10:00:00+08:00",
                  "payload": {"person_id": f"m{i % 3}", "kind": ("party", "government")[i % 2], "rank": "county"}}
                 for i in range(6)]
    _ingest(chdb_store, [*sanctions, _petition(prefix, "k1", "2024-01-09")], [3])
    before = _rows(IndicatorService(chdb_store, HierarchySource(chdb_store)), prefix + "p", group_by="child")
    assert before[prefix + "c1"]["sanctions.persons"] == 3 and before[prefix + "c1"]["sanctions.government"] == 3

    chdb_store.command("DELETE FROM schema_migrations WHERE name = '0010_daily_person_key.sql'")
    assert chdb_store.migrate() == ["0010_daily_person_key.sql"]
    assert chdb_store.scalar("SELECT count() FROM daily") == 0
    upgraded = IndicatorService(chdb_store, HierarchySource(chdb_store))
    assert not upgraded._folds_current(upgraded.hierarchy.at())  # not the empty table: `facts`
    assert _rows(upgraded, prefix + "p", group_by="child") == before

    Ingestor(ClickHouseLedger(chdb_store)).load()  # a worker's start: catch-up rebuilds `daily`
    restarted = IndicatorService(chdb_store, HierarchySource(chdb_store))
    assert restarted._folds_current(restarted.hierarchy.at())
    assert chdb_store.scalar("SELECT uniqExact(person_key) FROM daily WHERE unit_id = {u:String} "
                             "AND person_type = 'sanction_imposed'", {"u": prefix + "p"}) == 3
    assert _rows(restarted, prefix + "p", group_by="child") == before
    assert_live_equals_recomputed(chdb_store, prefix)


def test_upgrading_to_coarse_rows_rebuilds_both_folds_with_the_same_figures(chdb_store):
    """Migration 0011 adds monthly and all-time rows to `daily` and `items` (and puts `day`
    before `scope_key` in their keys): a store folded before it lacks them, so it drops both
    tables and clears their stamps; the API answers from `facts` until the worker's next start
    rebuilds both tables, with the same figures."""
    prefix = f"m{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    events = [{"event_id": str(uuid.uuid4()), "type": "sanction_imposed", "unit_id": prefix + ("k1", "c1")[i % 2],
               "subject_id": f"s{i}", "occurred_at": f"2024-0{1 + i % 3}-{5 + i:02d}T10:00:00+08:00",
               "payload": {"person_id": f"m{i % 3}", "kind": "party", "rank": "county"}} for i in range(6)]
    events += [{"event_id": str(uuid.uuid4()), "type": "rectification_opened", "unit_id": prefix + "k2",
                "subject_id": f"r{i}", "occurred_at": f"2024-02-0{1 + i}T10:00:00+08:00",
                "payload": {"source": "audit", "responsible": "甲", "due_date": "2024-03-15"}} for i in range(2)]
    for i, closed in enumerate(("2024-02-10", "2024-02-11")):  # on its due date (on time), a day late
        events += [{"event_id": str(uuid.uuid4()), "type": "suggestion_issued", "unit_id": prefix + "k1",
                    "subject_id": f"g{i}", "occurred_at": "2024-01-10T10:00:00+08:00",
                    "payload": {"kind": "discipline", "target_unit": "某局", "due_date": "2024-02-10"}},
                   {"event_id": str(uuid.uuid4()), "type": "suggestion_closed", "unit_id": prefix + "k1",
                    "subject_id": f"g{i}", "occurred_at": f"{closed}T10:00:00+08:00", "payload": {}}]
    _ingest(chdb_store, [*events, _petition(prefix, "k1", "2024-01-09")], [3])
    service = IndicatorService(chdb_store, HierarchySource(chdb_store))
    shapes = ({}, {"group_by": "child"}, {"from_": dt.date(2024, 1, 20), "to": dt.date(2024, 4, 1)})
    before = [_rows(service, prefix + "p", **shape) for shape in shapes]
    figures = before[0][prefix + "p"]
    assert figures["sanctions.persons"] == 3 and figures["rectification.overdue"] == 2
    assert figures["suggestions.due"] == 2 and figures["suggestions.closed_on_time"] == 1
    def coarse(table: str) -> int:
        return chdb_store.scalar(f"SELECT count() FROM {table} WHERE unit_id = {{u:String}} AND family IN "
                                 "('child:month', 'level:month', 'child:all', 'unit:all')", {"u": prefix + "p"})
    for table in ("daily", "items"):  # the store as folded before 0011
        chdb_store.command(f"ALTER TABLE {table} DELETE WHERE position(family, ':') > 0", settings={"mutations_sync": 2})
    assert coarse("daily") == 0

    chdb_store.command("DELETE FROM schema_migrations WHERE name = '0011_coarse_rows.sql'")
    assert chdb_store.migrate() == ["0011_coarse_rows.sql"]
    assert chdb_store.scalar("SELECT sorting_key FROM system.tables WHERE database = currentDatabase() "
                             "AND name = 'daily'").startswith("unit_id, family, person_type, day, scope_key")
    upgraded = IndicatorService(chdb_store, HierarchySource(chdb_store))
    assert not upgraded._folds_current(upgraded.hierarchy.at())  # not the folds without coarse rows: `facts`
    assert [_rows(upgraded, prefix + "p", **shape) for shape in shapes] == before

    Ingestor(ClickHouseLedger(chdb_store)).load()  # a worker's start: catch-up rebuilds both
    restarted = IndicatorService(chdb_store, HierarchySource(chdb_store))
    assert restarted._folds_current(restarted.hierarchy.at())
    for table in ("daily", "items"):
        assert coarse(table) > 0, table
    assert [_rows(restarted, prefix + "p", **shape) for shape in shapes] == before
    assert_live_equals_recomputed(chdb_store, prefix)


def _active_parts(store: ClickHouseStore, table: str) -> tuple[int, int]:
    return store.rows("SELECT count(), sum(rows) FROM system.parts "
                      "WHERE database = currentDatabase() AND table = {t:String} AND active", {"t": table})[0]


def test_a_fold_of_any_size_is_written_as_one_part(chdb_store):
    """A fold's rows and its watermarks must land together. ClickHouse writes a block as one
    part, atomically; FOLD_SETTINGS squash all of a fold's rows into one block (a rebuild's
    200k-row blocks would give several parts: a kill between them would half-apply a fold)."""
    chdb_store.command("CREATE TABLE fold_parts AS daily")
    try:
        chdb_store.command("SYSTEM STOP MERGES fold_parts")
        written = {}
        for name, settings in (("fold", FOLD_SETTINGS), ("rebuild", INSERT_SETTINGS)):
            chdb_store.command("TRUNCATE TABLE fold_parts")
            chdb_store.command(
                "INSERT INTO fold_parts (unit_id, person_key, upto_seq, n, pn) "
                "SELECT 'u', number, 1, (['x'], [1]), 1 FROM numbers(3000000)",
                settings=settings | {"max_block_size": 1000, "max_threads": 2})
            written[name] = _active_parts(chdb_store, "fold_parts")
        assert written["fold"] == (1, 3_000_000)
        assert written["rebuild"][0] > 1 and written["rebuild"][1] == 3_000_000
    finally:
        chdb_store.command("DROP TABLE fold_parts")

    # And a live fold of a batch is one insert per table: one new part each.
    prefix = f"o{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    events = [{"event_id": str(uuid.uuid4()), "type": "sanction_imposed", "unit_id": prefix + unit,
               "subject_id": f"s{i}", "occurred_at": f"2024-01-{1 + i % 28:02d}T10:00:00+08:00",
               "payload": {"person_id": f"m{i}", "kind": "party", "rank": "county"}}
              for i, unit in enumerate(UNITS * 400)]
    events += [{"event_id": str(uuid.uuid4()), "type": "task_assigned", "unit_id": prefix + "c1",
                "subject_id": f"t{i}", "occurred_at": "2024-01-05T10:00:00+08:00",
                "payload": {"title": "台账", "responsible_leader": "乙", "standard": "按期",
                            "assignee_unit": prefix + "k1", "due_date": "2024-03-15"}}
               for i in range(50)]
    for table in ("daily", "items"):
        chdb_store.command(f"SYSTEM STOP MERGES {table}")
    try:
        # A merge already running when merges were stopped may still land: count after it.
        deadline = time.monotonic() + 60
        while chdb_store.scalar("SELECT count() FROM system.merges WHERE database = currentDatabase() "
                                "AND table IN ('daily', 'items')") and time.monotonic() < deadline:
            time.sleep(0.05)
        before = [_active_parts(chdb_store, t)[0] for t in ("daily", "items")]
        _ingest(chdb_store, events, [])
        assert [_active_parts(chdb_store, t)[0] for t in ("daily", "items")] == [n + 1 for n in before]
    finally:
        for table in ("daily", "items"):
            chdb_store.command(f"SYSTEM START MERGES {table}")
    assert_live_equals_recomputed(chdb_store, prefix)


def test_a_person_retracted_in_a_later_part_is_not_counted(chdb_store):
    """The live person counts read `daily` without FINAL when every row read is positive. A
    retraction folded into a part of its own leaves the person's +1 and -1 rows unmerged (merges
    stopped here): the count must still drop, and a person kept by another fact must stay."""
    prefix = f"r{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    sanctions = [{"event_id": str(uuid.uuid4()), "type": "sanction_imposed", "unit_id": prefix + "k1",
                  "subject_id": f"s{i}", "occurred_at": "2024-01-05T10:00:00+08:00",
                  "payload": {"person_id": person, "kind": "party", "rank": "county"}}
                 for i, person in enumerate(["m1", "m2", "m2"])]
    _ingest(chdb_store, sanctions, [])
    service = IndicatorService(chdb_store, HierarchySource(chdb_store))
    assert _rows(service, prefix + "p")[prefix + "p"]["sanctions.persons"] == 2
    retract = _changed(sanctions[:2], None, "2024-02-01")
    chdb_store.command("SYSTEM STOP MERGES daily")
    try:
        _ingest(chdb_store, retract, [])
        assert chdb_store.scalar(f"SELECT count() FROM daily WHERE unit_id = '{prefix}p' AND pn < 0") > 0
        live = _rows(service, prefix + "p")[prefix + "p"]
        assert live["sanctions.persons"] == 1  # m1 is gone; m2 still has one sanction
        assert live["sanctions.party"] == 1
    finally:
        chdb_store.command("SYSTEM START MERGES daily")
    assert_live_equals_recomputed(chdb_store, prefix)


def _changed(raws: list[dict], payload: dict | None, day: str) -> list[dict]:
    """A correction of each of `raws` to `payload`, or with None a retraction, recorded on `day`."""
    def change(raw: dict) -> dict:
        event_type, body = (("event_corrected", {"corrects": raw["event_id"], "payload": payload})
                            if payload is not None else
                            ("event_retracted", {"retracts": raw["event_id"], "reason": "录入错误"}))
        return {"event_id": str(uuid.uuid4()), "type": event_type, "unit_id": raw["unit_id"],
                "subject_id": raw["subject_id"], "occurred_at": f"{day}T10:00:00+08:00", "payload": body}
    return [change(raw) for raw in raws]


def _item_events(prefix: str, i: int, unit: str, day: str) -> list[dict]:
    """A task assigned to the next unit and reported on there, a clue disposed (one of five,
    disposed again and again), a suggestion: items whose state spans events and units."""
    other = UNITS[(UNITS.index(unit) + 1) % len(UNITS)]

    def raw(event_type: str, by: str, subject: str, payload: dict) -> dict:
        return {"event_id": str(uuid.uuid4()), "type": event_type, "unit_id": prefix + by, "subject_id": subject,
                "occurred_at": f"{day}T10:00:00+08:00", "payload": payload}

    task = {"title": "台账", "responsible_leader": "乙", "standard": "按期", "assignee_unit": prefix + other,
            "due_date": "2024-03-15"}
    return [raw("task_assigned", unit, f"task{i}", task),
            raw("task_progress_reported", other, f"task{i}", {"percent": 12.5 * (i % 8)}),
            *([raw("task_completed", other, f"task{i}", {})] if i % 3 == 0 else []),
            raw("clue_disposed", unit, f"clue{i % 5}", {"method": ("shelved", "talk_inquiry", "concluded")[i % 3]}),
            raw("suggestion_issued", unit, f"suggestion{i}",
                {"kind": "discipline", "target_unit": "某局", "due_date": "2024-03-15"})]


def test_a_rebuild_in_slices_gives_the_same_folds(chdb_store, monkeypatch):
    """Large ledgers rebuild `daily` in slices of local days and `items` in slices of subjects
    (bounded memory), from the facts resolved once or by each slice (the largest ledgers): the
    slices together must be the one-pass rebuild and the live folds."""
    prefix = f"l{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    days = [f"2024-0{1 + i % 9}-{1 + i % 28:02d}" for i in range(len(UNITS) * 30)]
    petitions = [_petition(prefix, unit, day) for unit, day in zip(UNITS * 30, days, strict=True)]
    _ingest(chdb_store, petitions, [37, 80])
    items = [e for i, (unit, day) in enumerate(zip(UNITS * 8, days, strict=False))
             for e in _item_events(prefix, i, unit, day)]
    _ingest(chdb_store, items, [23, 61])
    # Corrections and retractions recorded on other days than their facts (in other slices of
    # days): a slice takes a corrected fact by its own day, not by its correction's.
    suggestions = [e for e in items if e["type"] == "suggestion_issued"]
    _ingest(chdb_store, [*_changed(petitions[::7], {"channel": "visit", "category": "criticism"}, "2024-06-01"),
                         *_changed(suggestions[::3], {"kind": "discipline", "target_unit": "某局",
                                                      "due_date": "2024-09-30"}, "2024-06-02"),
                         *_changed(petitions[5::11] + suggestions[1::4], None, "2024-07-02")], [9])
    assert chdb_store.scalar("SELECT countIf(op = 1) * countIf(op = 2) FROM facts WHERE startsWith(unit_id, {p:String})",
                             {"p": prefix}) > 0
    live = [checksum(chdb_store, table) for table in ("facts", "daily", "items")]
    for name in ("SLICE_FACTS", "COARSE_FACTS"):  # daily rows, then coarse rows: one pass each
        monkeypatch.setattr(folds_module, name, 10**12)
    whole = replay(chdb_store, into=f"whole_{uuid.uuid4().hex[:6]}")
    for name in ("SLICE_FACTS", "COARSE_FACTS"):  # as many slices as each table allows
        monkeypatch.setattr(folds_module, name, 1)
    monkeypatch.setattr(replay_module, "BUCKET_ROWS", 1)  # `facts` in ranges of units too
    slices = unit_slices(chdb_store, replay_module.MAX_BUCKETS)
    in_slice = [chdb_store.scalar(f"SELECT count() FROM ledger WHERE {units}", params) for units, params in slices]
    assert len(slices) > 1 and all(in_slice)  # at most one slice per unit: fewer than 16 here
    assert sum(in_slice) == chdb_store.scalar("SELECT count() FROM ledger")
    sliced = replay(chdb_store, into=f"sliced_{uuid.uuid4().hex[:6]}")
    monkeypatch.setattr(folds_module, "LARGE_LEDGER", 0)  # each slice resolves the facts itself
    large = replay(chdb_store, into=f"large_{uuid.uuid4().hex[:6]}")
    assert DailyFolds.rebuild_slices > 1 and ItemFolds.rebuild_slices > 1
    assert all(most > 1 for folds in (DailyFolds, ItemFolds) for _, most in folds(chdb_store).coarse_passes("t"))
    for table, live_sum in zip(("facts", "daily", "items"), live, strict=True):
        rebuilt = [sums[next(k for k in sums if k.endswith(f"_{table}"))] for sums in (whole, sliced, large)]
        assert rebuilt[0] == rebuilt[1] == rebuilt[2] == live_sum, table
    for target in sliced:  # handed over merged (the API reads a replayed table next): one part
        assert not chdb_store.rows("EXISTS TABLE {t:Identifier}", {"t": f"{target}_resolved"})[0][0], target
        if target.endswith(("_daily", "_items")):
            assert chdb_store.scalar("SELECT count() FROM system.parts WHERE active AND database = currentDatabase() "
                                     "AND table = {t:String}", {"t": target}) == 1, target
    for target in (*whole, *sliced, *large):
        chdb_store.command(f"DROP TABLE IF EXISTS {target}")


def test_warm_up_asks_one_live_request_of_each_kind_and_none_while_the_folds_are_behind(chdb_store, monkeypatch):
    _ingest(chdb_store, _province(f"w{uuid.uuid4().hex[:8]}."), [])
    service = IndicatorService(chdb_store, HierarchySource(chdb_store))
    asked = []
    compute = service.compute
    monkeypatch.setattr(service, "compute", lambda q, tree=None: asked.append(q) or compute(q, tree))
    service.warm()
    assert sorted(q.group_by for q in asked) == ["child", "month", "none", "none"]
    assert sum(q.from_ is not None for q in asked) == 1

    behind = IndicatorService(chdb_store, HierarchySource(chdb_store))
    monkeypatch.setattr(behind, "_folds_current", lambda tree: False)
    monkeypatch.setattr(behind, "compute", lambda *args: pytest.fail("warmed through the slow facts path"))
    behind.warm()


def test_a_warmed_service_answers_its_first_request_without_building_the_hierarchy(chdb_store, monkeypatch):
    prefix = f"h{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, _province(prefix), [])
    service = IndicatorService(chdb_store, HierarchySource(chdb_store))
    service.warm()
    assert service.side.free.qsize() == 2  # a live request's two side clients are open

    def build(*args):
        raise AssertionError("the first request built the hierarchy again")

    monkeypatch.setattr(service.hierarchy, "_build", build)
    assert _rows(service, prefix + "p")[prefix + "p"]["petitions.received"] == 0
