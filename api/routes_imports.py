"""A spreadsheet in through the API: the fill-in template out, a filled-in file back.

`POST /v1/imports` reads a file the way `jiandu submit` does (CSV, XLSX, JSON Lines, JSON;
Chinese headers and values) and submits it atomically, as `POST /v1/events` does a body:
every event is published, or none, and every problem names its spreadsheet row."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext
from api.deps import Context, Principal
from domain import access
from domain.gcpause import gc_paused
from domain.labels import column_label
from producers.importers import FileImportError, ImportResult, RowProblem, read_content
from producers.service import Spooled
from producers.template import template_bytes

router = APIRouter(tags=["events"])
MAX_IMPORT_EVENTS = 100_000
TEMPLATE_ROWS = 1000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/v1/templates/events.xlsx", response_class=Response,
            responses={200: {"content": {XLSX: {}}, "description": "the workbook"}})
async def template(_: Principal) -> Response:
    """The workbook to fill in (as `jiandu template`): Chinese headers, drop-downs, ids ready."""
    return Response(await run_in_threadpool(template_bytes, TEMPLATE_ROWS), media_type=XLSX,
                    headers={"Content-Disposition": "attachment; filename*=UTF-8''%E6%8A%A5%E9%80%81.xlsx"})


@router.post("/v1/imports", status_code=202,
             responses={422: {"description": "every problem, by row, event_id and field; nothing published"},
                        403: {"description": "a row's unit is outside the caller's scope"},
                        503: {"description": "broker unavailable; events spooled, retry is safe"}},
             openapi_extra={"requestBody": {"required": True, "description": "the file's bytes",
                                            "content": {"application/octet-stream": {"schema": {
                                                "type": "string", "format": "binary"}}}}})
async def import_file(request: Request, ctx: Context, principal: Principal,
                      filename: Annotated[str, Query(max_length=255, description="the file's name; its "
                                                     "suffix says how to read it (.xlsx .csv .jsonl .json)")]
                      ) -> JSONResponse:
    """Submit a spreadsheet or event file atomically: every row is published, or none."""
    body = await request.body()
    if len(body) > ctx.max_request_bytes:
        return JSONResponse({"detail": f"文件过大 (file over {ctx.max_request_bytes} bytes)"}, 413)
    return await run_in_threadpool(_import, body, Path(filename).suffix, ctx, principal)


def _import(body: bytes, suffix: str, ctx: ApiContext, principal: access.Principal) -> JSONResponse:
    try:
        with gc_paused():
            result = read_content(body, suffix)
    except FileImportError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    if result.problems:
        return _problems(result.problems, 422)
    if len(result.events) > MAX_IMPORT_EVENTS:
        return _problems([RowProblem(0, None, "(file)", f"每个文件最多 {MAX_IMPORT_EVENTS} 条，请拆分 "
                                                        f"(at most {MAX_IMPORT_EVENTS} events a file: split it)")], 422)
    denied = [RowProblem(_row(result, index), str(event.event_id), "unit_id",
                         f"无权为单位 {unit} 报送 (unit outside your submit scope)")
              for index, event, unit in access.outside_submit_scope(ctx.hierarchy.at(), principal, result.events)]
    if denied:
        return _problems(denied, 403)
    if ctx.submitter is None:
        return JSONResponse({"detail": "本实例不接收报送 (this instance has no broker)"}, 503)
    try:
        accepted = ctx.submitter.submit(result.events, principal.name)
    except Spooled as exc:
        return JSONResponse({"detail": str(exc), "spooled": exc.events}, status_code=503,
                            headers={"Retry-After": "5"})
    return JSONResponse({"accepted": accepted, **({"note": result.note} if result.note else {})}, 202)


def _row(result: ImportResult, index: int) -> int:
    return result.rows[index] if index < len(result.rows) else 0


def _problems(problems: list[RowProblem], status: int) -> JSONResponse:
    return JSONResponse({"detail": "文件被拒绝，未报送任何事件 (file rejected: nothing was submitted)",
                         "problems": [{"row": p.row, "event_id": p.event_id, "field": p.field,
                                       "column": column_label(p.field), "message": p.message}
                                      for p in problems]}, status_code=status)
