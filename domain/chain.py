"""The per-unit hash chain: `hash = sha256(prev_hash + canonical_json(event))`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

GENESIS = "0" * 64
CHAINED_FIELDS = ("event_id", "type", "schema_version", "unit_id", "subject_id",
                  "occurred_at", "recorded_at", "submitted_by", "seq", "payload")


def iso_ms(value: dt.datetime) -> str:
    """Format an instant as UTC ISO 8601 with milliseconds (the occurred_at form)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def iso_us(value: dt.datetime) -> str:
    """Format an instant as UTC ISO 8601 with microseconds (the recorded_at form)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Serialise deterministically: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chained_record(row: dict[str, Any]) -> dict[str, Any]:
    """Pick the fields the hash covers from a ledger row, in their canonical forms."""
    record = {name: row[name] for name in CHAINED_FIELDS}
    if isinstance(record["payload"], str):
        record["payload"] = json.loads(record["payload"])
    for name, fmt in (("occurred_at", iso_ms), ("recorded_at", iso_us)):
        if isinstance(record[name], dt.datetime):
            record[name] = fmt(record[name])
    record["event_id"] = str(record["event_id"])
    record["seq"] = int(record["seq"])
    record["schema_version"] = int(record["schema_version"])
    return record


def link_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """Return the hash of a ledger row chained onto `prev_hash`."""
    body = prev_hash + canonical_json(chained_record(row))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
