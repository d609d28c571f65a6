"""The indicator report commissions hand on: child units as rows, a total row, Chinese headers."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from domain.indicators import CATALOGUE


def build_report(by_child: dict[str, Any], total: dict[str, Any], title: str) -> bytes:
    """Render the group_by=child response plus the subtree total as an .xlsx workbook."""
    wb = Workbook()
    ws = wb.active
    ws.title = "指标汇总"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    period = f"统计期间 {by_child.get('from') or '—'} 至 {by_child.get('to') or '—'}（不含截止日），数据截至 {by_child['as_of']}"
    ws.append([period])
    ws.append(["单位", "单位编码"] + [item.label for item in CATALOGUE])
    ws.append(["", ""] + [item.id for item in CATALOGUE])
    for row in by_child["rows"]:
        ws.append([row["label"], row["key"]] + [row["indicators"].get(i.id) for i in CATALOGUE])
    total_row = total["rows"][0]
    ws.append(["合计", total_row["key"]] + [total_row["indicators"].get(i.id) for i in CATALOGUE])
    last = ws.max_row
    for cell in ws[last]:
        cell.font = Font(bold=True)
    for cell in ws[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 16
    for col in range(3, len(CATALOGUE) + 3):
        ws.column_dimensions[get_column_letter(col)].width = 12
    ws.freeze_panes = "C5"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
