"""Published statistics reproduced exactly through the real pipeline (HTTP → Kafka → faust → chDB)."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness import ROOT, Up
from tests.published import published_stream

PUBLISHED = ROOT.parent / "shared" / "data" / "published_statistics.json"
TABLES = json.loads(PUBLISHED.read_text(encoding="utf-8"))["tables"]


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    platform = Up(tmp_path_factory.mktemp("published")).wait_ready()
    yield platform
    platform.stop()


@pytest.mark.parametrize("table", TABLES, ids=[t["id"] for t in TABLES])
def test_published_table_is_reproduced_exactly(up, table):
    year = int(table["period"])
    events, unit = published_stream(table["indicators"], year, seed=year, prefix=f"{table['id'][:6]}.")
    units, rest = events[:8], events[8:]
    assert up.post(units).status_code == 202
    up.wait_unit(unit)
    for i in range(0, len(rest), 10_000):
        assert up.post(rest[i:i + 10_000]).status_code == 202

    published = table["indicators"]
    params = {"from": f"{year}-01-01", "to": f"{year + 1}-01-01"}
    deadline, got = time.monotonic() + 180, {}
    while time.monotonic() < deadline:
        got = up.totals(unit, **params)
        if all(got[k] == v for k, v in published.items()):
            break
        time.sleep(0.5)
    assert {k: got[k] for k in published} == published
    shares = [got[f"four_forms.form{n}.share"] for n in range(1, 5)]
    if got["four_forms.total"]:
        assert round(sum(shares), 1) == 100.0


def test_xlsx_report_totals_equal_the_api(up, tmp_path):
    import subprocess

    import httpx
    from openpyxl import load_workbook

    from domain.indicators import CATALOGUE
    from tests.harness import jiandu_cmd

    table = TABLES[0]["indicators"]
    events, unit = published_stream(table, 2020, seed=1, prefix="xl.")
    assert up.post(events[:8]).status_code == 202
    up.wait_unit(unit)
    assert up.post(events[8:]).status_code == 202
    params = {"from": "2020-01-01", "to": "2021-01-01"}
    # Every published figure, not one: the events are folded in several batches, and one
    # figure can be complete while a later batch is still to come.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        api_total = up.totals(unit, **params)
        if all(api_total[k] == v for k, v in table.items()):
            break
        time.sleep(0.5)
    assert {k: api_total[k] for k in table} == table

    response = httpx.get(up.url + "/v1/reports/indicators.xlsx", params={"unit": unit, **params},
                         headers=up.headers(), timeout=60)
    assert response.status_code == 200
    via_cli = tmp_path / "report.xlsx"
    result = subprocess.run(jiandu_cmd("report", "--unit", unit, "--from", "2020-01-01", "--to", "2021-01-01",
                                       "--xlsx", str(via_cli), "--api", up.url, "--token", up.token),
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for path in (tmp_path / "api.xlsx", via_cli):
        if path.name == "api.xlsx":
            path.write_bytes(response.content)
        ws = load_workbook(path).active
        rows = list(ws.iter_rows(values_only=True))
        header, ids = rows[2], rows[3]
        assert header[2] == "受理信访举报" and "处分人数" in header and "第一种形态占比(%)" in header
        total = rows[-1]
        assert total[0] == "合计"
        by_id = dict(zip(ids[2:], total[2:], strict=True))
        for item in CATALOGUE:
            assert by_id[item.id] == api_total[item.id], item.id
        children = [r for r in rows[4:-1]]
        assert {r[1] for r in children} == {unit, f"{unit}.g1", f"{unit}.g2", f"{unit}.t1"}
        assert isinstance(total[2], int)
        assert sum(r[2] for r in children) == total[2]  # petitions add up across the rows
