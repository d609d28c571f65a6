"""The CLI's requests to a running platform's API (`--api`, or the URL a live `jiandu up`
left in its data dir). A platform that cannot be reached is a plain error, not a traceback."""

from __future__ import annotations

import httpx


class Unreachable(ValueError):
    """No answer from the API: refused, unresolvable, timed out, or cut off mid-answer."""


def request(method: str, url: str, **kwargs) -> httpx.Response:
    try:
        return httpx.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        origin = httpx.URL(url).copy_with(path="/", query=None)
        raise Unreachable(f"无法连接平台接口 {origin} (cannot reach the API: {exc or type(exc).__name__})；"
                          f"请确认 `jiandu up` 或 `jiandu api` 正在运行，或检查 --api "
                          f"(is the platform running? is --api right?)") from None


def refused(response: httpx.Response) -> ValueError:
    """The API answered, but not with what was asked for: its status and its own words."""
    detail = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
    return ValueError(f"API 返回 {response.status_code}: {detail if detail else response.text[:300]}")
