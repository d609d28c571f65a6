"""Tokens and health."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Context, Principal, forbid
from domain.access import can_issue

router = APIRouter()


class TokenRequest(BaseModel):
    model_config = {"extra": "forbid"}
    unit_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
    role: Literal["admin", "submitter", "viewer", "auditor"]
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650)] = 365
    expires_in_seconds: Annotated[int | None, Field(ge=1, le=86400 * 3650,
                                                    description="overrides expires_in_days")] = None


class TokenOut(BaseModel):
    token: str
    token_id: str
    unit_id: str
    role: str
    expires_at: dt.datetime | None


@router.post("/v1/tokens", status_code=201, response_model=TokenOut, tags=["auth"])
async def issue_token(body: TokenRequest, ctx: Context, principal: Principal) -> TokenOut:
    """Issue a token for a unit in the caller's subtree (shown once; only its hash is kept)."""
    tree = await run_in_threadpool(ctx.hierarchy.at)
    if body.unit_id not in tree:
        if principal.is_admin:
            raise HTTPException(404, f"单位 {body.unit_id} 不存在 (unknown unit)")
        raise forbid()
    if not can_issue(tree, principal, body.unit_id, body.role):
        raise forbid("无权签发该令牌 (cannot issue this role for this unit)")
    lifetime = (dt.timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds
                else dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None)
    expires = dt.datetime.now(dt.UTC) + lifetime if lifetime else None
    token_id, token = await run_in_threadpool(ctx.tokens.issue, body.unit_id, body.role,
                                              principal.name, expires)
    return TokenOut(token=token, token_id=token_id, unit_id=body.unit_id, role=body.role,
                    expires_at=expires)


@router.delete("/v1/tokens/{token_id}", status_code=204, tags=["auth"])
async def revoke_token(token_id: str, ctx: Context, principal: Principal) -> None:
    """Revoke a token issued inside the caller's subtree."""
    row = await run_in_threadpool(ctx.tokens.get, token_id[:32])
    tree = await run_in_threadpool(ctx.hierarchy.at)
    if row is None or not (principal.is_admin or principal.token_id == token_id
                           or can_issue(tree, principal, row["unit_id"], row["role"])):
        raise forbid("无权吊销该令牌 (cannot revoke this token)")
    await run_in_threadpool(ctx.tokens.revoke, token_id)


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
async def readyz(ctx: Context) -> JSONResponse:
    """Readiness: store, broker and worker are up."""
    checks = await run_in_threadpool(ctx.readiness)
    return JSONResponse({"ready": all(checks.values()), "checks": checks, "worker": ctx.progress()},
                        status_code=200 if all(checks.values()) else 503)
