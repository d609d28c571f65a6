"""A batch written while the one before it is projected (the worker overlaps the two, see
`streams.ingest`), on real chDB: every event is folded once, whatever lands in between —
another batch's ledger rows, a failed projection, a replay."""

from __future__ import annotations

import threading
import uuid

import pytest

from domain.records import encode_record
from projections.ledger import ClickHouseLedger
from projections.replay import replay
from streams.ingest import Delivery, Ingestor
from tests.integration.test_daily import _ingest, _raw_events, assert_live_equals_recomputed
from tests.integration.test_indicator_properties import _province

HISTORY = (  # originals (unit, type, payload, day, subject), then corrections and retractions
    [("k1", "sanction_imposed", {"person_id": "p", "kind": "party", "rank": "county"}, 3, "s0"),
     ("k1", "petition_received", {"channel": "letter", "category": "accusation"}, 5, "s1"),
     ("k2", "task_assigned", {"title": "台账", "responsible_leader": "乙", "standard": "按期",
                              "assignee_unit": "@k1", "due_date": "2024-03-15"}, 6, "task0"),
     ("k1", "task_progress_reported", {"percent": 40}, 9, "task0"),
     ("c1", "clue_disposed", {"method": "talk_inquiry"}, 11, "clue0"),
     ("k2", "sanction_imposed", {"person_id": "q", "kind": "government", "rank": "general"}, 20, "s2")],
    [("correct", 0, {"person_id": "r", "kind": "government", "rank": "bureau"}), ("retract", 1, None),
     ("correct", 4, {"method": "concluded"})],
    [],
)


def _batches(prefix: str) -> list[Delivery]:
    raws = _raw_events(prefix, HISTORY)
    # Originals first, their corrections in the next batch: the second batch's folds read
    # what the first one's wrote.
    return [Delivery(encode_record(str(uuid.uuid4()), "test", part))
            for part in (raws[:4], raws[4:6], raws[6:])]


def _province_ingestor(store, prefix: str) -> Ingestor:
    _ingest(store, _province(prefix), [])
    ingestor = Ingestor(ClickHouseLedger(store))
    ingestor.load()
    return ingestor


def _facts_and_ledger(store, prefix: str) -> tuple[int, int]:
    like = {"p": prefix + "%"}
    return (store.scalar("SELECT count() FROM facts WHERE unit_id LIKE {p:String}", like),
            store.scalar("SELECT count() FROM ledger WHERE unit_id LIKE {p:String}", like))


def _project_with_an_append_midway(ingestor: Ingestor, monkeypatch, batch: Delivery) -> None:
    """Project what `ingestor` has written, with `batch` written after `facts` got the rows
    and before the folds run (the worst moment: the folds read `facts`, the ledger is ahead).
    A projection's first step after `facts` is settling `items` for the hierarchy."""
    items_fold = ingestor.ledger.items.settle
    midway, appended = threading.Event(), threading.Event()

    def fold_after_the_next_append(*args, **kwargs):
        midway.set()
        appended.wait(30)
        return items_fold(*args, **kwargs)

    monkeypatch.setattr(ingestor.ledger.items, "settle", fold_after_the_next_append)
    projecting = threading.Thread(target=ingestor.project)
    projecting.start()
    assert midway.wait(30)
    ingestor.write([batch])
    appended.set()
    projecting.join(30)
    assert not projecting.is_alive()
    monkeypatch.setattr(ingestor.ledger.items, "settle", items_fold)


def test_a_batch_appended_in_the_middle_of_a_projection_is_folded_once_by_the_next(chdb_store, monkeypatch):
    prefix = f"o{uuid.uuid4().hex[:8]}."
    ingestor = _province_ingestor(chdb_store, prefix)
    first, second, third = _batches(prefix)
    ingestor.write([first])
    _project_with_an_append_midway(ingestor, monkeypatch, second)
    facts, ledger = _facts_and_ledger(chdb_store, prefix)
    assert facts == ledger - 2  # the second batch waits for its own projection
    ingestor.project()
    ingestor.handle([third])
    assert _facts_and_ledger(chdb_store, prefix) == (ledger + 3, ledger + 3)
    assert_live_equals_recomputed(chdb_store, prefix)
    Ingestor(ClickHouseLedger(chdb_store)).load()  # a restart finds nothing left to fold
    assert _facts_and_ledger(chdb_store, prefix) == (ledger + 3, ledger + 3)
    assert_live_equals_recomputed(chdb_store, prefix)


def test_a_rebuild_during_the_overlap_marks_only_what_it_folded(chdb_store, monkeypatch):
    """A move rebuilds the folds inside a projection; the next batch, already in the ledger,
    must stay unfolded in their watermarks, or a restart's catch-up would skip it."""
    prefix = f"w{uuid.uuid4().hex[:8]}."
    ingestor = _province_ingestor(chdb_store, prefix)
    first, second, _ = _batches(prefix)
    ingestor.handle([first])
    move = {"event_id": str(uuid.uuid4()), "type": "unit_moved", "unit_id": prefix + "k1",
            "subject_id": prefix + "k1", "occurred_at": "2024-01-20T09:00:00+08:00",
            "payload": {"parent_id": prefix + "c2", "effective_from": "2024-01-08"}}
    rebuilds = []
    rebuild = ingestor.ledger.daily.rebuild_live
    monkeypatch.setattr(ingestor.ledger.daily, "rebuild_live", lambda tree: rebuilds.append(tree) or rebuild(tree))
    ingestor.write([Delivery(encode_record(str(uuid.uuid4()), "test", [move]))])
    _project_with_an_append_midway(ingestor, monkeypatch, second)
    assert len(rebuilds) == 1  # the move was folded by rebuilding
    # The worker dies before projecting `second`; the next one catches up from the ledger.
    Ingestor(ClickHouseLedger(chdb_store)).load()
    facts, ledger = _facts_and_ledger(chdb_store, prefix)
    assert facts == ledger
    assert_live_equals_recomputed(chdb_store, prefix)


def test_a_projection_that_failed_midway_is_caught_up_by_the_next_one(chdb_store, monkeypatch):
    prefix = f"f{uuid.uuid4().hex[:8]}."
    ingestor = _province_ingestor(chdb_store, prefix)
    first, second, third = _batches(prefix)
    ingestor.handle([first])

    def die(*args, **kwargs):
        raise RuntimeError("store went away after facts, beside the items fold")

    monkeypatch.setattr(ingestor.ledger.daily, "fold", die)
    ingestor.write([second])
    with pytest.raises(RuntimeError):
        ingestor.project()
    monkeypatch.undo()
    ingestor.write([third])  # written while the failed projection waits for its retry
    ingestor.project()  # the retry: a catch-up from the ledger, both batches, each once
    facts, ledger = _facts_and_ledger(chdb_store, prefix)
    assert facts == ledger
    assert_live_equals_recomputed(chdb_store, prefix)


def test_a_replay_projects_what_is_pending_before_it_rebuilds(chdb_store):
    prefix = f"r{uuid.uuid4().hex[:8]}."
    ingestor = _province_ingestor(chdb_store, prefix)
    first, second, _ = _batches(prefix)
    ingestor.handle([first])
    ingestor.write([second])  # in the ledger, not yet projected, when the replay starts
    with chdb_store.exclusive():  # as the API's replay runs: the worker is paused
        facts, ledger = _facts_and_ledger(chdb_store, prefix)
        assert facts == ledger  # the pending rows were projected before the pause
        replay(chdb_store)
    ingestor.project()  # nothing is left pending: the replay's facts are not added to again
    assert _facts_and_ledger(chdb_store, prefix) == (ledger, ledger)
    assert_live_equals_recomputed(chdb_store, prefix)
