"""`jiandu template FILE.xlsx`: a workbook a clerk fills in and `jiandu submit` reads back.

The first sheet has one column per envelope and payload field, headed by its Chinese name
(the importer reads those headers), with drop-down lists of labels where a field has fixed
values. Its event ids are filled in ahead: a clerk cannot mint a UUID in Excel, and an id
written once into the file is what makes submitting the same file twice safe. The second
sheet says which fields each event type needs."""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

from domain.events import PAYLOADS
from domain.labels import ENVELOPE_LABELS, FIELD_LABELS, TYPE_LABELS, choices, value_labels

ENVELOPE_COLUMNS = ("event_id", "type", "unit_id", "subject_id", "occurred_at")
DEFAULT_ROWS = 1000
MAX_ROWS = 100_000
DATE_FIELDS = ("effective_from", "due_date")


def uuid7() -> str:
    """Return a UUID version 7 (time-ordered, as DESIGN §5 recommends)."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def payload_columns() -> list[str]:
    """Every payload field of every event type, once, in the order the types first use them."""
    return list(dict.fromkeys(name for model in PAYLOADS.values() for name in model.model_fields))


def _field_labels(name: str) -> list[str]:
    """The labels a field's drop-down offers: those of every type that has the field."""
    labels = (value_labels(t, name).values() for t in PAYLOADS if name in PAYLOADS[t].model_fields)
    return list(dict.fromkeys(label for group in labels for label in group))


def write_template(path: Path, rows: int = DEFAULT_ROWS) -> None:
    """Write the fill-in workbook to `path`, with `rows` event ids ready."""
    if path.suffix.lower() != ".xlsx":
        raise ValueError(f"模板须保存为 .xlsx (the template is an .xlsx workbook): {path}")
    template_bytes(rows, path)


def template_bytes(rows: int = DEFAULT_ROWS, path: Path | None = None) -> bytes:
    """Return the fill-in workbook's bytes, also written to `path` if given."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"行数须在 1–{MAX_ROWS} 之间 (rows must be 1–{MAX_ROWS}): {rows}")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "事件 events"
    lists = book.create_sheet("选项 lists")
    guide = book.create_sheet("说明 guide")
    book.move_sheet(guide, offset=-1)  # events, guide, lists: the importer reads the first

    names = [*ENVELOPE_COLUMNS, *(f"payload.{n}" for n in payload_columns())]
    bold, shaded = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for column, name in enumerate(names, start=1):
        field = name.removeprefix("payload.")
        cell = sheet.cell(1, column, ENVELOPE_LABELS.get(name) or FIELD_LABELS[field])
        cell.font, cell.fill = bold, shaded
        cell.comment = Comment(_column_note(name), "jiandu")
        letter = cell.column_letter
        sheet.column_dimensions[letter].width = 38 if name == "event_id" else 16
        values = list(TYPE_LABELS.values()) if name == "type" else _field_labels(field)
        if values:  # a drop-down from a column of the hidden lists sheet
            for row, value in enumerate(values, start=1):
                lists.cell(row, column, value)
            rule = DataValidation(type="list", formula1=f"'{lists.title}'!${letter}$1:${letter}${len(values)}",
                                  allow_blank=True, showErrorMessage=True, errorTitle="不是可选值",
                                  error="请从下拉列表中选择 (choose from the list)")
            rule.add(f"{letter}2:{letter}{rows + 1}")
            sheet.add_data_validation(rule)
        fmt = "yyyy-mm-dd hh:mm" if name == "occurred_at" else "yyyy-mm-dd" if field in DATE_FIELDS else None
        for row in range(2, rows + 2):
            if name == "event_id":
                sheet.cell(row, column, uuid7())
            elif fmt:
                sheet.cell(row, column).number_format = fmt
    sheet.freeze_panes = "C2"
    lists.sheet_state = "hidden"
    _write_guide(guide)
    buffer = io.BytesIO()
    book.save(buffer)
    if path is not None:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


ENVELOPE_NOTES = {
    "event_id": "已预先填好，请勿修改；每行一个事件 (filled in ahead: leave it as it is)",
    "type": "从下拉列表选择 (choose from the list)",
    "unit_id": "填报单位的编号，如 gd.c01 (the recording unit's id)",
    "subject_id": "事件所涉对象的编号：线索、案件、建议、整改事项、任务、谈话或单位 (the entity's id)",
    "occurred_at": "北京时间，如 2025-03-01 09:30 (Beijing time unless an offset is given)",
}


def _column_note(name: str) -> str:
    if name in ENVELOPE_NOTES:
        return f"{name}: {ENVELOPE_NOTES[name]}"
    field = name.removeprefix("payload.")
    used_by = "、".join(TYPE_LABELS[t] for t in PAYLOADS if field in PAYLOADS[t].model_fields)
    return f"{name}\n用于 (used by): {used_by}"


def _write_guide(guide) -> None:
    from openpyxl.styles import Font

    guide.append(["填写说明 (how to fill in the events sheet)"])
    guide["A1"].font = Font(bold=True, size=13)
    for line in (
        "每行一个事件；事件编号已预先填好，请勿修改或复制到其他行。同一文件重复提交是安全的：已接收的事件不会重复计数。",
        "单位：填报单位的编号（如 gd.c01）。对象：事件所涉对象的编号（线索、案件、建议、整改事项、任务或谈话的编号；"
        "单位登记、隶属变更、撤销时为该单位的编号）。上级单位、承办单位同样填单位编号。",
        "发生时间按北京时间填写（如 2025-03-01 09:30）；日期字段填日期。只填写该事件类型用到的列，其余留空。",
        "更正后内容按 JSON 填写（如 {\"method\": \"talk_inquiry\"}）。",
        "提交：在平台页面点“报送文件”上传，或 jiandu submit 文件.xlsx（远程：加 --api 地址 --token 令牌）。"
        "有问题的行会列出行号、列名和原因。",
    ):
        guide.append([line])
    guide.append([])
    guide.append(["事件类型", "type", "必填列 (required)", "选填列 (optional)", "可选值 (allowed values)"])
    for cell in guide[guide.max_row]:
        cell.font = Font(bold=True)
    for event_type, model in PAYLOADS.items():
        fields = model.model_fields
        required = [FIELD_LABELS[n] for n, info in fields.items() if info.is_required()]
        optional = [FIELD_LABELS[n] for n, info in fields.items() if not info.is_required()]
        values = "；".join(f"{FIELD_LABELS[n]}：{'、'.join(value_labels(event_type, n).values())}"
                          for n in fields if choices(event_type, n))
        guide.append([TYPE_LABELS[event_type], event_type, "、".join(required) or "（无）",
                      "、".join(optional), values])
    for letter, width in zip("ABCDE", (18, 28, 40, 16, 80), strict=True):
        guide.column_dimensions[letter].width = width
