"""What a spreadsheet cell means: a Chinese label for an id (谈话函询 is talk_inquiry), a
number for a number field, a local date or time for an instant. The importer reads rows;
these functions read the cells in them."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import types
from contextlib import suppress
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from domain.events import PAYLOADS
from domain.labels import allowed, choices, from_label

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991
# How Chinese Excel writes a date or time into CSV (2025/3/1 9:30): read as Asia/Shanghai, as an
# XLSX date cell is. An ISO time without an offset (2025-03-01T09:30) is a program's, and stays
# an error: a program can say which zone it means.
EXCEL_TIME = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?")
DATE_COLUMNS = ("payload.effective_from", "payload.due_date")


def loads(text: str) -> tuple[Any, str | None]:
    """Parse JSON text: (value, None), or (None, the problem in plain words)."""
    try:
        return json.loads(text), None
    except (ValueError, RecursionError) as exc:
        return None, f"不是合法的 JSON (invalid JSON): {exc}"


def csv_text(value: str, column: str | None) -> str | None:
    """Turn a CSV cell into text (None when blank)."""
    return local_time(value.strip(), column) or None


def local_time(text: str, column: str | None) -> str:
    """Rewrite a spreadsheet's local date or time in `column` as ISO 8601; other text as it is."""
    if column not in ("occurred_at", *DATE_COLUMNS) or not (match := EXCEL_TIME.fullmatch(text)):
        return text
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        when = dt.datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)
    except ValueError:
        return text  # 2025/2/30: the decoder says what is wrong with it
    return when.isoformat() if column == "occurred_at" else when.date().isoformat()


def xlsx_text(value: Any, column: str | None) -> str | None:
    """Turn a cell into text; a naive occurred_at is Asia/Shanghai (+08:00) local time."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float: 3.0 means 3
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        if column == "occurred_at":
            return value.replace(tzinfo=SHANGHAI).isoformat()
        if value.time() == dt.time():
            return value.date().isoformat()  # Excel has no pure dates; a midnight is a date cell
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return local_time(str(value).strip(), column) or None


def payload_value(event_type: Any, name: str, text: str) -> tuple[Any, str | None]:
    """Turn a payload cell into its value: a label into the id it names (谈话函询 is
    talk_inquiry), a number into a number; say what is allowed when the cell names nothing."""
    if event_type not in PAYLOADS:
        return text, None  # the unknown type is the row's problem
    if options := choices(event_type, name):
        value = from_label(event_type, name, text)
        if value not in options:
            value = convert(text, _kinds(event_type, name))  # form "2.0" is 2 too
        if value in options:
            return value, None
        return text, f"{text[:60]!r} 不是可选值 (not one of the allowed values): {allowed(event_type, name)}"
    kinds = _kinds(event_type, name)
    if dict in kinds:  # event_corrected's replacement payload, as JSON in one cell
        return loads(text)
    return convert(text, kinds), None


@functools.cache
def _kinds(event_type: str, name: str) -> frozenset[type]:
    """Return the plain types a payload field accepts (int for Literal[1, 2], ...)."""
    info = PAYLOADS[event_type].model_fields.get(name)
    return frozenset(_flatten(info.annotation)) if info else frozenset()


def _flatten(annotation: Any) -> set[type]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _flatten(get_args(annotation)[0])
    if origin is Literal:
        return {type(arg) for arg in get_args(annotation)}
    if origin in (Union, types.UnionType):
        return set().union(*(_flatten(arg) for arg in get_args(annotation)))
    return {origin or annotation}


def convert(text: str, kinds: frozenset[type]) -> Any:
    """Turn a cell's text into the number the field wants (form 2, percent 37.5); else keep it."""
    if int in kinds:
        with suppress(ValueError):
            return int(text)
        with suppress(ValueError, OverflowError):
            if (number := float(text)).is_integer():  # "2.0" means 2 too
                return int(number)
    if float in kinds:
        with suppress(ValueError):
            return float(text)
    return text
