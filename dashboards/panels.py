"""Panel and dashboard specs: the one definition Grafana JSON and the built-in page share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["stat", "timeseries", "barchart", "piechart", "table"]
KINDS: tuple[str, ...] = ("stat", "timeseries", "barchart", "piechart", "table")

# Column conventions the renderers rely on.
DRILL_COLUMN = "child_id"  # the unit a row stands for; clicking the row opens it
LABEL_COLUMN = "单位"  # the unit's name, shown in place of DRILL_COLUMN
TIME_COLUMN = "time"  # the x axis of a timeseries


@dataclass(frozen=True)
class Panel:
    id: int
    title: str  # Chinese, shown as is
    kind: Kind
    sql: str  # with Grafana macros and ${unit:sqlstring} / ${as_of:sqlstring}
    unit: str = "short"  # a Grafana unit id: short, percent, s, h
    width: int = 12  # of the 24 grid columns, in Grafana and on the page
    height: int = 8  # grid rows of 30 px
    drill: bool = False  # rows carry DRILL_COLUMN and LABEL_COLUMN
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown panel kind {self.kind!r}")
        if not 1 <= self.width <= 24:
            raise ValueError("width must be 1..24 grid columns")


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    description: str = ""

    def panel(self, panel_id: int) -> Panel:
        """Return the panel with `panel_id`, or raise KeyError."""
        for p in self.panels:
            if p.id == panel_id:
                return p
        raise KeyError(panel_id)


def rate(numerator: str, denominator: str) -> str:
    """A percent with one decimal, rounded half up like the API's; NULL when undefined."""
    # Decimal arithmetic: Float round() is banker's rounding and would differ from the API.
    return (f"if(({denominator}) > 0, toFloat64(round(toDecimal64(100 * ({numerator}), 6) "
            f"/ ({denominator}), 1)), NULL)")
