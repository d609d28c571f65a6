"""SQL building blocks for panels, written with Grafana macros and template variables.

Panels run in two places: Grafana (its ClickHouse plugin expands `$__timeFilter(…)` and
`${unit:sqlstring}`) and the built-in page (`dashboards.macros.expand` does the same on the
server). So everything here is plain SQL over the projections, with no Python at query time.

Simplification, on purpose: the API's rollups place each event under the hierarchy in force
on its `occurred_at` (units move). Grafana cannot call our Python hierarchy, so panels use
one hierarchy — the parent links in force on the `as_of` day, as recorded by then — and find
a unit's ancestors with a fixed number of map look-ups (no recursion). `MAX_DEPTH` levels
cover province → city → county → township → stationed group with room to spare.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from domain.labels import LEVEL_LABELS, METHOD_LABELS, RANK_LABELS
from projections.resolved import resolved_sql, ts

TZ = "Asia/Shanghai"  # 报表时区: months and due dates are local, as in the API
MAX_DEPTH = 6
UNIT_TYPES = ("unit_registered", "unit_moved")

# "What was known then" (截至): the textbox variable `as_of`; empty means now.
AS_OF = f"coalesce(parseDateTime64BestEffortOrNull(${{as_of:sqlstring}}, 6, '{TZ}'), now64(6))"
AS_OF_DAY = f"toDate({AS_OF}, '{TZ}')"
UNIT = "${unit:sqlstring}"

_SENTINEL = dt.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=dt.UTC)


def known(types: Sequence[str]) -> str:
    """Facts of `types` in their latest version known at `${as_of}` (as the API resolves them)."""
    # Reuse the API's resolution verbatim; only its literal cut-off becomes the variable.
    literal = f"toDateTime64({ts(_SENTINEL)}, 6, 'UTC')"
    sql = resolved_sql(types, _SENTINEL)
    if literal not in sql:
        raise RuntimeError("projections.resolved_sql no longer inlines its as-of literal")
    return sql.replace(literal, AS_OF)


def units() -> str:
    """Every unit with its name, level and the parent link in force on the as-of day."""
    day = "ifNull(toInt32(effective_from), 0)"
    current = f"ifNull(effective_from, toDate('1970-01-01')) <= {AS_OF_DAY}"
    # The latest link already in force; a unit whose links all lie ahead uses its first one.
    return f"""
    SELECT subject_id AS unit_id,
           argMaxIf(name, recorded_at, type = 'unit_registered') AS name,
           argMaxIf(level, recorded_at, type = 'unit_registered') AS level,
           argMax(parent_id, ({current}, if({current}, {day}, -{day}), recorded_at)) AS parent_id
    FROM ({known(UNIT_TYPES)})
    GROUP BY subject_id"""


def tree() -> str:
    """Units with `chain` = [self, parent, grandparent, …] (MAX_DEPTH map look-ups)."""
    lookups, chain = "unit_id", ["unit_id"]
    for _ in range(MAX_DEPTH - 1):
        lookups = f"up[{lookups}]"
        chain.append(lookups)
    # One pass over the units builds the child → parent map; ARRAY JOIN walks it per unit.
    # (A scalar `WITH (SELECT …) AS up` was several times slower once filtered on.)
    return f"""
    SELECT unit_id, name, level, arrayFilter(x -> x != '', [{', '.join(chain)}]) AS chain
    FROM (SELECT CAST((groupArray(unit_id), groupArray(parent_id)), 'Map(String, String)') AS up,
                 groupArray(unit_id) AS ids, groupArray(name) AS names, groupArray(level) AS levels
          FROM ({units()}))
    ARRAY JOIN ids AS unit_id, names AS name, levels AS level"""


def scope() -> str:
    """The subtree of `${unit}`: each unit with the child of `${unit}` it sits under."""
    return f"""
    SELECT unit_id, if(pos <= 1, unit_id, chain[pos - 1]) AS child_id FROM (
        SELECT unit_id, chain, indexOf(chain, {UNIT}) AS pos FROM ({tree()}))
    WHERE pos > 0"""


def in_scope(column: str = "unit_id") -> str:
    """A WHERE condition: `column` is a unit in the subtree of `${unit}`."""
    return f"{column} IN (SELECT unit_id FROM ({scope()}))"


def scoped(types: Sequence[str], unit_column: str = "unit_id") -> str:
    """Known facts of `types` inside the subtree, each with its `child_id` for rollups."""
    return f"""
    SELECT f.*, s.child_id AS child_id FROM ({known(types)}) AS f
    INNER JOIN ({scope()}) AS s ON f.{unit_column} = s.unit_id"""


def child_names() -> str:
    """(child_id, 单位) for the children of `${unit}` and `${unit}` itself (本级)."""
    return f"""
    SELECT unit_id AS child_id, if(unit_id = {UNIT}, concat(name, '（本级）'), name) AS `单位`
    FROM ({tree()}) WHERE unit_id = {UNIT} OR chain[2] = {UNIT}"""


def label(column: str, labels: dict) -> str:
    """A Chinese label for a code column (unknown codes shown as they are)."""
    keys = ", ".join(f"'{k}'" for k in labels)
    values = ", ".join(f"'{v}'" for v in labels.values())
    return f"transform(toString({column}), [{keys}], [{values}], toString({column}))"


def rank_label(column: str = "rank") -> str:
    return label(column, RANK_LABELS)


def method_label(column: str = "method") -> str:
    return label(column, METHOD_LABELS)


def level_label(column: str = "level") -> str:
    return label(column, LEVEL_LABELS)


def closures(event_type: str) -> str:
    """(subject_id, closed_at) of the first closing event known at as_of."""
    return (f"SELECT subject_id, min(occurred_at) AS closed_at, 1 AS closed "
            f"FROM ({known((event_type,))}) GROUP BY subject_id")


def month(column: str = "occurred_at") -> str:
    """The local month of `column` as a time value Grafana can plot."""
    return f"toDateTime(toStartOfMonth(toTimeZone({column}, '{TZ}')), '{TZ}')"


def due_in_range(column: str = "due_date") -> str:
    """Due dates inside the dashboard's time range (local days)."""
    return (f"{column} >= toDate($__fromTime, '{TZ}') AND {column} <= toDate($__toTime, '{TZ}')")


def unit_options() -> str:
    """(value, text) rows for Grafana's `unit` variable: every unit, indented under its parent."""
    # Ordering by the reversed chain lists each unit right after its parent (depth first).
    return f"""
    SELECT unit_id, concat(repeat('　', length(chain) - 1), name) AS text
    FROM ({tree()}) ORDER BY arrayReverse(chain)"""
