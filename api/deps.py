"""FastAPI dependencies: the context and the authenticated principal."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext
from domain.access import Principal as PrincipalModel

_bearer = HTTPBearer(auto_error=False, description="令牌 (Bearer token)")


def get_context(request: Request) -> ApiContext:
    return request.app.state.context


Context = Annotated[ApiContext, Depends(get_context)]


def authenticate(ctx: Context,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                 ) -> PrincipalModel:
    """Resolve the bearer token to a principal, or answer 401."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "需要令牌 (missing bearer token)", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    if hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
        principal = PrincipalModel("admin", "admin", None)
    else:
        principal = ctx.tokens.principal(token) if len(token) < 200 else None
        if principal is None:
            raise HTTPException(401, "令牌无效、已过期或已吊销 (invalid, expired or revoked token)",
                                headers={"WWW-Authenticate": "Bearer"})
    limiter = getattr(ctx, "limiter", None)
    if limiter is not None:
        limiter.check(principal.name)
    return principal


Principal = Annotated[PrincipalModel, Depends(authenticate)]


def forbid(message: str = "超出本单位权限范围 (outside your unit's scope)") -> HTTPException:
    return HTTPException(403, message)
