"""问题线索与审查调查 (clues and cases): sources, dispositions, cases, sanctions by rank."""

from __future__ import annotations

from dashboards import measures
from dashboards.panels import Dashboard, Panel
from dashboards.sql import label, method_label, month, rank_label, scoped
from domain.events import RANKS

CLUE_SOURCE_LABELS = {"petition": "信访举报", "supervision": "日常监督", "inspection": "巡视巡察",
                      "audit": "审计", "transfer": "有关机关移送", "assigned": "上级交办"}
CASE_TYPES = ("clue_registered", "case_filed", "case_closed", "sanction_imposed",
              "transferred_to_procuratorate")
RANK_ORDER = "[" + ", ".join(f"'{r}'" for r in RANKS) + "]"

HEADLINE = f"""
SELECT c.*, d.`处置问题线索` FROM (
    SELECT countIf(type = 'clue_registered') AS `受理问题线索`,
           countIf(type = 'case_filed') AS `立案`,
           countIf(type = 'case_closed') AS `结案`,
           uniqExactIf(person_id, type = 'sanction_imposed') AS `处分人数`,
           countIf(type = 'transferred_to_procuratorate') AS `移送检察机关`
    FROM ({scoped(CASE_TYPES)}) WHERE $__timeFilter(occurred_at)) AS c
CROSS JOIN (SELECT count() AS `处置问题线索` FROM ({measures.dispositions()})) AS d"""

SOURCES = f"""
SELECT {label('source', CLUE_SOURCE_LABELS)} AS `来源`, count() AS `问题线索`
FROM ({scoped(('clue_registered',))})
WHERE $__timeFilter(occurred_at)
GROUP BY source ORDER BY `问题线索` DESC"""

METHODS = f"""
SELECT {method_label()} AS `处置方式`, count() AS `件数`
FROM ({measures.dispositions()})
GROUP BY method ORDER BY `件数` DESC"""

CASES_BY_MONTH = f"""
SELECT {month()} AS time,
       countIf(type = 'clue_registered') AS `受理问题线索`,
       countIf(type = 'case_filed') AS `立案`,
       countIf(type = 'case_closed') AS `结案`
FROM ({scoped(('clue_registered', 'case_filed', 'case_closed'))})
WHERE $__timeFilter(occurred_at)
GROUP BY time ORDER BY time"""

# Distinct persons, as sanctions.<rank> / sanctions.party / sanctions.government count them.
SANCTIONS_BY_RANK = f"""
SELECT {rank_label()} AS `职级`,
       uniqExactIf(person_id, kind = 'party') AS `党纪处分`,
       uniqExactIf(person_id, kind = 'government') AS `政务处分`
FROM ({scoped(('sanction_imposed',))})
WHERE $__timeFilter(occurred_at)
GROUP BY rank ORDER BY indexOf({RANK_ORDER}, toString(rank))"""


def by_child() -> str:
    """Clues, cases and sanctions per child of the selected unit."""
    counts = f"""
        SELECT child_id, countIf(type = 'clue_registered') AS `受理问题线索`,
               countIf(type = 'case_filed') AS `立案`, countIf(type = 'case_closed') AS `结案`,
               uniqExactIf(person_id, type = 'sanction_imposed') AS `处分人数`
        FROM ({scoped(CASE_TYPES)}) WHERE $__timeFilter(occurred_at) GROUP BY child_id"""
    disposed = f"SELECT child_id, count() AS `处置问题线索` FROM ({measures.dispositions()}) GROUP BY child_id"
    joined = f"SELECT * FROM ({counts}) AS c FULL OUTER JOIN ({disposed}) AS d USING (child_id)"
    return measures.per_child(joined, "`立案` DESC, `受理问题线索` DESC, `单位`")


DASHBOARD = Dashboard(
    uid="jiandu-cases",
    title="问题线索与审查调查",
    description="问题线索受理与处置、立案结案、按职级的处分人数；点击单位下钻。",
    panels=(
        Panel(1, "线索与案件", "stat", HEADLINE, width=24, height=4),
        Panel(2, "问题线索来源", "barchart", SOURCES, width=12, height=9),
        Panel(3, "线索处置方式", "piechart", METHODS, width=12, height=9,
              description="每条线索取期内最后一次处置（更正后）。"),
        Panel(4, "线索与立案结案（月度）", "timeseries", CASES_BY_MONTH, width=12, height=9),
        Panel(5, "处分人数（按职级）", "barchart", SANCTIONS_BY_RANK, width=12, height=9,
              description="按人计，同一人同一类处分只计一次。"),
        Panel(6, "下级单位审查调查", "table", by_child(), width=24, height=10, drill=True),
    ),
)
