"""Properties of the rollups, on real chDB: additivity, moves by effective date, shares."""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.indicators import ADDITIVE_IDS
from domain.records import encode_record
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorQuery, IndicatorService
from projections.ledger import ClickHouseLedger
from streams.ingest import Delivery, Ingestor

LEAVES = ("c1", "c2", "k1", "k2", "g1", "p")
EVENT_KINDS = st.sampled_from([
    ("petition_received", {"channel": "letter", "category": "accusation"}),
    ("clue_registered", {"source": "audit", "subject_rank": "township"}),
    ("clue_disposed", {"method": "shelved"}),
    ("case_filed", {"subject_rank": "general"}),
    ("four_forms_applied", {"person_id": "x", "form": 2}),
    ("talk_conducted", {"kind": "reminder", "person_id": "y"}),
    ("rectification_opened", {"source": "audit", "responsible": "r", "due_date": "2024-06-01"}),
])
EVENTS = st.lists(st.tuples(st.sampled_from(LEAVES), EVENT_KINDS, st.integers(0, 364)),
                  min_size=1, max_size=25)


def _ingest(store, prefix: str, raws: list[dict]) -> None:
    ingestor = Ingestor(ClickHouseLedger(store))
    ingestor.load()
    ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "test", raws))])


def _province(prefix: str) -> list[dict]:
    def reg(uid, level, parent):
        return {"event_id": str(uuid.uuid4()), "type": "unit_registered", "unit_id": prefix + (parent or uid),
                "subject_id": prefix + uid, "occurred_at": "2020-01-01T00:00:00+08:00",
                "payload": {"name": uid, "level": level, "effective_from": "2020-01-01",
                            **({"parent_id": prefix + parent} if parent else {})}}
    return [reg("p", "province", None), reg("c1", "city", "p"), reg("c2", "city", "p"),
            reg("k1", "county", "c1"), reg("k2", "county", "c2"), reg("g1", "stationed_group", "p")]


def _events(prefix: str, drawn) -> list[dict]:
    start = dt.date(2024, 1, 1)
    return [{"event_id": str(uuid.uuid4()), "type": t, "unit_id": prefix + unit,
             "subject_id": f"s{i}", "occurred_at": f"{start + dt.timedelta(days=day)}T10:00:00+08:00",
             "payload": payload} for i, (unit, (t, payload), day) in enumerate(drawn)]


def _service(store) -> IndicatorService:
    return IndicatorService(store, HierarchySource(store))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=EVENTS)
def test_subtree_figure_is_own_plus_children(chdb_store, drawn):
    prefix = f"a{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, prefix, _province(prefix))
    _ingest(chdb_store, prefix, _events(prefix, drawn))
    svc = _service(chdb_store)
    root = prefix + "p"
    total = svc.compute(IndicatorQuery(root))["rows"][0]["indicators"]
    rows = {r["key"]: r["indicators"] for r in svc.compute(IndicatorQuery(root, group_by="child"))["rows"]}
    own = svc.compute(IndicatorQuery(root, scope="self"))["rows"][0]["indicators"]
    assert set(rows) == {root, prefix + "c1", prefix + "c2", prefix + "g1"}
    for name in ADDITIVE_IDS:
        assert total[name] == sum(r[name] for r in rows.values()), name
        assert rows[root][name] == own[name], name
    for child in ("c1", "c2"):
        child_total = svc.compute(IndicatorQuery(prefix + child))["rows"][0]["indicators"]
        assert all(child_total[n] == rows[prefix + child][n] for n in ADDITIVE_IDS)
    assert total["petitions.received"] == sum(1 for _, (t, _p), _d in drawn if t == "petition_received")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=EVENTS, move_day=st.integers(1, 364))
def test_moving_a_unit_changes_rollups_only_from_effective_from(chdb_store, drawn, move_day):
    prefix = f"m{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, prefix, _province(prefix))
    _ingest(chdb_store, prefix, _events(prefix, drawn))
    svc = _service(chdb_store)
    moved_on = dt.date(2024, 1, 1) + dt.timedelta(days=move_day)
    periods = {"before": (None, moved_on), "after": (moved_on, None)}

    def figures(unit):
        return {name: svc.compute(IndicatorQuery(prefix + unit, from_=lo, to=hi))["rows"][0]["indicators"]
                for name, (lo, hi) in periods.items()}

    c1_then, c2_then, k1 = figures("c1"), figures("c2"), figures("k1")
    _ingest(chdb_store, prefix, [{
        "event_id": str(uuid.uuid4()), "type": "unit_moved", "unit_id": prefix + "p",
        "subject_id": prefix + "k1", "occurred_at": "2025-01-01T00:00:00+08:00",
        "payload": {"parent_id": prefix + "c2", "effective_from": moved_on.isoformat()}}])
    c1_now, c2_now = figures("c1"), figures("c2")
    for name in ADDITIVE_IDS:
        assert c1_now["before"][name] == c1_then["before"][name]
        assert c2_now["before"][name] == c2_then["before"][name]
        assert c1_now["after"][name] == c1_then["after"][name] - k1["after"][name]
        assert c2_now["after"][name] == c2_then["after"][name] + k1["after"][name]
