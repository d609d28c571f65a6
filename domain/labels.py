"""What people read and type in spreadsheets: the Chinese names of event types, payload
fields and their values, and the way back from a name to the id the contract uses.

The ledger only ever holds the ids (`clue_disposed`, `talk_inquiry`); a label is read from a
file and translated before the event is validated, so a label never reaches a hash."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from domain.events import PAYLOADS

TYPE_LABELS = {
    "unit_registered": "单位登记", "unit_moved": "单位隶属变更", "unit_retired": "单位撤销",
    "petition_received": "受理信访举报", "clue_registered": "受理问题线索",
    "clue_disposed": "处置问题线索", "case_filed": "立案", "case_closed": "结案",
    "sanction_imposed": "给予处分", "four_forms_applied": "运用四种形态",
    "transferred_to_procuratorate": "移送检察机关", "suggestion_issued": "制发纪检监察建议",
    "suggestion_replied": "纪检监察建议回复", "suggestion_closed": "纪检监察建议办结",
    "rectification_opened": "整改事项立项", "rectification_closed": "整改事项销号",
    "task_assigned": "交办任务", "task_progress_reported": "报告任务进展", "task_completed": "任务完成",
    "talk_conducted": "开展谈话", "integrity_file_updated": "更新廉政档案",
    "event_corrected": "更正事件", "event_retracted": "撤回事件",
}
ENVELOPE_LABELS = {"event_id": "事件编号", "type": "事件类型", "schema_version": "版本",
                   "unit_id": "单位", "subject_id": "对象", "occurred_at": "发生时间"}
FIELD_LABELS = {
    "name": "名称", "level": "层级", "parent_id": "上级单位", "effective_from": "生效日期",
    "channel": "信访渠道", "category": "举报类别", "source": "来源", "subject_rank": "对象职级",
    "method": "处置方式", "person_id": "人员编号", "kind": "种类", "rank": "职级", "form": "形态",
    "measure": "具体措施", "target_unit": "建议对象单位", "due_date": "办理期限",
    "responsible": "责任单位或责任人", "title": "任务名称", "responsible_leader": "责任领导",
    "assignee_unit": "承办单位", "standard": "完成标准", "percent": "进度百分比", "note": "进展说明",
    "section": "档案栏目", "corrects": "被更正事件编号", "payload": "更正后内容",
    "retracts": "被撤回事件编号", "reason": "撤回原因",
}

RANK_LABELS = {"provincial": "省部级", "bureau": "厅局级", "county": "县处级", "township": "乡科级",
               "general": "一般干部", "village": "村干部", "other": "其他"}
METHOD_LABELS = {"talk_inquiry": "谈话函询", "preliminary_verification": "初步核实",
                 "shelved": "暂存待查", "concluded": "予以了结"}
TALK_LABELS = {"reminder": "提醒谈话", "admonition": "诫勉谈话", "supervision": "监督谈话",
               "integrity": "廉政谈话"}
LEVEL_LABELS = {"province": "省级", "city": "市级", "county": "县级", "township": "乡镇",
                "stationed_group": "派驻机构"}

# By field name; `kind` and `source` mean different things in different event types.
_BY_FIELD: dict[str, dict[Any, str]] = {
    "level": LEVEL_LABELS,
    "channel": {"letter": "来信", "visit": "来访", "phone": "电话", "online": "网络", "other": "其他"},
    "category": {"accusation": "检举控告", "criticism": "批评建议", "appeal": "申诉",
                 "out_of_scope": "不属于受理范围", "no_substance": "无实质内容"},
    "subject_rank": RANK_LABELS, "rank": RANK_LABELS, "method": METHOD_LABELS,
    "form": {1: "第一种形态", 2: "第二种形态", 3: "第三种形态", 4: "第四种形态"},
}
_BY_TYPE: dict[tuple[str, str], dict[Any, str]] = {
    ("clue_registered", "source"): {"petition": "信访举报", "supervision": "监督检查",
                                    "inspection": "巡视巡察", "audit": "审计", "transfer": "移送",
                                    "assigned": "上级交办"},
    ("rectification_opened", "source"): {"inspection": "巡视巡察", "audit": "审计",
                                         "suggestion": "纪检监察建议", "self_check": "自查",
                                         "other": "其他"},
    ("sanction_imposed", "kind"): {"party": "党纪处分", "government": "政务处分"},
    ("suggestion_issued", "kind"): {"discipline": "纪律检查建议", "supervision": "监察建议",
                                    "combined": "纪检监察建议"},
    ("talk_conducted", "kind"): TALK_LABELS,
}


def choices(event_type: str, field: str) -> tuple[Any, ...]:
    """Return the values a payload field allows, in the contract's order ((), if any goes)."""
    info = PAYLOADS[event_type].model_fields.get(field) if event_type in PAYLOADS else None
    annotation = info.annotation if info else None
    while get_origin(annotation) is not Literal and get_args(annotation):  # Rank | None, Annotated
        annotation = next((a for a in get_args(annotation) if a is not type(None)), None)
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def value_labels(event_type: str, field: str) -> dict[Any, str]:
    """Return {value: label} for a field with a fixed set of values ({} for free text)."""
    if not choices(event_type, field):
        return {}
    return _BY_TYPE.get((event_type, field)) or _BY_FIELD.get(field, {})


def from_label(event_type: str, field: str, text: str) -> Any:
    """Return the value a cell names, by its id or its label; `text` itself when neither."""
    for value, label in value_labels(event_type, field).items():
        if text in (label, str(value)):
            return value
    return text


def allowed(event_type: str, field: str) -> str:
    """Say which values a field takes, labels first: 来信 (letter)、来访 (visit)…"""
    return "、".join(f"{label} ({value})" for value, label in value_labels(event_type, field).items())


def column_label(field: str) -> str:
    """The Chinese header of a problem's field (payload.method is 处置方式); else the field."""
    name = field.removeprefix("payload.")
    return (ENVELOPE_LABELS if name == field else FIELD_LABELS).get(name, field)


TYPE_BY_LABEL = {label: event_type for event_type, label in TYPE_LABELS.items()}
