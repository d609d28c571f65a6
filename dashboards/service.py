"""Run one panel's SQL for the built-in page: expand the macros, query, make rows JSON-safe."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from dashboards.macros import Variables, expand
from dashboards.panels import Panel
from dashboards.sql import TZ
from projections.store import API_QUERY_SETTINGS, ClickHouseStore

EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # "no end": demo business time may run ahead


def as_of_text(as_of: dt.datetime | None) -> str:
    """The `${as_of}` text for an instant: local wall time, as a Grafana user would type it."""
    if as_of is None:
        return ""
    return as_of.astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S.%f")


def variables(unit: str, start: dt.datetime | None, end: dt.datetime | None,
              as_of: dt.datetime | None) -> Variables:
    """Variables for a half-open [start, end) period; Grafana's range is inclusive, so end - 1 s."""
    last = (end - dt.timedelta(seconds=1)) if end else LATEST
    return Variables(unit=unit, start=start or EARLIEST, end=last, as_of=as_of_text(as_of))


def run_panel(store: ClickHouseStore, panel: Panel, v: Variables) -> dict[str, Any]:
    """Return {"columns": [...], "rows": [[...], ...]} for the panel under `v`."""
    rows = store.dicts(expand(panel.sql, v), settings=API_QUERY_SETTINGS)
    columns = list(rows[0]) if rows else []
    return {"columns": columns, "rows": [[_json(r[c]) for c in columns] for r in rows]}


def _json(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # avg() of nothing is nan
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        # The client hands back DateTime values as naive UTC.
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    return value
