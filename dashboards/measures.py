"""Row sets several panels aggregate: tasks, suggestions, rectification items, dispositions.

Each follows the API's definition of the matching indicator (DESIGN §7), over the current
hierarchy (see `dashboards.sql`). Every row carries `child_id` for per-unit rollups.
"""

from __future__ import annotations

from dashboards.sql import AS_OF_DAY, TZ, child_names, closures, due_in_range, known, scope, scoped


def tasks() -> str:
    """Tasks assigned in the range, attributed to the assignee unit (监督任务)."""
    progress = (f"SELECT subject_id, argMax(percent, (occurred_at, recorded_at)) AS pct, 1 AS reported "
                f"FROM ({known(('task_progress_reported',))}) GROUP BY subject_id")
    return f"""
    SELECT i.child_id AS child_id, c.closed AS closed,
           if(c.closed = 1, 100, if(p.reported = 1, ifNull(p.pct, 0), 0)) AS progress,
           c.closed = 0 AND i.due_date < {AS_OF_DAY} AS overdue
    FROM ({scoped(('task_assigned',), 'assignee_unit')}) AS i
    LEFT JOIN ({closures('task_completed')}) AS c ON i.subject_id = c.subject_id
    LEFT JOIN ({progress}) AS p ON i.subject_id = p.subject_id
    WHERE $__timeFilter(i.occurred_at)"""


def suggestions() -> str:
    """Suggestions due in the range; on time = closed on or before the due date (按期办结)."""
    return f"""
    SELECT i.child_id AS child_id,
           c.closed = 1 AND toDate(c.closed_at, '{TZ}') <= i.due_date AS on_time
    FROM ({scoped(('suggestion_issued',))}) AS i
    LEFT JOIN ({closures('suggestion_closed')}) AS c ON i.subject_id = c.subject_id
    WHERE {due_in_range('i.due_date')}"""


def rectifications() -> str:
    """Rectification items opened in the range; overdue = open past due at as_of (整改)."""
    return f"""
    SELECT i.child_id AS child_id, i.source AS source, c.closed AS closed,
           c.closed = 0 AND i.due_date < {AS_OF_DAY} AS overdue
    FROM ({scoped(('rectification_opened',))}) AS i
    LEFT JOIN ({closures('rectification_closed')}) AS c ON i.subject_id = c.subject_id
    WHERE $__timeFilter(i.occurred_at)"""


def dispositions() -> str:
    """Each clue once, under its latest disposition known at as_of (after corrections), where
    and when that disposition happened: in the subtree and the range (处置问题线索, as the API)."""
    latest = "(occurred_at, recorded_at, seq, target_id)"
    return f"""
    SELECT d.subject_id AS subject_id, s.child_id AS child_id, d.method AS method FROM (
        SELECT subject_id, argMax(unit_id, {latest}) AS unit_id, argMax(method, {latest}) AS method,
               max(occurred_at) AS disposed_at
        FROM ({known(('clue_disposed',))}) GROUP BY subject_id) AS d
    INNER JOIN ({scope()}) AS s ON d.unit_id = s.unit_id
    WHERE $__timeFilter(d.disposed_at)"""


def per_child(aggregate: str, order_by: str) -> str:
    """One row per child of `${unit}` (and 本级), joined to `aggregate` grouped by child_id."""
    return f"""
    SELECT * FROM ({child_names()}) AS n
    LEFT JOIN ({aggregate}) AS a USING (child_id)
    ORDER BY {order_by}"""
