"""`jiandu verify` and `jiandu replay`: on a stopped data dir directly, or through the API."""

from __future__ import annotations

import datetime as dt

from jiandu import console, remote
from jiandu.settings import Settings


def running_api(settings: Settings) -> str | None:
    """The API URL of a live `jiandu up` (or `api`) on this data dir (chDB allows one process
    per path, so a command reaches that data through it)."""
    return (settings.running() or {}).get("api_url")


def _remote(settings: Settings, api: str, token: str | None, method: str, path: str, params: dict) -> dict:
    token = token or settings.ensure_admin_token()
    response = remote.request(method, f"{api.rstrip('/')}{path}", params=params, timeout=3600,
                             headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise remote.refused(response)
    return response.json()


def _store(settings: Settings):
    from projections.store import ClickHouseStore

    if settings.embedded_store and not (settings.data_dir / "clickhouse").exists():
        raise ValueError(f"数据目录中没有账本 (no ledger in {settings.data_dir})")
    return ClickHouseStore(settings.store_url)


def verify(settings: Settings, unit: str | None, api: str | None, token: str | None) -> int:
    api = api or running_api(settings)
    if api:
        report = _remote(settings, api, token, "GET", "/v1/audit/verify",
                         {"unit": unit, "subtree": "true"} if unit else {})
    else:
        from projections.audit import verify_chains

        store = _store(settings)
        if not store.scalar("EXISTS TABLE ledger"):  # a store jiandu never set up (or another one)
            raise ValueError(f"分析库中没有账本表 (no ledger table in {settings.store_url}; "
                             f"`jiandu migrate` or `jiandu up` creates it)")
        report = verify_chains(store, unit, progress=console.bar("核验 verify")).as_dict()
    for b in report["breaks"]:
        print(f"断链 BREAK unit={b['unit_id']} seq={b['seq']}: {b['problem']}")
    verdict = "完整 OK" if report["ok"] else f"发现 {len(report['breaks'])} 处断链 (chain broken)"
    print(f"{verdict}: {report['units']} 个单位 units, {report['rows']} 条记录 rows")
    return 0 if report["ok"] else 1


def replay_cmd(settings: Settings, as_of: str | None, into: str | None, api: str | None,
               token: str | None) -> int:
    when = None
    if as_of:
        when = dt.datetime.fromisoformat(as_of)
        when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
    api = api or running_api(settings)
    if api:
        params = {k: v for k, v in (("as_of", when.isoformat() if when else None), ("into", into)) if v}
        sums = _remote(settings, api, token, "POST", "/v1/audit/replay", params)["checksums"]
    else:
        from projections.replay import replay

        store = _store(settings)
        store.migrate()
        sums = replay(store, when, into, progress=console.bar("重放 replay"), timezone=settings.timezone)
    for table, value in sums.items():
        print(f"{table}\t{value}")
    return 0
