"""The Kafka record format: one record carries a submission batch of many events.

Carrying many events per record keeps the stream side off faust's per-record overhead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.events import EnvelopeBase, payload_of

RECORD_VERSION = 1


@dataclass(frozen=True)
class Record:
    batch_id: str
    submitted_by: str
    events: list[Any]  # raw dicts: the worker validates them again


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
    body = {"v": RECORD_VERSION, "batch_id": batch_id, "submitted_by": submitted_by, "events": events}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_record(value: bytes | str | None) -> Record:
    """Parse a record; raise ValueError in plain words when it is not one of ours."""
    if value is None:
        raise ValueError("空记录 (empty record)")
    try:
        body = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"记录不是合法 JSON (record is not JSON): {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValueError("记录缺少 events 数组 (record has no events list)")
    return Record(str(body.get("batch_id") or ""), str(body.get("submitted_by") or "unknown"),
                  body["events"])
