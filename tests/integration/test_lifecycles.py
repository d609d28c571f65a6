"""Lifecycle indicators on real chDB: latest disposition, on-time closure, overdue, progress."""

from __future__ import annotations

import datetime as dt
import uuid

from domain.records import encode_record
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorQuery, IndicatorService
from projections.ledger import ClickHouseLedger
from streams.ingest import Delivery, Ingestor


class World:
    def __init__(self, store):
        self.store, self.prefix = store, f"l{uuid.uuid4().hex[:8]}."
        self.ingestor = Ingestor(ClickHouseLedger(store))
        self.ingestor.load()
        self.svc = IndicatorService(store, HierarchySource(store))
        self.add("unit_registered", "p", "p", {"name": "P", "level": "province", "effective_from": "2020-01-01"})
        self.add("unit_registered", "p", "k", {"name": "K", "level": "county", "parent_id": self.prefix + "p",
                                               "effective_from": "2020-01-01"})

    def add(self, event_type, unit, subject, payload, day="2024-03-01") -> str:
        event_id = str(uuid.uuid4())
        raw = {"event_id": event_id, "type": event_type, "unit_id": self.prefix + unit,
               "subject_id": self.prefix + subject, "occurred_at": f"{day}T10:00:00+08:00", "payload": payload}
        outcome = self.ingestor.handle([Delivery(encode_record(str(uuid.uuid4()), "t", [raw]))])
        assert outcome.stored == 1, outcome.rejected
        return event_id

    def figures(self, **kw):
        return self.svc.compute(IndicatorQuery(self.prefix + "p", **kw))["rows"][0]["indicators"]


def test_latest_disposition_per_clue_after_corrections_counts_once(chdb_store):
    w = World(chdb_store)
    w.add("clue_disposed", "k", "c1", {"method": "shelved"}, "2024-02-01")
    later = w.add("clue_disposed", "k", "c1", {"method": "talk_inquiry"}, "2024-05-01")
    w.add("clue_disposed", "k", "c2", {"method": "concluded"}, "2024-03-01")
    f = w.figures()
    assert (f["clues.disposed"], f["clues.disposed.talk_inquiry"], f["clues.disposed.shelved"]) == (2, 1, 0)
    w.add("event_corrected", "k", "c1", {"corrects": later, "payload": {"method": "preliminary_verification"}})
    f = w.figures()
    assert (f["clues.disposed"], f["clues.disposed.talk_inquiry"], f["clues.disposed.preliminary_verification"]) == (2, 0, 1)


def test_suggestions_closed_on_or_before_due_date_are_on_time(chdb_store):
    w = World(chdb_store)
    for name, due, closed in (("s1", "2024-04-30", "2024-04-30"), ("s2", "2024-04-30", "2024-05-02"),
                              ("s3", "2024-05-15", None), ("s4", "2024-08-01", "2024-04-01")):
        w.add("suggestion_issued", "k", name, {"kind": "discipline", "target_unit": "某局", "due_date": due}, "2024-03-01")
        if closed:
            w.add("suggestion_closed", "k", name, {}, closed)
    f = w.figures(from_=dt.date(2024, 4, 1), to=dt.date(2024, 7, 1))
    assert (f["suggestions.due"], f["suggestions.closed_on_time"], f["suggestions.on_time_rate"]) == (3, 1, 33.3)
    assert w.figures(from_=dt.date(2024, 3, 1), to=dt.date(2024, 4, 1))["suggestions.issued"] == 4


def test_rectification_open_past_due_at_as_of_is_overdue(chdb_store):
    w = World(chdb_store)
    w.add("rectification_opened", "k", "r1", {"source": "audit", "responsible": "甲", "due_date": "2024-04-01"})
    w.add("rectification_opened", "k", "r2", {"source": "audit", "responsible": "乙", "due_date": "2024-04-01"})
    w.add("rectification_opened", "k", "r3", {"source": "audit", "responsible": "丙", "due_date": "2099-01-01"})
    w.add("rectification_closed", "k", "r1", {}, "2024-03-20")
    f = w.figures()
    assert (f["rectification.opened"], f["rectification.closed"], f["rectification.overdue"],
            f["rectification.completion_rate"]) == (3, 1, 1, 33.3)


def test_task_progress_is_latest_percent_and_100_once_completed(chdb_store):
    w = World(chdb_store)
    for t in ("t1", "t2", "t3"):
        w.add("task_assigned", "p", t, {"title": "专项监督", "responsible_leader": "张", "assignee_unit": w.prefix + "k",
                                        "due_date": "2024-06-30", "standard": "按期完成"}, "2024-02-01")
    w.add("task_progress_reported", "k", "t1", {"percent": 80}, "2024-03-01")
    w.add("task_progress_reported", "k", "t1", {"percent": 30}, "2024-02-15")  # older report, recorded later
    w.add("task_progress_reported", "k", "t2", {"percent": 50}, "2024-03-01")
    w.add("task_completed", "k", "t2", {}, "2024-04-01")
    f = w.svc.compute(IndicatorQuery(w.prefix + "k"))["rows"][0]["indicators"]
    assert (f["tasks.assigned"], f["tasks.completed"], f["tasks.overdue"], f["tasks.completion_rate"],
            f["tasks.avg_progress"]) == (3, 1, 2, 33.3, 60.0)


def test_distinct_persons_count_once_across_kinds_and_units(chdb_store):
    w = World(chdb_store)
    w.add("sanction_imposed", "k", "x1", {"person_id": "zhang", "kind": "party", "rank": "county"})
    w.add("sanction_imposed", "p", "x2", {"person_id": "zhang", "kind": "government", "rank": "county"})
    w.add("sanction_imposed", "k", "x3", {"person_id": "li", "kind": "party", "rank": "general"})
    f = w.figures()
    assert (f["sanctions.persons"], f["sanctions.party"], f["sanctions.government"], f["sanctions.county"]) == (2, 2, 1, 1)


def test_as_of_shows_what_was_known_then_even_after_a_retraction(chdb_store):
    w = World(chdb_store)
    first = w.add("petition_received", "k", "a", {"channel": "letter", "category": "accusation"})
    cutoff = dt.datetime.now(dt.UTC)
    w.add("petition_received", "k", "b", {"channel": "letter", "category": "appeal"})
    w.add("event_retracted", "k", "a", {"retracts": first, "reason": "重复"})
    assert w.figures()["petitions.received"] == 1
    then = w.figures(as_of=cutoff)
    assert (then["petitions.received"], then["petitions.accusation"]) == (1, 1)
