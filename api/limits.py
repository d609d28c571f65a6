"""Per-principal rate limiting (token bucket) and a request size cap."""

from __future__ import annotations

import threading
import time

from fastapi import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse


class RateLimiter:
    """A token bucket per principal: `per_minute` requests, bursts up to the same number."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for `key` or raise 429 with the seconds until the next one."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = max(1, int((1 - tokens) / self.rate) + 1)
                raise HTTPException(429, f"请求过于频繁，请 {wait} 秒后重试 (rate limit; retry after {wait} s)",
                                    headers={"Retry-After": str(wait)})
            self._buckets[key] = (tokens - 1, now)


class BodySizeLimit(BaseHTTPMiddleware):
    """Refuse bodies over the limit before reading them (413)."""

    def __init__(self, app, max_bytes: int):
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return JSONResponse({"detail": f"请求体过大 (body over {self.max_bytes} bytes)"}, status_code=413)
        return await call_next(request)
