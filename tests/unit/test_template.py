"""`jiandu template`'s workbook, filled in the way a clerk would, read back by the importer:
Chinese headers, type names and values become the contract's ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from domain.events import PAYLOADS
from domain.labels import ENVELOPE_LABELS, FIELD_LABELS, TYPE_LABELS, choices, value_labels
from jiandu.cli import main
from producers.importers import read_events
from producers.template import payload_columns, uuid7, write_template
from tests.harness import fill_in


def test_every_type_field_and_fixed_value_has_a_chinese_label() -> None:
    assert set(TYPE_LABELS) == set(PAYLOADS)
    assert set(payload_columns()) == set(FIELD_LABELS)
    for event_type, model in PAYLOADS.items():
        for name in model.model_fields:
            if options := choices(event_type, name):
                assert set(value_labels(event_type, name)) == set(options), (event_type, name)


def test_labels_name_one_thing_each() -> None:
    headers = [*ENVELOPE_LABELS.values(), *FIELD_LABELS.values()]
    assert len(set(headers)) == len(headers)
    assert len(set(TYPE_LABELS.values())) == len(TYPE_LABELS)
    for event_type, model in PAYLOADS.items():
        for name in model.model_fields:
            labels = list(value_labels(event_type, name).values())
            assert len(set(labels)) == len(labels), (event_type, name)


def test_uuid7_is_version_7_and_ordered_by_time() -> None:
    first, second = uuid7(), uuid7()
    assert first[14] == "7" and first[19] in "89ab"
    assert first[:8] <= second[:8]  # the leading 48 bits are milliseconds
    assert len({uuid7() for _ in range(1000)}) == 1000


def test_a_filled_template_reads_back_as_events_with_contract_ids(tmp_path: Path) -> None:
    path = tmp_path / "报送.xlsx"
    assert main(["template", str(path), "--rows", "50"]) == 0
    when = dt.datetime(2025, 3, 1, 9, 30)
    fill_in(path, [
        {"事件类型": "处置问题线索", "单位": "gd.c01", "对象": "clue-1", "发生时间": when, "处置方式": "谈话函询"},
        {"事件类型": "运用四种形态", "单位": "gd.c01", "对象": "case-1", "发生时间": when,
         "人员编号": "p-1", "形态": "第二种形态", "具体措施": "诫勉"},
        {"事件类型": "开展谈话", "单位": "gd.c01", "对象": "talk-1", "发生时间": when,
         "种类": "诫勉谈话", "人员编号": "p-2"},
        {"事件类型": "交办任务", "单位": "gd.c01", "对象": "task-1", "发生时间": when, "任务名称": "专项整治",
         "责任领导": "王某", "承办单位": "gd.c01.k01", "办理期限": dt.datetime(2025, 6, 30), "完成标准": "全部整改"},
        {"事件类型": "报告任务进展", "单位": "gd.c01", "对象": "task-1", "发生时间": when, "进度百分比": 37.5},
    ])
    result = read_events(path)
    assert result.problems == []
    assert [(e.type, e.payload.model_dump(exclude_none=True)) for e in result.events] == [
        ("clue_disposed", {"method": "talk_inquiry"}),
        ("four_forms_applied", {"person_id": "p-1", "form": 2, "measure": "诫勉"}),
        ("talk_conducted", {"kind": "admonition", "person_id": "p-2"}),
        ("task_assigned", {"title": "专项整治", "responsible_leader": "王某", "assignee_unit": "gd.c01.k01",
                           "due_date": dt.date(2025, 6, 30), "standard": "全部整改"}),
        ("task_progress_reported", {"percent": 37.5}),
    ]
    assert result.rows == [2, 3, 4, 5, 6]  # the 45 numbered rows left empty are not events
    assert result.events[0].occurred_at == dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.UTC)  # Beijing time
    book = openpyxl.load_workbook(path)
    assert {str(e.event_id) for e in result.events} == {book.worksheets[0].cell(r, 1).value for r in range(2, 7)}


def test_a_value_that_is_not_one_of_the_field_s_labels_names_them(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path, rows=5)
    when = dt.datetime(2025, 3, 1, 9, 30)
    fill_in(path, [
        {"事件类型": "开展谈话", "单位": "u", "对象": "t-1", "发生时间": when, "种类": "党纪处分", "人员编号": "p"},
        {"事件类型": "处置问题线索", "单位": "u", "对象": "c-1", "发生时间": when, "处置方式": "talk_inquiry"},
    ])
    result = read_events(path)
    assert [(p.row, p.field) for p in result.problems] == [(2, "payload.kind")]
    assert "'党纪处分'" in result.problems[0].message and "诫勉谈话 (admonition)" in result.problems[0].message
    assert [e.payload.method for e in result.events] == ["talk_inquiry"]  # the id itself still reads


def test_the_guide_lists_each_type_with_its_required_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path, rows=1)
    guide = {row[1]: row for row in openpyxl.load_workbook(path)["说明 guide"].iter_rows(values_only=True)
             if row[1] in PAYLOADS}
    assert set(guide) == set(PAYLOADS)
    assert guide["task_assigned"][2] == "任务名称、责任领导、承办单位、办理期限、完成标准"
    assert guide["four_forms_applied"][3] == "具体措施"


def test_a_template_not_named_xlsx_is_one_plain_error(tmp_path: Path, capsys) -> None:
    assert main(["template", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert ".xlsx" in err and "Traceback" not in err
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("rows", ["0", "100001", "ten"])
def test_a_row_count_out_of_range_is_refused_by_name(tmp_path: Path, capsys, rows) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["template", str(tmp_path / "t.xlsx"), "--rows", rows])
    assert exit_.value.code == 2 and "--rows" in capsys.readouterr().err
    assert not (tmp_path / "t.xlsx").exists()
