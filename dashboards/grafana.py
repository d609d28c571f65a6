"""Render the panel specs to Grafana dashboard JSON with grafana-foundation-sdk builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    barchart,
    common,
    dashboard,
    piechart,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.piechart import PieChartLegendValues, PieChartType

from dashboards.catalog import DASHBOARDS
from dashboards.grafana_query import DATASOURCE, ClickHouseQueryBuilder
from dashboards.panels import DRILL_COLUMN, LABEL_COLUMN, Dashboard, Panel
from dashboards.sql import TZ, unit_options

PROVISIONING = Path(__file__).parent / "provisioning"
BUILD_DIR = Path(__file__).parent / "build"  # docker-compose.yml mounts it for the provider
GRAFANA_JSON_DIR = "/var/lib/grafana/dashboards"  # where provisioning/dashboards/*.yaml looks
TAG = "jiandu"
BUILDERS = {"stat": stat.Panel, "timeseries": timeseries.Panel, "barchart": barchart.Panel,
            "piechart": piechart.Panel, "table": table.Panel}


def drill_url(uid: str) -> str:
    """A data link opening the same dashboard for the clicked row's unit (下钻)."""
    return (f"/d/{uid}?var-unit=${{__data.fields.{DRILL_COLUMN}}}"
            "&${as_of:queryparam}&${__url_time_range}")


def _query(p: Panel) -> ClickHouseQueryBuilder:
    q = ClickHouseQueryBuilder().ref_id("A").raw_sql(p.sql.strip())
    return q.time_series() if p.kind == "timeseries" else q.table()


def _legend() -> common.VizLegendOptions:
    return (common.VizLegendOptions().show_legend(True)
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM))


def _values(builder: Any) -> Any:
    # Every row / field is a value, not a series to reduce to one number.
    return builder.reduce_options(common.ReduceDataOptions().values(True).calcs(["lastNotNull"])
                                  .fields(""))


def panel(uid: str, p: Panel) -> Any:
    """One panel builder from its spec."""
    b = (BUILDERS[p.kind]().id(p.id).title(p.title).description(p.description)
         .datasource(DATASOURCE).with_target(_query(p)).unit(p.unit).span(p.width).height(p.height))
    if p.kind == "stat":
        b = (b.reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).fields(""))
             .text_mode(common_models.BigValueTextMode.VALUE_AND_NAME)
             .graph_mode(common_models.BigValueGraphMode.NONE))
    elif p.kind == "piechart":
        b = _values(b).pie_type(PieChartType.DONUT).legend(
            piechart.PieChartLegendOptions().show_legend(True)
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT)
            .values([PieChartLegendValues.VALUE, PieChartLegendValues.PERCENT]))
    elif p.kind == "timeseries":
        b = b.legend(_legend())
    elif p.kind == "table":
        b = b.show_header(True)  # also keeps "options" non-null, which Grafana expects
    elif p.kind == "barchart":
        b = b.legend(_legend())
        if p.drill:  # long Chinese unit names read better down the side
            b = b.x_field(LABEL_COLUMN).orientation(common_models.VizOrientation.HORIZONTAL)
    if p.drill:
        link = dashboard.DashboardLink("查看该单位 (drill down)").url(drill_url(uid))
        hidden = (models.DynamicConfigValue(id_val="custom.hidden", value=True) if p.kind == "table"
                  else models.DynamicConfigValue(id_val="custom.hideFrom",
                                                 value={"viz": True, "legend": True, "tooltip": True}))
        b = b.override_by_name(DRILL_COLUMN, [hidden])
        if p.kind == "table":
            b = b.override_by_name(LABEL_COLUMN, [models.DynamicConfigValue(
                id_val="links", value=[link.build()])])
        else:
            b = b.data_links([link])
    return b


def variables() -> list[Any]:
    """`unit` (the hierarchy, indented) and `as_of` (截至, free text; empty = now)."""
    unit = (dashboard.QueryVariable("unit").label("单位").datasource(DATASOURCE)
            .query(unit_options().strip()).refresh(models.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(models.VariableSort.DISABLED).description("所选单位及其下级（当前层级关系）"))
    as_of = (dashboard.TextBoxVariable("as_of").label("截至 (as of)").default_value("")
             .description("只计此时刻前入账的记录，如 2025-03-31 24:00；留空为现在"))
    return [unit, as_of]


def build(d: Dashboard) -> dict[str, Any]:
    """The dashboard model as Grafana stores it."""
    b = (dashboard.Dashboard(d.title).uid(d.uid).description(d.description).tags([TAG, "监督"])
         .timezone(TZ).time("now-2y", "now").refresh("5s").editable()
         .link(dashboard.DashboardLink("其他看板").type(models.DashboardLinkType.DASHBOARDS)
               .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True))
         .variables(variables()))
    for p in d.panels:
        b = b.with_panel(panel(d.uid, p))
    return json.loads(json.dumps(b.build(), cls=JSONEncoder))


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard, keyed by file name."""
    return {f"{d.uid}.json": build(d) for d in DASHBOARDS}


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write(out: Path = BUILD_DIR) -> list[Path]:
    """Write every dashboard's JSON into `out`; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in build_all().items():
        path = out / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written
