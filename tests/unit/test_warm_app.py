"""`api.app.warm_app`: a server sends one request through its app before it serves."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from api.app import warm_app


def test_warm_app_sends_one_request_through_the_app_in_process():
    app = FastAPI()
    served = []

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        served.append("/healthz")
        return {"status": "ok"}

    asyncio.run(warm_app(app))
    assert served == ["/healthz"]
