"""监督任务与整改进度 (tasks and rectification): progress, overdue, suggestions on time."""

from __future__ import annotations

from dashboards import measures
from dashboards.panels import Dashboard, Panel, rate
from dashboards.sql import label

RECT_SOURCE_LABELS = {"inspection": "巡视巡察", "audit": "审计", "suggestion": "监察建议",
                      "self_check": "自查", "other": "其他"}

HEADLINE = f"""
SELECT t.*, r.* FROM (
    SELECT count() AS `监督任务`, countIf(closed = 1) AS `完成任务`,
           countIf(overdue) AS `逾期任务`,
           if(count() > 0, round(avg(progress) + 1e-9, 1), NULL) AS `平均进度(%)`
    FROM ({measures.tasks()})) AS t
CROSS JOIN (
    SELECT count() AS `整改事项`, countIf(closed = 1) AS `完成整改`, countIf(overdue) AS `逾期未整改`
    FROM ({measures.rectifications()})) AS r"""

TASKS_BY_CHILD = measures.per_child(f"""
    SELECT child_id, round(avg(progress) + 1e-9, 1) AS `平均进度(%)`, countIf(overdue) AS `逾期任务`
    FROM ({measures.tasks()}) GROUP BY child_id""",
    "`逾期任务` DESC, `平均进度(%)` DESC NULLS LAST, `单位`")

TASKS_CHART = f"""
SELECT child_id, `单位`, `平均进度(%)`, `逾期任务` FROM ({TASKS_BY_CHILD})
WHERE `平均进度(%)` IS NOT NULL OR `逾期任务` > 0
ORDER BY `逾期任务` DESC, `平均进度(%)` DESC NULLS LAST, `单位` LIMIT 30"""

SUGGESTIONS_BY_CHILD = measures.per_child(f"""
    SELECT child_id, count() AS `到期建议`, countIf(on_time) AS `按期办结`,
           {rate('countIf(on_time)', 'count()')} AS `按期办结率(%)`
    FROM ({measures.suggestions()}) GROUP BY child_id""",
    "`到期建议` DESC, `单位`")

SUGGESTIONS_CHART = f"""
SELECT child_id, `单位`, `到期建议`, `按期办结` FROM ({SUGGESTIONS_BY_CHILD})
WHERE `到期建议` > 0 ORDER BY `到期建议` DESC, `单位` LIMIT 30"""

RECTIFICATION_BY_CHILD = measures.per_child(f"""
    SELECT child_id, count() AS `整改事项`, countIf(closed = 1) AS `完成整改`,
           countIf(overdue) AS `逾期未整改`,
           {rate('countIf(closed = 1)', 'count()')} AS `整改完成率(%)`
    FROM ({measures.rectifications()}) GROUP BY child_id""",
    "`逾期未整改` DESC, `整改事项` DESC, `单位`")

RECTIFICATION_SOURCES = f"""
SELECT {label('source', RECT_SOURCE_LABELS)} AS `来源`, count() AS `整改事项`
FROM ({measures.rectifications()})
GROUP BY source ORDER BY `整改事项` DESC"""

DASHBOARD = Dashboard(
    uid="jiandu-tasks",
    title="监督任务与整改进度",
    description="政治监督任务台账进度与逾期、监察建议按期办结、整改事项；点击单位下钻。",
    panels=(
        Panel(1, "任务与整改", "stat", HEADLINE, width=24, height=4,
              description="逾期 = 截至时点仍未完成且已过期限。"),
        Panel(2, "各单位任务进度与逾期", "barchart", TASKS_CHART, width=12, height=10,
              drill=True, description="任务按承办单位统计；进度取最近一次报告，完成计100%。"),
        Panel(3, "监察建议按期办结", "barchart", SUGGESTIONS_CHART, width=12, height=10,
              drill=True, description="期限在所选时段内的建议；到期前办结为按期。"),
        Panel(4, "整改进度（按单位）", "table", RECTIFICATION_BY_CHILD, width=16, height=10,
              drill=True),
        Panel(5, "整改事项来源", "piechart", RECTIFICATION_SOURCES, width=8, height=10),
        Panel(6, "监察建议（按单位）", "table", SUGGESTIONS_BY_CHILD, width=24, height=10,
              drill=True),
    ),
)
