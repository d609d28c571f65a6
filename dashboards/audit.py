"""数据报送与审计 (ingest and audit): freshness, timeliness, rejects, hash-chain status."""

from __future__ import annotations

from dashboards import measures
from dashboards.panels import Dashboard, Panel
from dashboards.sql import AS_OF, in_scope, scope, tree

LEDGER = (f"SELECT unit_id, seq, occurred_at, recorded_at FROM ledger "
          f"WHERE {in_scope()} AND recorded_at <= {AS_OF}")

# now() - max(recorded_at): how far behind the newest ledger row of the subtree is.
FRESHNESS = f"""
SELECT if(count() > 0, dateDiff('millisecond', max(recorded_at), now64(3)) / 1000, NULL)
       AS `数据新鲜度`
FROM ledger WHERE {in_scope()}"""

VOLUME = f"""
SELECT l.*, d.* FROM (
    SELECT count() AS `已入账事件`, uniqExact(unit_id) AS `报送单位`,
           countIf(recorded_at >= now64(3) - INTERVAL 1 HOUR) AS `近一小时入账`
    FROM ({LEDGER})) AS l
CROSS JOIN (SELECT count() AS `拒收记录` FROM dlq FINAL
            WHERE {in_scope()} AND rejected_at <= {AS_OF}) AS d"""

# A fixed recent window rather than the picker's: this panel watches the pipeline live.
RATE = f"""
SELECT toStartOfMinute(recorded_at) AS time, count() AS `入账事件`
FROM ledger WHERE {in_scope()} AND recorded_at >= now64(3) - INTERVAL 1 HOUR
GROUP BY time ORDER BY time"""

# Submission timeliness (报送及时性): recorded_at - occurred_at, events occurred in the range.
TIMELINESS = measures.per_child(f"""
    SELECT s.child_id AS child_id, count() AS `事件数`,
           round(avg(dateDiff('second', l.occurred_at, l.recorded_at)) / 3600, 1) AS `平均时延(小时)`,
           round(quantile(0.95)(dateDiff('second', l.occurred_at, l.recorded_at)) / 3600, 1)
               AS `P95时延(小时)`,
           max(l.recorded_at) AS `最近入账`
    FROM ledger AS l INNER JOIN ({scope()}) AS s ON l.unit_id = s.unit_id
    WHERE $__timeFilter(l.occurred_at) AND l.recorded_at <= {AS_OF}
    GROUP BY s.child_id""", "`事件数` DESC, `单位`")

REJECTS = f"""
SELECT rejected_at AS `拒收时间`, unit_id AS `单位代码`, event_id AS `事件ID`,
       field AS `字段`, reason AS `原因`
FROM dlq FINAL WHERE {in_scope()} AND rejected_at <= {AS_OF}
ORDER BY rejected_at DESC LIMIT 100"""

REJECT_REASONS = f"""
SELECT if(field = '', '(记录)', field) AS `字段`, count() AS `拒收记录`
FROM dlq FINAL WHERE {in_scope()} AND rejected_at <= {AS_OF}
GROUP BY field ORDER BY `拒收记录` DESC LIMIT 20"""

# Per unit, seq runs 1..n without gaps or repeats exactly when max(seq) = count() = distinct seqs.
CHAINS = f"""
SELECT t.name AS `单位`, c.unit_id AS `单位代码`, c.n AS `事件数`, c.top AS `最大序号`,
       if(c.top = c.n AND c.distinct_seq = c.n, '完整', '断裂') AS `哈希链`
FROM (SELECT unit_id, count() AS n, max(seq) AS top, uniqExact(seq) AS distinct_seq
      FROM ({LEDGER}) GROUP BY unit_id) AS c
LEFT JOIN ({tree()}) AS t ON t.unit_id = c.unit_id
ORDER BY `哈希链` = '完整', `事件数` DESC LIMIT 200"""

CHAIN_SUMMARY = f"""
SELECT countIf(top = n AND distinct_seq = n) AS `链完整单位`,
       countIf(NOT (top = n AND distinct_seq = n)) AS `链断裂单位`
FROM (SELECT unit_id, count() AS n, max(seq) AS top, uniqExact(seq) AS distinct_seq
      FROM ({LEDGER}) GROUP BY unit_id)"""

DASHBOARD = Dashboard(
    uid="jiandu-audit",
    title="数据报送与审计",
    description="入账新鲜度、各单位报送及时性、拒收记录与原因、逐单位哈希链状态。",
    panels=(
        Panel(1, "数据新鲜度", "stat", FRESHNESS, unit="s", width=6, height=4,
              description="当前时间与本级及下级最新入账时间之差。"),
        Panel(2, "入账与拒收", "stat", VOLUME, width=12, height=4),
        Panel(3, "哈希链概况", "stat", CHAIN_SUMMARY, width=6, height=4,
              description="逐单位检查序号：最大序号 = 事件数 且无重复。完整校验见 jiandu verify。"),
        Panel(4, "入账速率（近一小时，每分钟）", "timeseries", RATE, width=12, height=8),
        Panel(5, "拒收原因（按字段）", "barchart", REJECT_REASONS, width=12, height=8),
        Panel(6, "各单位报送及时性", "table", TIMELINESS, width=24, height=10, drill=True,
              description="时延 = 入账时间 − 发生时间。"),
        Panel(7, "拒收记录（DLQ）", "table", REJECTS, width=12, height=10),
        Panel(8, "哈希链状态（逐单位）", "table", CHAINS, width=12, height=10),
    ),
)
