"""Dashboard endpoints for the built-in page: panel specs, panel data, the chart library."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Context, Principal
from api.params import Day, Instant
from api.routes_read import readable
from dashboards import service
from dashboards.catalog import DASHBOARDS, find
from dashboards.sql import TZ

router = APIRouter(tags=["dashboards"])
UnitId = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class PanelOut(BaseModel):
    id: int
    title: str
    kind: str
    unit: str
    width: int
    height: int
    drill: bool
    description: str


class DashboardOut(BaseModel):
    uid: str
    title: str
    description: str
    timezone: str = TZ  # months, due dates and times on the page are in this zone
    panels: list[PanelOut]


class PanelData(BaseModel):
    dashboard: str
    panel: int
    unit: str
    columns: list[str]
    rows: list[list[Any]]


@router.get("/v1/dashboards", response_model=list[DashboardOut])
async def list_dashboards(principal: Principal) -> list[DashboardOut]:
    """Every dashboard with its panels (the same specs Grafana's JSON is built from)."""
    return [DashboardOut(uid=d.uid, title=d.title, description=d.description,
                         panels=[PanelOut(**{k: getattr(p, k) for k in PanelOut.model_fields})
                                 for p in d.panels])
            for d in DASHBOARDS]


@router.get("/v1/dashboards/{uid}/panels/{panel_id}", response_model=PanelData)
async def panel_data(
    uid: str, panel_id: int, ctx: Context, principal: Principal, unit: UnitId,
    from_: Annotated[Day | None, Query(alias="from")] = None,
    to: Day | None = None,
    as_of: Instant | None = None,
) -> PanelData:
    """One panel's rows for a unit's subtree, a period (local dates, half-open) and as_of."""
    try:
        panel = find(uid).panel(panel_id)
    except KeyError:
        raise HTTPException(404, f"看板或面板不存在 (no panel {uid}/{panel_id})") from None
    if from_ and to and from_ >= to:
        raise HTTPException(422, "from 必须早于 to (from must be before to; the period is half-open)")
    tree = await run_in_threadpool(ctx.hierarchy.at)
    readable(tree, principal, unit)
    start = ctx.indicators.local_midnight(from_) if from_ else None
    end = ctx.indicators.local_midnight(to) if to else None
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)  # as /v1/indicators reads a naive as_of
    variables = service.variables(unit, start, end, as_of)
    result = await run_in_threadpool(service.run_panel, ctx.store, panel, variables)
    return PanelData(dashboard=uid, panel=panel_id, unit=unit, **result)


@router.get("/static/plotly.min.js", include_in_schema=False)
async def plotly_js() -> FileResponse:
    """The chart library, from the installed `plotly` package (sites are offline: no CDN)."""
    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(str(path), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
