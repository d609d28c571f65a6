"""The ingest fold against every LedgerStore: in memory and real chDB, same tests."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from domain.chain import GENESIS, link_hash
from domain.records import encode_record
from projections.ledger import ClickHouseLedger
from projections.ledger_memory import MemoryLedger
from streams.ingest import Delivery, Ingestor
from tests.harness import event

# The live folds too: they must keep matching the ledger for the tests after these.
TABLES = ("ledger", "facts", "daily", "items", "dlq", "ingested_batches", "tokens")


@pytest.fixture(params=["memory", "clickhouse"])
def ledger(request):
    if request.param == "memory":
        return MemoryLedger()
    store = request.getfixturevalue("chdb_store")
    for table in TABLES:
        store.command(f"TRUNCATE TABLE {table}")
    return ClickHouseLedger(store)


def _delivery(events, batch="b1", offset=0):
    return Delivery(encode_record(batch, "tester", events), 0, offset)


def _rows(ledger):
    if isinstance(ledger, MemoryLedger):
        return ledger.rows
    return ledger.store.dicts("SELECT * FROM ledger ORDER BY unit_id, seq")


def petition(unit="u1", subject="s"):
    return event("petition_received", unit, subject, {"channel": "letter", "category": "accusation"})


def test_duplicate_event_id_is_stored_once(ledger):
    ingestor = Ingestor(ledger)
    ingestor.load()
    first = petition()
    assert ingestor.handle([_delivery([first, petition()])]).stored == 2
    again = ingestor.handle([_delivery([first], offset=1)])
    assert (again.stored, again.duplicates) == (0, 1)
    fresh = Ingestor(ledger)  # a restarted worker learns the same from the ledger
    fresh.load()
    assert fresh.handle([_delivery([first], offset=1)]).duplicates == 1
    assert len(_rows(ledger)) == 2


def test_an_id_sharing_only_its_first_8_bytes_with_a_stored_one_is_not_a_duplicate(ledger):
    """The worker keeps 8-byte prefixes of known ids: a shared prefix must be checked, not trusted."""
    ingestor = Ingestor(ledger)
    ingestor.load()
    first = petition()
    twin = {**petition(), "event_id": str(uuid.UUID(bytes=uuid.UUID(first["event_id"]).bytes[:8] + bytes(8)))}
    assert ingestor.handle([_delivery([first])]).stored == 1
    outcome = ingestor.handle([_delivery([twin, first], offset=1)])
    assert (outcome.stored, outcome.duplicates) == (1, 1)
    restarted = Ingestor(ledger)  # the prefix index rebuilt from the ledger says the same
    restarted.load()
    again = restarted.handle([_delivery([twin, first], offset=2)])
    assert (again.stored, again.duplicates) == (0, 2)
    assert sorted(str(r["event_id"]) for r in _rows(ledger)) == sorted([first["event_id"], twin["event_id"]])


def test_chain_links_every_unit_from_genesis_without_gaps(ledger):
    ingestor = Ingestor(ledger)
    ingestor.load()
    ingestor.handle([_delivery([petition("a"), petition("b"), petition("a")])])
    restarted = Ingestor(ledger)
    restarted.load()
    restarted.handle([_delivery([petition("a")], offset=1)])
    rows = sorted(_rows(ledger), key=lambda r: (r["unit_id"], r["seq"]))
    for unit in ("a", "b"):
        chain = [r for r in rows if r["unit_id"] == unit]
        assert [r["seq"] for r in chain] == list(range(1, len(chain) + 1))
        prev = GENESIS
        for r in chain:
            assert r["prev_hash"] == prev and r["hash"] == link_hash(prev, r)
            prev = r["hash"]


def test_two_writes_at_once_run_one_after_the_other(ledger):
    """A worker started again (`streams.app.Worker`) writes the records the old app was still
    writing, held by a replay: the second write must see the first's events and heads."""
    ingestor = Ingestor(ledger)
    ingestor.load()
    same = _delivery([petition("u1", f"s{i}") for i in range(5)])
    outcomes = []
    with ingestor.paused():
        writers = [threading.Thread(target=lambda: outcomes.append(ingestor.write([same]))) for _ in range(2)]
        for writer in writers:
            writer.start()
            time.sleep(0.3)  # each has read the heads and the known ids, or waits to
    for writer in writers:
        writer.join(30)
    assert sorted((o.stored, o.duplicates) for o in outcomes) == [(0, 5), (5, 0)]
    assert [r["seq"] for r in _rows(ledger)] == [1, 2, 3, 4, 5]


def test_recorded_at_rises_within_each_unit_even_when_the_clock_stands_or_goes_back(ledger):
    import datetime as dt

    times = iter([dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC), dt.datetime(2025, 3, 1, 11, tzinfo=dt.UTC)])
    ingestor = Ingestor(ledger, clock=lambda: next(times))  # one reading a batch
    ingestor.load()
    ingestor.handle([_delivery([petition("a"), petition("b"), petition("a")])])
    ingestor.handle([_delivery([petition("a"), petition("b")], offset=1)])  # the clock went back an hour
    rows = sorted(_rows(ledger), key=lambda r: (r["unit_id"], r["seq"]))
    for unit in ("a", "b"):
        stamps = [r["recorded_at"].replace(tzinfo=dt.UTC) for r in rows if r["unit_id"] == unit]
        assert stamps == sorted(set(stamps)), stamps  # strictly rising
        assert stamps[0] == dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
        for r in (r for r in rows if r["unit_id"] == unit):  # and the chain covers the stamps given
            assert r["hash"] == link_hash(r["prev_hash"], r)


def test_invalid_event_goes_to_dlq_with_reason_and_others_are_stored(ledger):
    ingestor = Ingestor(ledger)
    bad = petition()
    bad["payload"]["channel"] = "pigeon"
    outcome = ingestor.handle([_delivery([petition(), bad]), Delivery(b"not json", 1, 7)])
    assert outcome.stored == 1
    assert sorted(r["field"] for r in outcome.rejected) == ["(record)", "payload.channel"]


def test_an_unhashable_event_type_is_rejected_not_retried_forever(ledger):
    """`"type": [...]` once raised TypeError out of the decoder: the worker would have retried
    the record forever (and the API answered 500)."""
    odd = petition() | {"type": ["petition_received"]}
    outcome = Ingestor(ledger).handle([_delivery([petition(), odd])])
    assert outcome.stored == 1
    assert [r["field"] for r in outcome.rejected] == ["type"]


def test_correction_of_another_units_event_is_rejected(ledger):
    ingestor = Ingestor(ledger)
    original = petition("a")
    ingestor.handle([_delivery([original])])
    foreign = event("event_corrected", "b", "s", {"corrects": original["event_id"],
                                                  "payload": {"channel": "visit", "category": "appeal"}})
    own = event("event_corrected", "a", "s", {"corrects": original["event_id"],
                                              "payload": {"channel": "visit", "category": "appeal"}})
    wrong_shape = event("event_corrected", "a", "s", {"corrects": original["event_id"],
                                                      "payload": {"method": "shelved"}})
    missing = event("event_retracted", "a", "s", {"retracts": str(uuid.uuid4()), "reason": "x"})
    outcome = ingestor.handle([_delivery([foreign, own, wrong_shape, missing], offset=1)])
    assert outcome.stored == 1
    assert sorted(r["field"] for r in outcome.rejected) == \
        ["payload.payload.channel", "payload.retracts", "unit_id"]


def test_batches_are_receipted_only_when_handled(ledger):
    ingestor = Ingestor(ledger)
    ingestor.handle([_delivery([petition()], batch="done-batch")])
    assert ledger.finished_batches(["done-batch", "other"]) == {"done-batch"}


def test_ledger_rows_without_facts_are_projected_on_restart(chdb_store):
    for table in TABLES:
        chdb_store.command(f"TRUNCATE TABLE {table}")
    ledger = ClickHouseLedger(chdb_store)
    ingestor = Ingestor(ledger)
    ingestor.handle([_delivery([petition("a"), petition("b")])])
    # A kill -9 between the ledger insert and the facts insert: simulate it by dropping facts.
    chdb_store.command("TRUNCATE TABLE facts")
    ingestor.handle([_delivery([petition("a")], offset=1)])
    assert chdb_store.scalar("SELECT count() FROM facts") == 1
    restarted = Ingestor(ledger)
    restarted.load()
    assert chdb_store.scalar("SELECT count() FROM facts") == 3
    restarted.load()  # idempotent: nothing projected twice
    assert chdb_store.rows("SELECT count(), uniqExact(event_id) FROM facts")[0] == (3, 3)
