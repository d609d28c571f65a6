"""全省总览 (overview): headline figures, monthly trend, four forms, child-unit ranking."""

from __future__ import annotations

from dashboards import measures
from dashboards.panels import Dashboard, Panel, rate
from dashboards.sql import label, month, scoped

FORM_LABELS = {"1": "第一种形态", "2": "第二种形态", "3": "第三种形态", "4": "第四种形态"}
HEADLINE_TYPES = ("petition_received", "clue_registered", "case_filed", "case_closed",
                  "sanction_imposed", "four_forms_applied")

HEADLINE = f"""
SELECT countIf(type = 'petition_received') AS `受理信访举报`,
       countIf(type = 'clue_registered') AS `受理问题线索`,
       countIf(type = 'case_filed') AS `立案`,
       countIf(type = 'case_closed') AS `结案`,
       uniqExactIf(person_id, type = 'sanction_imposed') AS `处分人数`,
       countIf(type = 'four_forms_applied') AS `四种形态人次`
FROM ({scoped(HEADLINE_TYPES)})
WHERE $__timeFilter(occurred_at)"""

TREND = f"""
SELECT {month()} AS time,
       countIf(type = 'petition_received') AS `信访举报`,
       countIf(type = 'clue_registered') AS `问题线索`,
       countIf(type = 'case_filed') AS `立案`,
       countIf(type = 'four_forms_applied') AS `四种形态`
FROM ({scoped(HEADLINE_TYPES)})
WHERE $__timeFilter(occurred_at)
GROUP BY time ORDER BY time"""

FOUR_FORMS = f"""
SELECT {label('form', FORM_LABELS)} AS `形态`, count() AS `人次`
FROM ({scoped(('four_forms_applied',))})
WHERE $__timeFilter(occurred_at)
GROUP BY form ORDER BY form"""


ORDER = "`任务完成率` DESC NULLS LAST, `按期办结率` DESC NULLS LAST, `单位`"


def ranking() -> str:
    """Children ranked by task completion, then suggestions closed on time."""
    task_rates = f"""
        SELECT child_id, count() AS `监督任务`,
               {rate('countIf(closed = 1)', 'count()')} AS `任务完成率`
        FROM ({measures.tasks()}) GROUP BY child_id"""
    on_time = f"""
        SELECT child_id, count() AS `到期建议`,
               {rate('countIf(on_time)', 'count()')} AS `按期办结率`
        FROM ({measures.suggestions()}) GROUP BY child_id"""
    joined = f"""
        SELECT * FROM ({task_rates}) AS t FULL OUTER JOIN ({on_time}) AS s USING (child_id)"""
    return measures.per_child(joined, ORDER)


RANKING = ranking()


def top(column: str) -> str:
    """The 20 children highest on `column`, for a bar chart."""
    return f"""
SELECT child_id, `单位`, `{column}` FROM ({RANKING})
WHERE `{column}` IS NOT NULL ORDER BY `{column}` DESC, `单位` LIMIT 20"""


DASHBOARD = Dashboard(
    uid="jiandu-overview",
    title="全省总览",
    description="核心指标、月度趋势、四种形态与下级单位排名；点击单位下钻。",
    panels=(
        Panel(1, "核心指标", "stat", HEADLINE, width=24, height=4),
        Panel(2, "月度趋势", "timeseries", TREND, width=14, height=9),
        Panel(3, "四种形态占比", "piechart", FOUR_FORMS, width=10, height=9),
        Panel(4, "任务完成率（下级单位前20）", "barchart", top("任务完成率"), unit="percent",
              width=12, height=11, drill=True,
              description="任务完成率 = 已完成 / 期内交办（按承办单位）。"),
        Panel(5, "按期办结率（下级单位前20）", "barchart", top("按期办结率"), unit="percent",
              width=12, height=11, drill=True,
              description="按期办结率 = 到期前办结的监察建议 / 期内到期的监察建议。"),
        Panel(6, "下级单位排名", "table", RANKING, width=24, height=11, drill=True,
              description="按任务完成率、按期办结率排序；点击单位名称下钻。"),
    ),
)
