"""Audit endpoints: chain verification, history with correction links, replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Context, Principal, forbid
from api.params import Instant
from api.routes_read import UnitId, as_utc
from domain.access import can_audit
from projections.audit import history, subject_history, verify_chains
from projections.replay import replay

router = APIRouter(tags=["audit"])


def _audit_units(ctx, principal, unit: str | None) -> list[str] | None:
    """Units the caller may audit: `unit` itself, or its whole subtree; None means everything."""
    tree = ctx.hierarchy.at()
    if principal.role not in ("admin", "auditor"):
        raise forbid("需要审计或管理员权限 (auditor or admin role required)")
    if unit is None:
        if principal.is_admin:
            return None
        unit = principal.unit_id
    if unit not in tree:
        if principal.is_admin:
            raise HTTPException(404, f"单位 {unit} 不存在 (unknown unit)")
        raise forbid()
    if not can_audit(tree, principal, unit):
        raise forbid()
    return sorted({s.unit_id for s in tree.subtree_spans(unit)})


@router.get("/v1/audit/verify")
async def audit_verify(ctx: Context, principal: Principal, unit: UnitId | None = None,
                       subtree: bool = False, as_of: Instant | None = None) -> dict[str, Any]:
    """Recompute the hash chains of a unit (or its subtree), as recorded up to `as_of`; report
    the first break of each, and the fingerprint of their heads when none broke."""
    units = await run_in_threadpool(_audit_units, ctx, principal, unit)
    targets = units if (units is None or subtree or unit is None) else [unit]
    return (await run_in_threadpool(verify_chains, ctx.store, targets, None, as_utc(as_of))).as_dict()


@router.get("/v1/audit/events")
async def audit_events(
    ctx: Context, principal: Principal, unit: UnitId | None = None,
    subject: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,  # noqa: A002 - the contract's name
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None, as_of: Instant | None = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Ledger events (with server fields and hashes), filtered, in (unit, seq) order, paginated."""
    units = await run_in_threadpool(_audit_units, ctx, principal, unit)
    after = None
    if cursor:
        unit_part, _, seq_part = cursor.rpartition(":")
        if not unit_part or not seq_part.isdigit():
            raise HTTPException(422, "cursor 格式错误 (bad cursor)")
        after = (unit_part, int(seq_part))
    events, nxt = await run_in_threadpool(history, ctx.store, units, subject, type, as_utc(from_),
                                          as_utc(to), as_utc(as_of), after, limit)
    return {"events": events, "next_cursor": f"{nxt[0]}:{nxt[1]}" if nxt else None}


@router.get("/v1/audit/subjects/{subject_id}")
async def audit_subject(subject_id: str, ctx: Context, principal: Principal,
                        as_of: Instant | None = None) -> dict[str, Any]:
    """The full history of one subject, with corrected_by / retracted_by links."""
    units = await run_in_threadpool(_audit_units, ctx, principal, None)
    events = await run_in_threadpool(subject_history, ctx.store, subject_id[:64], as_utc(as_of))
    if units is not None:
        allowed = set(units)
        events = [e for e in events if e["unit_id"] in allowed]
    return {"subject_id": subject_id, "events": events}


@router.post("/v1/audit/replay")
async def audit_replay(ctx: Context, principal: Principal, as_of: Instant | None = None,
                       into: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,40}$")] = None
                       ) -> dict[str, Any]:
    """Rebuild projections from the ledger in ClickHouse; ingest pauses while tables swap."""
    if not principal.is_admin:
        raise forbid("需要管理员权限 (admin only)")
    store = ctx.writer or ctx.store

    def run() -> dict[str, str]:
        with store.exclusive():
            return replay(store, as_utc(as_of), into, timezone=ctx.indicators.tz_name)

    return {"checksums": await run_in_threadpool(run)}
