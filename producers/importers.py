"""Read event files for `jiandu submit FILE`: JSON Lines, JSON, CSV and XLSX.

Bad content never raises: every problem becomes a `RowProblem` naming the row, so a
clerk can fix the whole file in one pass. Only a missing, unreadable, oversized or
unsupported file raises `FileImportError`.

Row numbers: JSONL rows are 1-based line numbers; CSV/XLSX rows are spreadsheet row
numbers counting the header (the first data row is 2); JSON rows are 1-based positions
in the event list. Row 0 means the file as a whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from domain.decode import DecodeError, decode_event
from domain.events import PAYLOADS, EnvelopeBase

MAX_BYTES = 200 * 1024 * 1024
MAX_CELL = 10_000
MAX_ROWS = 5_000_000
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991
GB_NOTE = "文件按 GBK/GB18030 编码读取 (decoded as GB18030)"
SUPPORTED = (".jsonl", ".json", ".csv", ".xlsx")
ENVELOPE = ("event_id", "type", "schema_version", "unit_id", "subject_id", "occurred_at")
REQUIRED = ("event_id", "type", "unit_id", "subject_id", "occurred_at")
ALIASES = {"事件编号": "event_id", "事件类型": "type", "单位": "unit_id", "对象": "subject_id",
           "发生时间": "occurred_at"}


class FileImportError(ValueError):
    """The file itself cannot be read: missing, unreadable, too large or of an unknown kind."""


@dataclass(frozen=True)
class RowProblem:
    row: int
    event_id: str | None
    field: str
    message: str


@dataclass(frozen=True)
class ImportResult:
    events: list[EnvelopeBase]
    problems: list[RowProblem]
    note: str | None = None


@dataclass
class _Sink:
    """Collect validated events and problems; catch duplicate event ids within the file."""

    events: list[EnvelopeBase] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def problem(self, row: int, where: str, message: str, event_id: str | None = None) -> None:
        self.problems.append(RowProblem(row, event_id[:64] if event_id else None, where, message))

    def add(self, row: int, raw: Any) -> None:
        try:
            event = decode_event(raw, row)
        except DecodeError as exc:
            self.problems.extend(RowProblem(row, p.event_id, p.field, p.message) for p in exc.problems)
            return
        key = str(event.event_id)
        if key in self.seen:
            self.problem(row, "event_id", f"与第 {self.seen[key]} 行重复 (duplicate of row "
                                          f"{self.seen[key]} in this file)", key)
            return
        self.seen[key] = row
        self.events.append(event)

    def over_limit(self, row: int, header_rows: int = 0) -> bool:
        if row - header_rows <= MAX_ROWS:
            return False
        self.problem(row, "(file)", f"超过 {MAX_ROWS} 行，已停止读取 (more than {MAX_ROWS} rows; "
                                    "reading stopped — split the file)")
        return True


def read_events(path: Path) -> ImportResult:
    """Read and validate every event in `path`; report bad content as row problems."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise FileImportError(f"不支持的文件类型 {suffix or '(无扩展名)'!r} (unsupported file type; "
                              f"use {', '.join(SUPPORTED)})")
    try:
        if not path.is_file():
            raise FileImportError(f"文件不存在 {path} (no such file)")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise FileImportError(f"文件超过 {MAX_BYTES // 2**20} MB (file too large: {size} bytes); "
                                  "请拆分后提交 (split it)")
        sink, note = _Sink(), None
        if suffix == ".xlsx":
            _read_xlsx(path, sink)
        else:
            note = _read_text(path.read_bytes(), suffix, sink)
    except OSError as exc:
        raise FileImportError(f"无法读取文件 {path} (cannot read file): {exc.strerror or exc}") from None
    if not sink.events and not sink.problems:
        sink.problem(0, "(file)", "文件中没有事件 (the file holds no events)")
    return ImportResult(sink.events, sink.problems, note)


def chunks(events: Iterable[EnvelopeBase], size: int = 10_000) -> Iterator[list[EnvelopeBase]]:
    """Yield lists of at most `size` events, in order."""
    if size < 1:
        raise ValueError("size must be positive")
    chunk: list[EnvelopeBase] = []
    for event in events:
        chunk.append(event)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _read_text(data: bytes, suffix: str, sink: _Sink) -> str | None:
    if not data.strip():
        sink.problem(0, "(file)", "文件为空 (the file is empty)")
        return None
    text, note = _decode(data)
    if text is None:
        sink.problem(0, "(file)", "文件编码不受支持，请另存为 UTF-8 (unsupported encoding: save as "
                                  "UTF-8 or GB18030)")
    elif suffix == ".jsonl":
        _read_jsonl(text, sink)
    elif suffix == ".json":
        _read_json(text, sink)
    else:
        _read_table(_csv_rows(text, sink), sink, _csv_text)
    return note


def _decode(data: bytes) -> tuple[str | None, str | None]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 would "decode" as GB18030 garbage
        return None, None
    with suppress(UnicodeDecodeError):
        return data.decode("utf-8-sig"), None
    with suppress(UnicodeDecodeError):
        return data.decode("gb18030"), GB_NOTE  # Excel on Chinese Windows saves CSV as GBK
    return None, None


def _read_jsonl(text: str, sink: _Sink) -> None:
    for row, line in enumerate(io.StringIO(text, newline="\n"), start=1):
        if sink.over_limit(row):
            return
        if line.strip():
            try:
                raw = json.loads(line)
            except (ValueError, RecursionError) as exc:
                sink.problem(row, "(line)", f"不是合法的 JSON (invalid JSON): {exc}")
                continue
            sink.add(row, raw)


def _read_json(text: str, sink: _Sink) -> None:
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        sink.problem(0, "(file)", f"不是合法的 JSON (invalid JSON): {exc}")
        return
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        body = body["events"]
    if not isinstance(body, list):
        sink.problem(0, "(file)", '需要事件数组或 {"events": [...]} (expected a list of events '
                                  'or {"events": [...]})')
        return
    for row, raw in enumerate(body, start=1):
        if sink.over_limit(row):
            return
        sink.add(row, raw)


def _csv_rows(text: str, sink: _Sink) -> Iterator[tuple[int, list[Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 0
    while not sink.over_limit(row := row + 1, header_rows=1):
        try:
            yield row, next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over csv's own size limit; go on with the next row
            sink.problem(row, "(row)", f"CSV 格式错误 (malformed CSV): {exc}")


def _csv_text(value: Any, column: str | None) -> str | None:
    return value.strip() or None


def _read_xlsx(path: Path, sink: _Sink) -> None:
    import openpyxl  # heavy; only XLSX needs it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError:
        raise
    except Exception as exc:  # a damaged or fake workbook fails with many exception types
        sink.problem(0, "(file)", f"不是有效的 XLSX 文件 (not a readable .xlsx workbook): {exc}")
        return
    try:
        sheet = book.worksheets[0]  # the first sheet holds the events
        sheet.reset_dimensions()  # some writers store a wrong size, which would truncate rows
        _read_table(_xlsx_rows(sheet, sink), sink, _xlsx_text)
    finally:
        book.close()


def _xlsx_rows(sheet: Any, sink: _Sink) -> Iterator[tuple[int, tuple[Any, ...]]]:
    rows = sheet.iter_rows(values_only=True)
    row = 0
    while not sink.over_limit(row := row + 1, header_rows=1):
        try:
            values = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # damaged sheet XML; report and stop, later rows are unreliable
            sink.problem(row, "(row)", f"无法读取该行 (cannot read this row): {exc}")
            return
        yield row, values


def _xlsx_text(value: Any, column: str | None) -> str | None:
    """Turn a cell into text; a naive occurred_at is Asia/Shanghai (+08:00) local time."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float: 3.0 means 3
    if isinstance(value, dt.datetime):
        if column == "occurred_at" and value.tzinfo is None:
            return value.replace(tzinfo=SHANGHAI).isoformat()
        if column != "occurred_at" and value.tzinfo is None and value.time() == dt.time():
            return value.date().isoformat()  # Excel has no pure dates; a midnight is a date cell
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip() or None


def _read_table(rows: Iterator[tuple[int, Any]], sink: _Sink,
                text: Callable[[Any, str | None], str | None]) -> None:
    columns: list[str | None] | None = None
    for row, values in rows:
        if columns is None:
            header = [text(v, None) if v is not None else None for v in values]
            if any(header):  # blank rows above the header are skipped
                columns = _header(row, header, sink)
                if columns is None:
                    return
            continue
        cells = [text(v, columns[i] if i < len(columns) else "") if v is not None else None
                 for i, v in enumerate(values)]
        if any(cells):  # blank rows are common at the end of spreadsheets
            raw = _row_to_raw(row, columns, cells, sink)
            if raw is not None:
                sink.add(row, raw)


def _header(row: int, header: list[str | None], sink: _Sink) -> list[str | None] | None:
    """Map header cells to column names; None marks a column to ignore ("" a blank header)."""
    columns: list[str | None] = []
    for cell in header:
        name = ALIASES.get(cell or "", cell or "")
        if name.lower() in ENVELOPE or name.lower() == "payload":
            name = name.lower()
        elif name.lower().startswith("payload.") and len(name) > 8:
            name = "payload." + name[8:]
        elif name:
            sink.problem(row, name[:60], "未知列 (unknown column); 可用 (allowed): "
                                         f"{', '.join(ENVELOPE)}, payload, payload.<字段/field>")
            name = None
        if name and name in columns:
            sink.problem(row, name, "列名重复 (duplicate column)")
            name = None
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    for name in missing:
        sink.problem(row, name, "缺少必需列 (missing required column)")
    return None if missing else columns


def _row_to_raw(row: int, columns: list[str | None], cells: list[str | None],
                sink: _Sink) -> dict[str, Any] | None:
    named = {}
    event_id = cells[columns.index("event_id")] if columns.index("event_id") < len(cells) else None
    ok = True
    for i, cell in enumerate(cells):
        name = columns[i] if i < len(columns) else ""
        if cell is None or name is None:
            continue
        if len(cell) > MAX_CELL:
            sink.problem(row, name or f"(column {i + 1})",
                         f"单元格超过 {MAX_CELL} 字符 (cell longer than {MAX_CELL} characters)", event_id)
            ok = False
        elif not name:
            sink.problem(row, f"(column {i + 1})", "单元格没有列名 (value in a column without a header)",
                         event_id)
            ok = False
        else:
            named[name] = cell
    if not ok:
        return None
    raw: dict[str, Any] = {k: v for k, v in named.items() if k in ENVELOPE}
    if "schema_version" in raw:
        raw["schema_version"] = _convert(raw["schema_version"], frozenset({int}))
    fields = {k[8:]: v for k, v in named.items() if k.startswith("payload.")}
    if "payload" in named and fields:
        sink.problem(row, "payload", "payload 列与 payload.<字段> 列不能同时填写 (use either the "
                                     "payload column or payload.<field> columns)", event_id)
        return None
    if "payload" in named:
        try:
            raw["payload"] = json.loads(named["payload"])
        except (ValueError, RecursionError) as exc:
            sink.problem(row, "payload", f"payload 不是合法的 JSON (invalid JSON): {exc}", event_id)
            return None
    else:
        event_type = raw.get("type")
        raw["payload"] = {k: _convert(v, _kinds(event_type, k) if event_type in PAYLOADS else
                                      frozenset()) for k, v in fields.items()}
    return raw


@functools.cache
def _kinds(event_type: str, name: str) -> frozenset[type]:
    """Return the plain types the payload field accepts (int for Literal[1, 2], ...)."""
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


def _convert(text: str, kinds: frozenset[type]) -> Any:
    """Turn a cell's text into the number or object the field wants; else keep the text."""
    if int in kinds:
        with suppress(ValueError):
            return int(text)
        with suppress(ValueError, OverflowError):
            number = float(text)
            if number.is_integer():
                return int(number)
    if float in kinds:
        with suppress(ValueError):
            return float(text)
    if dict in kinds and text.startswith("{"):
        with suppress(ValueError, RecursionError):
            return json.loads(text)
    return text
