"""Expand Grafana ClickHouse-plugin macros and our template variables on the server.

The expansions copy the plugin's (grafana/clickhouse-datasource `pkg/macros/macros.go`), so
the built-in page runs exactly the SQL Grafana would send to ClickHouse.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

MAX_DATA_POINTS = 200  # what Grafana divides the range by to get $__interval


class UnexpandedMacro(ValueError):
    """The SQL uses a macro or variable this expander does not know."""


@dataclass(frozen=True)
class Variables:
    unit: str
    start: dt.datetime  # the time range, inclusive at both ends (as Grafana's)
    end: dt.datetime
    as_of: str = ""  # the textbox text; empty means now

    @property
    def interval_s(self) -> int:
        return max(1, math.floor((self.end - self.start).total_seconds() / MAX_DATA_POINTS))


def sql_string(value: str) -> str:
    """Quote text as a ClickHouse string literal (what `${var:sqlstring}` yields, made safe)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _seconds(value: dt.datetime) -> int:
    return int(value.timestamp())


def _millis(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def expand(sql: str, v: Variables) -> str:
    """Return `sql` with every macro and `${…:sqlstring}` variable replaced."""
    start, end = f"toDateTime({_seconds(v.start)})", f"toDateTime({_seconds(v.end)})"
    start_ms = f"fromUnixTimestamp64Milli({_millis(v.start)})"
    end_ms = f"fromUnixTimestamp64Milli({_millis(v.end)})"
    functions = {
        "timeFilter_ms": lambda c: f"{c} >= {start_ms} AND {c} <= {end_ms}",
        "timeFilter": lambda c: f"{c} >= {start} AND {c} <= {end}",
        "dateFilter": lambda c: (f"{c} >= toDate('{v.start.date()}') AND "
                                 f"{c} <= toDate('{v.end.date()}')"),
        "timeInterval_ms": lambda c: (f"toStartOfInterval(toDateTime64({c}, 3), "
                                      f"INTERVAL {v.interval_s * 1000} millisecond)"),
        "timeInterval": lambda c: (f"toStartOfInterval(toDateTime({c}), "
                                   f"INTERVAL {v.interval_s} second)"),
    }
    sql = re.sub(r"\$__(\w+)\(([^()]*)\)",
                 lambda m: _call(functions, m.group(1), m.group(2).strip()), sql)
    constants = {"fromTime_ms": start_ms, "toTime_ms": end_ms, "fromTime": start,
                 "toTime": end, "interval_s": str(v.interval_s)}
    sql = re.sub(r"\$__(\w+)", lambda m: _lookup(constants, m.group(1)), sql)
    values = {"unit": v.unit, "as_of": v.as_of}
    # Checked before the values go in, so a `$` inside a value cannot trip it.
    if leftover := re.search(r"\$(?!\{(?:unit|as_of):sqlstring\})\S{0,20}", sql):
        raise UnexpandedMacro(f"unknown macro or variable {leftover.group(0)!r}")
    return re.sub(r"\$\{(\w+):sqlstring\}", lambda m: sql_string(values[m.group(1)]), sql)


def _call(functions: dict, name: str, arg: str) -> str:
    if name not in functions:
        raise UnexpandedMacro(f"unknown macro $__{name}(…)")
    return functions[name](arg)


def _lookup(values: dict[str, str], name: str) -> str:
    if name not in values:
        raise UnexpandedMacro(f"unknown macro or variable {name!r}")
    return values[name]
