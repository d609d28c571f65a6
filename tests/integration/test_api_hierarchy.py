"""`GET /v1/indicators` answers under the hierarchy in force when it is asked, in process on
real chDB.

Whether the hierarchy changed is itself a query (once the store was written since it was last
asked), so the route computes with the hierarchy it read last while it asks, and computes
again when the answer is a newer one. These requests come right after a unit is registered:
the one the route knew is out of date.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from api.app import create_app
from api.context import ApiContext
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorService
from projections.tokens import TokenStore
from tests.integration.test_indicator_properties import _ingest, _province

ADMIN = "admin-token-for-this-test"


def _petition(prefix: str, unit: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": "petition_received", "unit_id": prefix + unit,
            "subject_id": f"x{uuid.uuid4().hex[:6]}", "occurred_at": "2024-03-01T10:00:00+08:00",
            "payload": {"channel": "letter", "category": "accusation"}}


def test_a_unit_registered_since_the_last_request_is_answered_under_the_new_hierarchy(chdb_store):
    prefix = f"h{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, prefix, _province(prefix) + [_petition(prefix, "c1")])
    hierarchy = HierarchySource(chdb_store)
    ctx = ApiContext(chdb_store, hierarchy, IndicatorService(chdb_store, hierarchy), TokenStore(chdb_store),
                     None, ADMIN)
    app = create_app(ctx)

    async def get(**params) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://jiandu",
                                     headers={"Authorization": f"Bearer {ADMIN}"}) as client:
            return await client.get("/v1/indicators", params=params)

    before = asyncio.run(get(unit=prefix + "p", group_by="child"))
    assert before.status_code == 200
    assert {r["key"] for r in before.json()["rows"]} == {prefix + u for u in ("p", "c1", "c2", "g1")}
    assert hierarchy.latest() is not None  # what the next request starts from

    _ingest(chdb_store, prefix, [{
        "event_id": str(uuid.uuid4()), "type": "unit_registered", "unit_id": prefix + "p",
        "subject_id": prefix + "c3", "occurred_at": "2020-01-01T00:00:00+08:00",
        "payload": {"name": "新设市纪委", "level": "city", "effective_from": "2020-01-01", "parent_id": prefix + "p"}}])
    _ingest(chdb_store, prefix, [_petition(prefix, "c3"), _petition(prefix, "c3")])

    # Answered under the hierarchy read last (no c3), the new child would be labelled by its
    # bare id.
    rows = {r["key"]: r for r in asyncio.run(get(unit=prefix + "p", group_by="child")).json()["rows"]}
    assert set(rows) == {prefix + u for u in ("p", "c1", "c2", "c3", "g1")}
    assert rows[prefix + "c3"]["label"] == "新设市纪委"
    assert rows[prefix + "c3"]["indicators"]["petitions.received"] == 2
    assert rows[prefix + "c1"]["indicators"]["petitions.received"] == 1

    _ingest(chdb_store, prefix, [{
        "event_id": str(uuid.uuid4()), "type": "unit_registered", "unit_id": prefix + "p",
        "subject_id": prefix + "c4", "occurred_at": "2020-01-01T00:00:00+08:00",
        "payload": {"name": "另一新设市纪委", "level": "city", "effective_from": "2020-01-01",
                    "parent_id": prefix + "p"}}])
    # Under the hierarchy read last, c4 does not exist: a 404.
    own = asyncio.run(get(unit=prefix + "c4"))
    assert own.status_code == 200, own.text
    assert own.json()["rows"][0]["label"] == "另一新设市纪委"
    # JSON in UTF-8 as written (labels readable in the raw body, not \u escapes)
    assert own.headers["content-type"] == "application/json"
    assert '"label":"另一新设市纪委"' in own.content.decode("utf-8")


def test_the_hierarchy_is_asked_again_only_once_the_store_was_written(chdb_store, monkeypatch):
    """Embedded, nothing but this process writes the store, so while it has not written,
    the hierarchy read last is current and its check need not be a query; on a server it is."""
    prefix = f"q{uuid.uuid4().hex[:8]}."
    _ingest(chdb_store, prefix, _province(prefix))
    hierarchy = HierarchySource(chdb_store)
    asked = []
    rows = chdb_store.rows

    def counting(sql, *args, **kwargs):
        asked.append(sql)
        return rows(sql, *args, **kwargs)

    monkeypatch.setattr(chdb_store, "rows", counting)
    first = hierarchy.at()
    checks = len(asked)
    assert hierarchy.at() is first and len(asked) == checks  # no write since: no query

    _ingest(chdb_store, prefix, [{
        "event_id": str(uuid.uuid4()), "type": "unit_registered", "unit_id": prefix + "p",
        "subject_id": prefix + "c9", "occurred_at": "2020-01-01T00:00:00+08:00",
        "payload": {"name": "新设市纪委", "level": "city", "effective_from": "2020-01-01", "parent_id": prefix + "p"}}])
    assert prefix + "c9" in hierarchy.at()

    written = chdb_store.writes()
    with pytest.raises(Exception, match="UNKNOWN_TABLE"):
        chdb_store.command("INSERT INTO nowhere VALUES (")  # a failed write may still have landed
    assert chdb_store.writes() == written + 1

    monkeypatch.setattr(chdb_store, "embedded", False)  # a server: others write to it too
    assert chdb_store.writes() is None
    del asked[:]
    hierarchy.at()
    hierarchy.at()
    assert len(asked) == 2


def test_every_kind_of_write_is_counted(chdb_store):
    chdb_store.command("CREATE TABLE IF NOT EXISTS counted_writes (x UInt8) ENGINE = Memory")
    before = chdb_store.writes()
    chdb_store.insert("counted_writes", [[1]], ["x"])
    chdb_store.insert_columns("counted_writes", {"x": [2, 3]})
    chdb_store.rows("SELECT count() FROM counted_writes")  # a read is not a write
    assert chdb_store.writes() == before + 2
