"""`jiandu report`: fetch the indicator workbook from the running platform."""

from __future__ import annotations

from pathlib import Path

from jiandu import remote
from jiandu.audit_cli import running_api
from jiandu.settings import Settings


def report(settings: Settings, unit: str, from_: str | None, to: str | None, out: Path,
           api: str | None, token: str | None) -> int:
    api = api or running_api(settings)
    if not api:
        raise ValueError("平台未运行：请先 `jiandu up`，或用 --api 指定 (platform not running; "
                         "start `jiandu up` or pass --api)")
    token = token or settings.ensure_admin_token()
    params = {"unit": unit, **({"from": from_} if from_ else {}), **({"to": to} if to else {})}
    response = remote.request("GET", f"{api.rstrip('/')}/v1/reports/indicators.xlsx", params=params,
                              headers={"Authorization": f"Bearer {token}"}, timeout=120)
    if response.status_code != 200:
        raise remote.refused(response)
    out.write_bytes(response.content)
    print(f"已写入 written: {out} ({len(response.content):,} bytes)")
    return 0
