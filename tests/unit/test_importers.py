"""Reading event files for `jiandu submit FILE`."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers import importers
from producers.importers import FileImportError, ImportResult, chunks, read_events

HEADER = "event_id,type,unit_id,subject_id,occurred_at,payload.channel,payload.category"
AT = "2025-03-01T09:00:00+08:00"


def _id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def _petition(n: int, **overrides: object) -> dict:
    event = {"event_id": _id(n), "type": "petition_received", "unit_id": "gd.c01",
             "subject_id": f"pet-{n}", "occurred_at": AT,
             "payload": {"channel": "letter", "category": "accusation"}}
    return {**event, **overrides}


def _csv_row(n: int, channel: str = "letter") -> str:
    return f"{_id(n)},petition_received,gd.c01,pet-{n},{AT},{channel},accusation"


def _write_csv(path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def _write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def test_jsonl_events_are_read_in_order(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(_petition(n)) for n in (1, 2, 3)), encoding="utf-8")
    result = read_events(path)
    assert result.problems == []
    assert [str(e.event_id) for e in result.events] == [_id(1), _id(2), _id(3)]
    assert result.note is None


def test_jsonl_bad_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(_petition(1)), "", "{not json", json.dumps(_petition(2, unit_id="有 空格"))]
    path.write_text("\n".join(lines), encoding="utf-8")
    result = read_events(path)
    assert [e.subject_id for e in result.events] == ["pet-1"]
    assert [(p.row, p.field) for p in result.problems] == [(3, "(line)"), (4, "unit_id")]
    assert result.problems[1].event_id == _id(2)


def test_json_accepts_a_list_or_an_events_object(tmp_path: Path) -> None:
    listed, wrapped = tmp_path / "a.json", tmp_path / "b.json"
    listed.write_text(json.dumps([_petition(1), _petition(2)]), encoding="utf-8")
    wrapped.write_text(json.dumps({"events": [_petition(3)]}), encoding="utf-8")
    assert len(read_events(listed).events) == 2
    assert [e.subject_id for e in read_events(wrapped).events] == ["pet-3"]


def test_json_of_the_wrong_shape_is_a_file_problem(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"event": 1}', encoding="utf-8")
    result = read_events(path)
    assert result.events == []
    assert [(p.row, p.field) for p in result.problems] == [(0, "(file)")]


def test_csv_bad_row_is_reported_with_its_row_number(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "e.csv", HEADER, _csv_row(1), _csv_row(2, channel="fax"), _csv_row(3))
    result = read_events(path)
    assert [e.subject_id for e in result.events] == ["pet-1", "pet-3"]
    assert [(p.row, p.event_id, p.field) for p in result.problems] == [
        (3, _id(2), "payload.channel")]


def test_csv_payload_cells_get_the_model_types(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "e.csv",
        "event_id,type,unit_id,subject_id,occurred_at,payload.person_id,payload.form,payload.percent",
        f"{_id(1)},four_forms_applied,gd.c01,p-1,{AT},p-1,2,",
        f"{_id(2)},task_progress_reported,gd.c01,t-1,{AT},,,37.5")
    result = read_events(path)
    assert result.problems == []
    assert result.events[0].payload.form == 2
    assert result.events[1].payload.percent == 37.5


def test_csv_payload_column_holds_json(tmp_path: Path) -> None:
    payload = json.dumps({"channel": "visit", "category": "appeal"}).replace('"', '""')
    path = _write_csv(tmp_path / "e.csv", "event_id,type,unit_id,subject_id,occurred_at,payload",
                      f'{_id(1)},petition_received,gd.c01,pet-1,{AT},"{payload}"',
                      f"{_id(2)},case_closed,gd.c01,case-1,{AT},")
    result = read_events(path)
    assert result.problems == []
    assert result.events[0].payload.channel == "visit"
    assert result.events[1].type == "case_closed"


def test_gbk_csv_is_decoded(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "e.csv", "事件编号,事件类型,单位,对象,发生时间,payload.person_id,"
                      "payload.section", f"{_id(1)},integrity_file_updated,gd.c01,p-1,{AT},p-1,家庭成员情况",
                      encoding="gbk")
    result = read_events(path)
    assert result.problems == []
    assert result.events[0].payload.section == "家庭成员情况"
    assert result.note is not None and "GB18030" in result.note


def test_gbk_csv_with_chinese_names_throughout_reads_as_contract_ids(tmp_path: Path) -> None:
    """The template's workbook saved as CSV from Chinese Excel: headers, types and values in
    Chinese, an id-only row left over from the numbered rows, numbers written as 2.0."""
    path = _write_csv(tmp_path / "e.csv", "事件编号,事件类型,单位,对象,发生时间,信访渠道,举报类别,人员编号,形态",
                      f"{_id(1)},受理信访举报,gd.c01,pet-1,{AT},来访,检举控告,,",
                      f"{_id(2)},运用四种形态,gd.c01,case-1,{AT},,,p-1,2.0",
                      f"{_id(3)},,,,,,,,",
                      f"{_id(4)},运用四种形态,gd.c01,case-1,{AT},,,p-2,第五种形态",
                      f"{_id(5)},运用四种形态,gd.c01,case-1,{AT},,,,第五种形态", encoding="gbk")
    result = read_events(path)
    assert [(e.type, e.payload.model_dump(exclude_none=True)) for e in result.events] == [
        ("petition_received", {"channel": "visit", "category": "accusation"}),
        ("four_forms_applied", {"person_id": "p-1", "form": 2}),
    ]
    # Row 6's missing person is found as well as its form: the whole file is fixed in one pass.
    assert [(p.row, p.field) for p in result.problems] == [
        (5, "payload.form"), (6, "payload.form"), (6, "payload.person_id")]
    assert "第一种形态 (1)" in result.problems[0].message


def test_csv_times_as_excel_writes_them_are_beijing_time_and_iso_without_offset_is_refused(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "e.csv", "事件编号,事件类型,单位,对象,发生时间,办理期限,建议对象单位,种类",
                      f"{_id(1)},制发纪检监察建议,gd.c01,s-1,2025/3/1 9:30,2025/6/30,某局,监察建议",
                      f"{_id(2)},制发纪检监察建议,gd.c01,s-2,2025-3-1,2025-06-30,某局,监察建议",
                      f"{_id(3)},制发纪检监察建议,gd.c01,s-3,2025-03-01T09:30:00,2025/6/30,某局,监察建议",
                      f"{_id(4)},制发纪检监察建议,gd.c01,s-4,2025/2/30 9:30,2025/6/30,某局,监察建议")
    result = read_events(path)
    assert [(e.occurred_at, e.payload.due_date) for e in result.events] == [
        (dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.UTC), dt.date(2025, 6, 30)),
        (dt.datetime(2025, 2, 28, 16, 0, tzinfo=dt.UTC), dt.date(2025, 6, 30)),
    ]
    assert [(p.row, p.field) for p in result.problems] == [(4, "occurred_at"), (5, "occurred_at")]
    assert "timezone offset required" in result.problems[0].message


def test_utf8_bom_csv_needs_no_note(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "e.csv", HEADER, _csv_row(1), encoding="utf-8-sig")
    result = read_events(path)
    assert len(result.events) == 1 and result.problems == [] and result.note is None


def test_undecodable_file_is_one_problem_at_row_zero(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"\xff\xfe" + "事件".encode("utf-16-le"))
    result = read_events(path)
    assert result.events == []
    assert len(result.problems) == 1 and result.problems[0].row == 0
    assert "encoding" in result.problems[0].message


def test_unknown_and_missing_columns_are_reported(tmp_path: Path) -> None:
    unknown = read_events(_write_csv(tmp_path / "a.csv", HEADER + ",remark", _csv_row(1) + ",hi"))
    assert [(p.row, p.field) for p in unknown.problems] == [(1, "remark")]
    missing = read_events(_write_csv(tmp_path / "b.csv", "event_id,type,unit_id", f"{_id(1)},x,y"))
    assert missing.events == []
    assert {p.field for p in missing.problems} == {"subject_id", "occurred_at"}


def test_duplicate_event_id_within_the_file_is_reported(tmp_path: Path) -> None:
    result = read_events(_write_csv(tmp_path / "e.csv", HEADER, _csv_row(1), _csv_row(2), _csv_row(1)))
    assert len(result.events) == 2
    [problem] = result.problems
    assert (problem.row, problem.event_id, problem.field) == (4, _id(1), "event_id")
    assert "2" in problem.message


def test_blank_rows_are_skipped_but_rows_keep_their_numbers(tmp_path: Path) -> None:
    result = read_events(_write_csv(tmp_path / "e.csv", HEADER, "", _csv_row(1, channel="x")))
    assert [p.row for p in result.problems] == [3]


@pytest.mark.parametrize("name", ["e.csv", "e.jsonl", "e.json"])
def test_empty_file_is_a_problem(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    result = read_events(path)
    assert result.events == [] and [p.row for p in result.problems] == [0]


def test_header_only_csv_reports_no_events(tmp_path: Path) -> None:
    result = read_events(_write_csv(tmp_path / "e.csv", HEADER))
    assert result.events == [] and len(result.problems) == 1


def test_overlong_cell_is_a_row_problem(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "e.csv", HEADER + ",payload.note", _csv_row(1) + "," + "x" * 10_001)
    result = read_events(path)
    assert result.events == []
    assert [(p.row, p.field) for p in result.problems] == [(2, "payload.note")]


def test_too_many_rows_stops_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_ROWS", 2)
    result = read_events(_write_csv(tmp_path / "e.csv", HEADER, *(_csv_row(n) for n in range(1, 6))))
    assert len(result.events) == 2
    assert [(p.row, p.field) for p in result.problems] == [(4, "(file)")]


def test_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_BYTES", 10)
    with pytest.raises(FileImportError, match="MB"):
        read_events(_write_csv(tmp_path / "e.csv", HEADER, _csv_row(1)))


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileImportError, match="no such file"):
        read_events(tmp_path / "absent.csv")


def test_unsupported_extension_names_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(FileImportError) as info:
        read_events(path)
    assert all(ext in str(info.value) for ext in (".jsonl", ".json", ".csv", ".xlsx"))


def test_xlsx_numbers_are_numbers(tmp_path: Path) -> None:
    path = _write_xlsx(tmp_path / "e.xlsx", [
        ["event_id", "type", "unit_id", "subject_id", "occurred_at", "payload.person_id",
         "payload.form", "payload.percent", "schema_version"],
        [_id(1), "four_forms_applied", "gd.c01", "p-1", AT, "p-1", 3.0, None, 1],
        [_id(2), "task_progress_reported", "gd.c01", "t-1", AT, None, None, 37.5, None],
        [_id(3), "task_progress_reported", 1001, "t-1", AT, None, None, 50, None]])
    result = read_events(path)
    assert result.problems == []
    form, half, whole = (e.payload for e in result.events)
    assert form.form == 3 and isinstance(form.form, int)
    assert (half.percent, whole.percent) == (37.5, 50.0)
    assert result.events[2].unit_id == "1001"


def test_xlsx_naive_time_is_shanghai_and_dates_are_dates(tmp_path: Path) -> None:
    path = _write_xlsx(tmp_path / "e.xlsx", [
        ["事件编号", "事件类型", "单位", "对象", "发生时间", "payload.kind", "payload.target_unit",
         "payload.due_date"],
        [_id(1), "suggestion_issued", "gd.c01", "s-1", dt.datetime(2025, 3, 1, 10, 30), "discipline",
         "财政局", dt.datetime(2025, 4, 15)],
        [_id(2), "suggestion_issued", "gd.c01", "s-2", dt.datetime(2025, 3, 2), "combined", "教育局",
         dt.date(2025, 5, 1)]])
    result = read_events(path)
    assert result.problems == []
    first, second = result.events
    assert first.occurred_at == dt.datetime(2025, 3, 1, 2, 30, tzinfo=dt.UTC)
    assert second.occurred_at == dt.datetime(2025, 3, 1, 16, 0, tzinfo=dt.UTC)
    assert (first.payload.due_date, second.payload.due_date) == (dt.date(2025, 4, 15),
                                                                  dt.date(2025, 5, 1))


def test_xlsx_bad_row_is_reported_with_its_row_number(tmp_path: Path) -> None:
    path = _write_xlsx(tmp_path / "e.xlsx", [
        ["event_id", "type", "unit_id", "subject_id", "occurred_at"],
        [_id(1), "case_closed", "gd.c01", "case-1", AT],
        [None] * 5,
        [_id(2), "case_closed", "gd.c01", "case-2", "yesterday"]])
    result = read_events(path)
    assert [e.subject_id for e in result.events] == ["case-1"]
    assert [(p.row, p.event_id, p.field) for p in result.problems] == [(4, _id(2), "occurred_at")]


def test_file_that_is_not_a_workbook_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "e.xlsx"
    path.write_bytes(b"PK\x03\x04 definitely not a workbook")
    result = read_events(path)
    assert result.events == [] and [p.row for p in result.problems] == [0]


def test_chunks_split_in_order() -> None:
    parts = list(chunks(list(range(25)), size=10))  # type: ignore[arg-type]
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [x for p in parts for x in p] == list(range(25))
    assert list(chunks([])) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=400),
                      st.text(max_size=300).map(lambda t: (HEADER + "\n" + t).encode("utf-8"))),
       suffix=st.sampled_from([".csv", ".jsonl", ".json"]))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    result = read_events(path)
    assert isinstance(result, ImportResult)
    assert result.events or result.problems  # something is always said about the file


def test_a_long_file_reports_the_rows_read_as_it_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "PROGRESS_ROWS", 1_000)
    path = _write_csv(tmp_path / "long.csv", HEADER, *(_csv_row(n) for n in range(3_500)))
    heard: list[int] = []
    result = read_events(path, progress=heard.append)
    assert len(result.events) == 3_500 and not result.problems
    assert heard == [1_000, 2_000, 3_000]  # file rows (the header is row 1)
