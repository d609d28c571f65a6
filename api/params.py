"""Query parameter types with the ranges ClickHouse can store (else a 422, never a 5xx)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator

EARLIEST, LATEST = dt.date(1900, 1, 2), dt.date(2299, 12, 30)


def _day(value: dt.date) -> dt.date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"日期须在 {EARLIEST} 与 {LATEST} 之间 (date out of range)")
    return value


def _instant(value: dt.datetime) -> dt.datetime:
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    _day(value.date())
    return value


Day = Annotated[dt.date, AfterValidator(_day)]
Instant = Annotated[dt.datetime, AfterValidator(_instant)]  # naive means UTC
