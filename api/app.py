"""The FastAPI application factory."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from api import (
    routes_admin,
    routes_audit,
    routes_dashboard,
    routes_events,
    routes_imports,
    routes_read,
)
from api.context import ApiContext
from api.limits import BodySizeLimit, RateLimiter
from api.page import PAGE_HTML
from domain.hierarchy import UnknownUnit

log = logging.getLogger("jiandu.api")


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(title="jiandu 监督 API", version="1",
                  description="纪检监察报送与统计平台 — events in, indicators out.")
    app.state.context = context
    context.limiter = RateLimiter(context.rate_limit_per_minute)
    app.add_middleware(BodySizeLimit, max_bytes=context.max_request_bytes)
    app.include_router(routes_events.router)
    app.include_router(routes_imports.router)
    app.include_router(routes_read.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_dashboard.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE_HTML

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()]
        return JSONResponse({"detail": "参数错误 (invalid request)", "problems": problems}, 422)

    @app.exception_handler(UnknownUnit)
    async def unknown_unit(_: Request, exc: UnknownUnit) -> JSONResponse:
        return JSONResponse({"detail": f"单位 {exc.args[0]} 不存在 (unknown unit)"}, 404)

    @app.exception_handler(Exception)
    async def failure(_: Request, exc: Exception) -> JSONResponse:
        # Store or broker trouble must read as "try again", never as a stack trace.
        log.exception("request failed")
        return JSONResponse({"detail": f"服务暂不可用 (service unavailable): {type(exc).__name__}"},
                            status_code=503, headers={"Retry-After": "5"})

    return app


async def warm_app(app: FastAPI) -> None:
    """Send one request through `app`, in this process, before it serves. A server's first
    request pays once for what is set up on first use (anyio's asyncio backend and its streams
    are imported then): a 10M ledger's first indicator request over HTTP took 59-62 ms, the
    same request 29-36 ms after one request had gone through."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warm-up") as client:
        await client.get("/healthz")
