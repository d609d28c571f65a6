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
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.decode import DecodeError, decode_event
from domain.events import EnvelopeBase
from domain.labels import ENVELOPE_LABELS, FIELD_LABELS, TYPE_BY_LABEL, choices
from producers.cells import convert, csv_text, loads, payload_value, xlsx_text

MAX_BYTES = 200 * 1024 * 1024
MAX_CELL = 10_000
MAX_ROWS = 5_000_000
PROGRESS_ROWS = 20_000
GB_NOTE = "文件按 GBK/GB18030 编码读取 (decoded as GB18030)"
SUPPORTED = (".jsonl", ".json", ".csv", ".xlsx")
ENVELOPE = ("event_id", "type", "schema_version", "unit_id", "subject_id", "occurred_at")
REQUIRED = ("event_id", "type", "unit_id", "subject_id", "occurred_at")
# Chinese headers, as in `jiandu template`'s workbook: 处置方式 is payload.method.
ALIASES = {**{label: name for name, label in ENVELOPE_LABELS.items()},
           **{label: f"payload.{name}" for name, label in FIELD_LABELS.items()}}


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
    rows: list[int] = field(default_factory=list)  # the file row of each event, in order


@dataclass
class _Sink:
    """Collect validated events and problems; catch duplicate event ids within the file."""

    events: list[EnvelopeBase] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    rows: list[int] = field(default_factory=list)
    progress: Callable[[int], None] | None = None  # called with the rows read, every PROGRESS_ROWS

    def problem(self, row: int, where: str, message: str, event_id: str | None = None) -> None:
        self.problems.append(RowProblem(row, event_id[:64] if event_id else None, where, message))

    def add(self, row: int, raw: Any, refused: bool = False) -> None:
        """Validate a row's event and keep it; `refused`: a problem was already found in the
        row, so only look for more (a clerk fixes the whole file in one pass)."""
        if self.progress is not None and row % PROGRESS_ROWS == 0:
            self.progress(row)
        try:
            event = decode_event(raw, row)
        except DecodeError as exc:
            self.problems.extend(RowProblem(row, p.event_id, p.field, p.message) for p in exc.problems)
            return
        if refused:
            return
        key = str(event.event_id)
        if key in self.seen:
            self.problem(row, "event_id", f"与第 {self.seen[key]} 行重复 (duplicate of row "
                                          f"{self.seen[key]} in this file)", key)
            return
        self.seen[key] = row
        self.events.append(event)
        self.rows.append(row)

    def over_limit(self, row: int, header_rows: int = 0) -> bool:
        """Record a problem and say so once `row` passes MAX_ROWS data rows."""
        if row - header_rows > MAX_ROWS:
            self.problem(row, "(file)", f"超过 {MAX_ROWS} 行，已停止读取 (more than {MAX_ROWS} rows: "
                                        "reading stopped, split the file)")
        return row - header_rows > MAX_ROWS


def read_events(path: Path, progress: Callable[[int], None] | None = None) -> ImportResult:
    """Read and validate every event in `path`; report bad content as row problems.
    `progress` hears how many rows were read, now and then (a file of a million rows takes a
    minute or more)."""
    path = Path(path)
    _check_suffix(path.suffix)
    try:
        if not path.is_file():
            raise FileImportError(f"文件不存在 {path} (no such file)")
        _check_size(path.stat().st_size)
        data = path.read_bytes()
    except OSError as exc:
        raise FileImportError(f"无法读取文件 {path} (cannot read file): {exc.strerror or exc}") from None
    return read_content(data, path.suffix, progress)


def read_content(data: bytes, suffix: str, progress: Callable[[int], None] | None = None) -> ImportResult:
    """Read and validate the events in a file's content (an upload), given the file's suffix."""
    suffix = _check_suffix(suffix)
    _check_size(len(data))
    sink, note = _Sink(progress=progress), None
    if suffix == ".xlsx":
        _read_xlsx(io.BytesIO(data), sink)
    else:
        note = _read_text(data, suffix, sink)
    if not sink.events and not sink.problems:
        sink.problem(0, "(file)", "文件中没有事件 (the file holds no events)")
    return ImportResult(sink.events, sink.problems, note, sink.rows)


def _check_suffix(suffix: str) -> str:
    if suffix.lower() not in SUPPORTED:
        raise FileImportError(f"不支持的文件类型 {suffix or '(无扩展名)'!r} (unsupported file type; "
                              f"use {', '.join(SUPPORTED)})")
    return suffix.lower()


def _check_size(size: int) -> None:
    if size > MAX_BYTES:
        raise FileImportError(f"文件超过 {MAX_BYTES // 2**20} MB，请拆分 (file too large: {size} bytes; split it)")


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
    """Decode the bytes and read them; return the note on the encoding used, if notable."""
    if not data.strip():
        sink.problem(0, "(file)", "文件为空 (the file is empty)")
        return None
    text, note = _decode(data)
    if text is None:
        sink.problem(0, "(file)", "文件编码不受支持，请另存为 UTF-8 (unsupported encoding: save as "
                                  "UTF-8 or GB18030)")
    elif suffix == ".csv":
        rows = csv.reader(io.StringIO(text, newline=""))
        _read_table(_numbered(rows, sink, (csv.Error,)), sink, csv_text)
    else:
        for row, raw in _json_rows(text, suffix, sink):
            if sink.over_limit(row):
                break
            sink.add(row, raw)
    return note


def _decode(data: bytes) -> tuple[str | None, str | None]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 would "decode" as GB18030 garbage
        return None, None
    with suppress(UnicodeDecodeError):
        return data.decode("utf-8-sig"), None
    with suppress(UnicodeDecodeError):
        return data.decode("gb18030"), GB_NOTE  # Excel on Chinese Windows saves CSV as GBK
    return None, None


def _json_rows(text: str, suffix: str, sink: _Sink) -> Iterator[tuple[int, Any]]:
    """Yield (row, parsed event) from JSON Lines or a JSON list; bad JSON becomes a problem."""
    if suffix == ".json":
        body, error = loads(text)
        if isinstance(body, dict) and isinstance(body.get("events"), list):
            body = body["events"]
        if isinstance(body, list):
            yield from enumerate(body, start=1)
        else:
            sink.problem(0, "(file)", error or '需要事件数组或 {"events": [...]} (expected a list '
                                               'of events or {"events": [...]})')
        return
    for row, line in enumerate(io.StringIO(text, newline="\n"), start=1):
        if line.strip():
            raw, error = loads(line)
            if error:
                sink.problem(row, "(line)", error)
            else:
                yield row, raw


def _numbered(rows: Iterator[Any], sink: _Sink, errors: tuple[type[Exception], ...]
              ) -> Iterator[tuple[int, Any]]:
    """Number rows from 1; a row that fails to parse becomes a problem (a dead reader stops)."""
    row = 0
    while not sink.over_limit(row := row + 1, header_rows=1):
        try:
            yield row, next(rows)
        except StopIteration:
            return
        except errors as exc:
            sink.problem(row, "(row)", f"无法读取该行 (cannot read this row): {exc}")


def _read_xlsx(content: io.BytesIO, sink: _Sink) -> None:
    import openpyxl  # heavy; only XLSX needs it

    try:
        book = openpyxl.load_workbook(content, read_only=True, data_only=True)
    except Exception as exc:  # a damaged or fake workbook fails with many exception types
        sink.problem(0, "(file)", f"不是有效的 XLSX 文件 (not a readable .xlsx workbook): {exc}")
        return
    try:
        sheet = book.worksheets[0]  # the first sheet holds the events
        sheet.reset_dimensions()  # some writers store a wrong size, which would truncate rows
        # A damaged sheet can fail mid-way with any parser error; the rows before it stand.
        _read_table(_numbered(sheet.iter_rows(values_only=True), sink, (Exception,)), sink, xlsx_text)
    finally:
        book.close()


def _read_table(rows: Iterator[tuple[int, Any]], sink: _Sink,
                text: Callable[[Any, str | None], str | None]) -> None:
    """Read a header row, then one event per non-blank row."""
    columns: list[str | None] | None = None
    for row, values in rows:
        if columns is None:
            header = [text(v, None) if v is not None else None for v in values]
            if any(header):  # blank rows above the header are skipped
                if (columns := _header(row, header, sink)) is None:
                    return
            continue
        cells = [text(v, columns[i] if i < len(columns) else "") if v is not None else None
                 for i, v in enumerate(values)]
        if _filled(columns, cells):
            before = len(sink.problems)
            if (raw := _row_to_raw(row, columns, cells, sink)) is not None:
                sink.add(row, raw, refused=len(sink.problems) > before)


def _filled(columns: list[str | None], cells: list[str | None]) -> bool:
    """True unless the row is blank, or holds nothing but an event_id: blank rows are common at
    the end of spreadsheets, and `jiandu template` numbers its empty rows in advance."""
    return any(cell for i, cell in enumerate(cells)
               if i >= len(columns) or columns[i] != "event_id")


def _header(row: int, header: list[str | None], sink: _Sink) -> list[str | None] | None:
    """Map header cells to column names: None ignores a column, "" marks a blank header."""
    columns: list[str | None] = []
    for cell in header:
        name: str | None = ALIASES.get(cell or "", cell or "")
        lower = name.lower()
        if lower in ENVELOPE or lower == "payload" or (lower.startswith("payload.") and name[8:]):
            name = lower if "." not in lower else "payload." + name[8:]
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
    """Build a raw event from one row; report and return None if a cell is unusable. A value
    that names none of its field's choices is reported here, and an allowed value stands in
    for it, so that the decoder still finds the row's other problems (a clerk fixes the whole
    file in one pass)."""
    event_id = next((c for n, c in zip(columns, cells, strict=False) if n == "event_id"), None)
    named: dict[str, str] = {}
    before = len(sink.problems)
    for i, cell in enumerate(cells):
        name = columns[i] if i < len(columns) else ""
        if cell is None or name is None:
            continue
        if len(cell) > MAX_CELL:
            sink.problem(row, name or f"(column {i + 1})",
                         f"单元格超过 {MAX_CELL} 字符 (cell longer than {MAX_CELL} characters)", event_id)
        elif not name:
            sink.problem(row, f"(column {i + 1})", "单元格没有列名 (value in a column without a header)",
                         event_id)
        named[name] = cell
    raw: dict[str, Any] = {k: v for k, v in named.items() if k in ENVELOPE}
    if "schema_version" in raw:
        raw["schema_version"] = convert(raw["schema_version"], frozenset({int}))
    if "type" in raw:
        raw["type"] = TYPE_BY_LABEL.get(raw["type"], raw["type"])  # 处置问题线索 is clue_disposed
    fields = {k[8:]: v for k, v in named.items() if k.startswith("payload.")}
    if "payload" in named:
        raw["payload"], error = loads(named["payload"])
        if fields:
            error = ("payload 列与 payload.<字段> 列不能同时填写 (use either the payload column or "
                     "payload.<field> columns)")
        if error:
            sink.problem(row, "payload", error, event_id)
    else:
        raw["payload"], stand_ins = {}, []
        for name, text in fields.items():
            value, error = payload_value(raw.get("type"), name, text)
            if error:
                sink.problem(row, f"payload.{name}", error, event_id)
                stand_ins.append(name)
            raw["payload"][name] = value
        if stand_ins and all(choices(raw["type"], n) for n in stand_ins) \
                and len(sink.problems) == before + len(stand_ins):
            # The row is never accepted: its caller sees that a problem was found.
            raw["payload"].update({name: choices(raw["type"], name)[0] for name in stand_ins})
            return raw
    return raw if len(sink.problems) == before else None


