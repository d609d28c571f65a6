"""Every panel's SQL, macros expanded as Grafana would, runs on real chDB over a demo province."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from dashboards import overview
from dashboards.catalog import DASHBOARDS
from dashboards.macros import Variables, expand
from domain.records import encode_record
from producers.simulate import Workload, build_province
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorQuery, IndicatorService
from projections.ledger import ClickHouseLedger
from projections.store import API_QUERY_SETTINGS
from streams.ingest import Delivery, Ingestor

PANELS = [(d.uid, p) for d in DASHBOARDS for p in d.panels]
# Business time of the workload starts 2025-01-01 (+08:00); due dates run up to 90 days later.
START = dt.datetime(2024, 11, 30, 16, tzinfo=dt.UTC)  # 2024-12-01 00:00 local
END = dt.datetime(2025, 6, 30, 15, 59, 59, tzinfo=dt.UTC)  # 2025-06-30 23:59:59 local


@pytest.fixture(scope="module")
def province(chdb_store) -> str:
    """A whole demo province (own root id and event ids) plus a few thousand events and a reject."""
    root = f"d{uuid.uuid4().hex[:6]}"
    units = build_province(root_id=root)
    ingestor = Ingestor(ClickHouseLedger(chdb_store))
    ingestor.load()
    batches = [units] + [Workload(units, rng=random.Random(root)).next_batch(1500) for _ in range(3)]
    # A case without its rank: rejected into the DLQ with the reason, as a unit would see it.
    batches.append([{"event_id": str(uuid.uuid4()), "type": "case_filed", "unit_id": f"{root}.c01",
                     "subject_id": f"{root}.c01:bad", "occurred_at": "2025-01-02T10:00:00+08:00",
                     "payload": {}}])
    for offset, raws in enumerate(batches):
        ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "test", raws), 0, offset)])
    return root


def run(store, sql: str, unit: str, as_of: str = "") -> list[dict]:
    return store.dicts(expand(sql, Variables(unit, START, END, as_of)), settings=API_QUERY_SETTINGS)


@pytest.mark.parametrize(("uid", "panel"), PANELS, ids=[f"{u}-{p.id}" for u, p in PANELS])
def test_every_panel_returns_rows_for_a_province(chdb_store, province, uid, panel):
    rows = run(chdb_store, panel.sql, province)
    assert rows, f"{uid} panel {panel.id} ({panel.title}) returned nothing"
    if panel.drill:
        assert {"child_id", "单位"} <= set(rows[0]), "drill-down panels carry child_id and 单位"


def test_drill_down_rows_are_children_of_the_selected_unit(chdb_store, province):
    city = f"{province}.c01"
    rows = run(chdb_store, overview.RANKING, city)
    assert rows and all(r["child_id"] == city or r["child_id"].startswith(city + ".") for r in rows)
    assert any(r["单位"].endswith("（本级）") for r in rows)


def test_overview_figures_match_the_indicator_api(chdb_store, province):
    svc = IndicatorService(chdb_store, HierarchySource(chdb_store))
    api = svc.compute(IndicatorQuery(province, from_=dt.date(2024, 12, 1), to=dt.date(2025, 7, 1)))
    figures = api["rows"][0]["indicators"]
    headline = run(chdb_store, overview.HEADLINE, province)[0]
    assert headline == {"受理信访举报": figures["petitions.received"],
                        "受理问题线索": figures["clues.registered"], "立案": figures["cases.filed"],
                        "结案": figures["cases.closed"], "处分人数": figures["sanctions.persons"],
                        "四种形态人次": figures["four_forms.total"]}
    by_child = {r["key"]: r["indicators"] for r in svc.compute(IndicatorQuery(
        province, from_=dt.date(2024, 12, 1), to=dt.date(2025, 7, 1), group_by="child"))["rows"]}
    for row in run(chdb_store, overview.RANKING, province):
        api_row = by_child[row["child_id"]]
        assert (row["监督任务"], row["任务完成率"], row["到期建议"], row["按期办结率"]) == (
            api_row["tasks.assigned"], api_row["tasks.completion_rate"],
            api_row["suggestions.due"], api_row["suggestions.on_time_rate"]), row["child_id"]


def test_as_of_before_the_data_was_recorded_shows_nothing(chdb_store, province):
    headline = run(chdb_store, overview.HEADLINE, province, as_of="2000-01-01 00:00:00")[0]
    assert set(headline.values()) == {0}


def test_panels_follow_the_current_hierarchy_and_as_of_sees_the_old_one(chdb_store):
    p = f"m{uuid.uuid4().hex[:6]}."
    ingestor = Ingestor(ClickHouseLedger(chdb_store))
    ingestor.load()

    def add(event_type, unit, subject, payload, when="2024-03-01T10:00:00+08:00"):
        raw = {"event_id": str(uuid.uuid4()), "type": event_type, "unit_id": p + unit,
               "subject_id": p + subject, "occurred_at": when, "payload": payload}
        assert ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "t", [raw]))]).stored == 1

    def reg(uid, level, parent=None):
        add("unit_registered", parent or uid, uid, {"name": uid, "level": level, "effective_from": "2020-01-01",
                                                    **({"parent_id": p + parent} if parent else {})})

    for uid, level, parent in (("p", "province", None), ("c1", "city", "p"), ("c2", "city", "p"),
                               ("k", "county", "c1")):
        reg(uid, level, parent)
    add("petition_received", "k", "x", {"channel": "letter", "category": "accusation"},
        "2025-01-05T10:00:00+08:00")
    before_move = chdb_store.scalar("SELECT formatDateTime(now64(6), '%Y-%m-%d %H:%i:%S.%f', 'Asia/Shanghai')")
    add("unit_moved", "p", "k", {"parent_id": p + "c2", "effective_from": "2024-06-01"})
    add("unit_moved", "p", "k", {"parent_id": p + "c1", "effective_from": "2099-01-01"})  # not yet

    def petitions(unit, as_of=""):
        return run(chdb_store, overview.HEADLINE, p + unit, as_of)[0]["受理信访举报"]

    assert (petitions("c1"), petitions("c2"), petitions("p")) == (0, 1, 1)
    assert (petitions("c1", before_move), petitions("c2", before_move)) == (1, 0)
