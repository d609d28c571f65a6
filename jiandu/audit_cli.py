"""`jiandu verify` and `jiandu replay`: on a stopped data dir directly, or through the API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

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


def _ledger_store(settings: Settings):
    store = _store(settings)
    if not store.scalar("EXISTS TABLE ledger"):  # a store jiandu never set up (or another one)
        raise ValueError(f"分析库中没有账本表 (no ledger table in {settings.store_url}; "
                         f"`jiandu migrate` or `jiandu up` creates it)")
    return store


def _subtree(store, unit: str | None) -> list[str] | None:
    """The units of `unit`'s subtree, as the API's audit reads take them (None: every unit)."""
    from projections.hierarchy import HierarchySource

    if unit is None:
        return None
    tree = HierarchySource(store).at()
    if unit not in tree:
        raise ValueError(f"单位 {unit} 不存在 (unknown unit)")
    return sorted({span.unit_id for span in tree.subtree_spans(unit)})


def verify(settings: Settings, unit: str | None, api: str | None, token: str | None,
           as_of: str | None = None) -> int:
    when = _instant(as_of)
    api = api or running_api(settings)
    if api:
        params = {**({"unit": unit, "subtree": "true"} if unit else {}),
                  **({"as_of": when.isoformat()} if when else {})}
        report = _remote(settings, api, token, "GET", "/v1/audit/verify", params)
    else:
        from projections.audit import verify_chains

        store = _ledger_store(settings)
        report = verify_chains(store, _subtree(store, unit), console.bar("核验 verify"), when).as_dict()
    return _verdict(report)


def _verdict(report: dict) -> int:
    for b in report["breaks"]:
        print(f"断链 BREAK unit={b['unit_id']} seq={b['seq']}: {b['problem']}")
    verdict = "完整 OK" if report["ok"] else f"发现 {len(report['breaks'])} 处断链 (chain broken)"
    print(f"{verdict}: {report['units']} 个单位 units, {report['rows']} 条记录 rows")
    if report.get("fingerprint"):
        print(f"指纹 fingerprint: {report['fingerprint']} (各单位链头的哈希；与导出文件或其他副本的指纹相同，"
              f"即链完全相同 — one hash over every chain's head: equal for identical chains)")
    return 0 if report["ok"] else 1


def verify_file(path: Path) -> int:
    """`jiandu verify --file`: recompute the chains of an export (`jiandu export`), with no
    platform and no store: what an auditor runs on a copy, anywhere. One unit's rows are held
    at a time (an export keeps each unit's rows together), so a copy of any size fits."""
    from projections.audit import VerifyReport

    report, done = VerifyReport(), set()
    chain: list[dict] = []
    reading = console.counter("核验 verifying", "条 events")

    def close() -> None:
        if chain:
            report.add(chain[0]["unit_id"], sorted(chain, key=lambda row: row["seq"]))
            done.add(chain[0]["unit_id"])
            chain.clear()

    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                row = _exported_row(line, number)
                if chain and row["unit_id"] != chain[0]["unit_id"]:
                    close()
                if row["unit_id"] in done:
                    raise ValueError(f"第 {number} 行：单位 {row['unit_id']} 的记录不相邻，不是导出时的顺序 "
                                     f"(line {number}: the rows of unit {row['unit_id']} are not together, as "
                                     f"an export writes them; sort the file by unit_id, seq)")
                chain.append(row)
                if number % 100_000 == 0:
                    reading(number)
        close()
    except UnicodeDecodeError:
        raise ValueError(f"{path} 不是 UTF-8 文本 (not UTF-8 text: is it a jiandu export?)") from None
    reading.end()
    return _verdict(report.as_dict())


EXPORTED = ("unit_id", "seq", "event_id", "type", "schema_version", "subject_id", "occurred_at",
            "recorded_at", "submitted_by", "payload", "prev_hash", "hash")


def _exported_row(line: str, number: int) -> dict:
    """One exported event, its instants back as datetimes (the chain hashes their canonical form)."""
    try:
        row = json.loads(line)
        missing = [name for name in EXPORTED if name not in row]
        if missing:
            raise ValueError(f"缺少字段 (missing fields) {', '.join(missing)}")
        row["seq"] = int(row["seq"])
        for name in ("occurred_at", "recorded_at"):
            row[name] = dt.datetime.fromisoformat(row[name])
        return row
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"第 {number} 行不是导出的事件 (line {number} is not an exported event): {exc}") from None


def export(settings: Settings, path: Path, unit: str | None, as_of: str | None, api: str | None,
           token: str | None) -> int:
    """`jiandu export`: write the ledger (a unit's subtree, what was recorded up to `as_of`) as
    JSON Lines with every chained field and hash, then verify the file just written."""
    # Pinned at the start: a running platform goes on recording while the pages are read, and
    # `--as-of` the same instant later gives the same copy (and fingerprint).
    when = _instant(as_of) or dt.datetime.now(dt.UTC)
    api = api or running_api(settings)
    pages = _remote_pages(settings, api, token, unit, when) if api else _local_pages(settings, unit, when)
    part = path.with_name(path.name + ".part")
    written, counting = 0, console.counter("导出 export", "条 events")
    try:
        with part.open("w", encoding="utf-8") as out:
            for events in pages:
                out.writelines(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in events)
                written += len(events)
                counting(written)
    except BaseException:
        part.unlink(missing_ok=True)  # a partial copy would verify: its chains are only shorter
        raise
    counting.end()
    part.replace(path)  # only a whole export carries the name asked for
    print(f"已导出 exported {written} 条记录 events → {path} (截至 recorded up to {when.isoformat()})")
    return verify_file(path)


def _instant(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    when = dt.datetime.fromisoformat(text)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _remote_pages(settings: Settings, api: str, token: str | None, unit: str | None,
                  as_of: dt.datetime | None) -> Iterator[list[dict]]:
    params = {k: v for k, v in (("unit", unit), ("as_of", as_of.isoformat() if as_of else None)) if v}
    cursor = None
    while True:
        page = _remote(settings, api, token, "GET", "/v1/audit/events",
                       {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})})
        yield page["events"]
        if not (cursor := page.get("next_cursor")):
            return


def _local_pages(settings: Settings, unit: str | None, as_of: dt.datetime | None) -> Iterator[list[dict]]:
    from projections.audit import history

    store = _ledger_store(settings)
    units = _subtree(store, unit)
    after = None
    while True:
        events, after = history(store, units, as_of=as_of, after=after, limit=5000)
        yield events
        if after is None:
            return


def replay_cmd(settings: Settings, as_of: str | None, into: str | None, api: str | None,
               token: str | None) -> int:
    when = _instant(as_of)
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
