"""The Kafka record format: one record carries a submission batch of many events.

Carrying many events per record keeps the stream side off faust's per-record overhead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from domain.decode import DecodeError, all_current, decode_each
from domain.events import EVENTS_ADAPTER, EnvelopeBase, Event, payload_of

RECORD_VERSION = 1


@dataclass(frozen=True)
class Record:
    batch_id: str
    submitted_by: str
    events: list[Any]  # raw dicts: the worker validates them again (empty: see decode_events)


def event_to_json(event: EnvelopeBase) -> dict[str, Any]:
    """Return the client-visible envelope of a validated event as JSON-ready data."""
    return {
        "event_id": str(event.event_id),
        "type": event.type,  # type: ignore[attr-defined]
        "schema_version": event.schema_version,
        "unit_id": event.unit_id,
        "subject_id": event.subject_id,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": payload_of(event),
    }


def encode_record(batch_id: str, submitted_by: str, events: list[dict[str, Any]]) -> bytes:
    """The record of raw events (JSON-ready dicts)."""
    body = _body(batch_id, submitted_by, events)
    try:
        return orjson.dumps(body)  # compact UTF-8 JSON, as json.dumps(separators, ensure_ascii=False)
    except orjson.JSONEncodeError:  # what orjson refuses (an integer past 64 bits): the slow way
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_events(batch_id: str, submitted_by: str, events: list[EnvelopeBase]) -> bytes:
    """The record of validated events, their envelopes serialised by pydantic in one call (the
    API's hot path: ~1.8 µs an event, where `event_to_json` and then `json.dumps` took ~5.7)."""
    events_json = EVENTS_ADAPTER.dump_json(events, exclude_none=True)
    return orjson.dumps(_body(batch_id, submitted_by, orjson.Fragment(events_json)))


def _body(batch_id: str, submitted_by: str, events: Any) -> dict[str, Any]:
    return {"v": RECORD_VERSION, "batch_id": batch_id, "submitted_by": submitted_by, "events": events}


def decode_record(value: bytes | str | None) -> Record:
    """Parse a record; raise ValueError in plain words when it is not one of ours."""
    if value is None:
        raise ValueError("空记录 (empty record)")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"记录不是合法 JSON (record is not JSON): {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValueError("记录缺少 events 数组 (record has no events list)")
    return Record(str(body.get("batch_id") or ""), str(body.get("submitted_by") or "unknown"),
                  body["events"])


class _ValidRecord(BaseModel):
    """A record as our API writes it: every event valid as sent."""

    model_config = ConfigDict(extra="ignore")
    batch_id: str = ""
    submitted_by: str = ""
    events: list[Event]


_VALID_RECORD = TypeAdapter(_ValidRecord)


def decode_events(value: bytes | str | None) -> tuple[Record, list[EnvelopeBase | DecodeError]]:
    """A record and its events, each validated or the DecodeError saying why not; ValueError
    when it is not a record (as `decode_record`).

    The usual record (every event valid at its type's current version) is parsed and validated
    from its bytes in one pydantic call, ~2.7 µs an event where parsing the JSON and then
    validating the dicts took ~5.1; its Record then carries no raw events, none being rejected.
    Anything else is decoded the way that words each problem."""
    if value is not None:
        try:
            valid = _VALID_RECORD.validate_json(value)
        except ValidationError:
            valid = None
        if valid is not None and all_current(valid.events):
            return Record(valid.batch_id, valid.submitted_by or "unknown", []), list(valid.events)
    record = decode_record(value)
    return record, decode_each(record.events)
