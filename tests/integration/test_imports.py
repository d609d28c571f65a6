"""Spreadsheets in, the way a clerk sends them: `jiandu template`, Chinese names typed in, then
`jiandu submit` or `POST /v1/imports` (all rows or none, problems by spreadsheet row)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import ROOT, Up, fill_in, jiandu_cmd

WHEN = dt.datetime(2025, 3, 1, 9, 30)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    platform = Up(tmp_path_factory.mktemp("imports")).wait_ready()
    platform.register_small_province()
    yield platform
    platform.stop()


def _env(up: Up) -> dict[str, str]:
    env = {**os.environ, "JIANDU_DATA_DIR": str(up.data_dir)}
    env.pop("JIANDU_KAFKA_BOOTSTRAP", None)
    return env


def _filled(template: bytes, path: Path, rows: list[dict[str, object]]) -> list[str]:
    path.write_bytes(template)
    return fill_in(path, rows)


def _clue(unit: str, subject: str, method: str) -> dict[str, object]:
    return {"事件类型": "处置问题线索", "单位": unit, "对象": subject, "发生时间": WHEN, "处置方式": method}


def _template(up: Up) -> bytes:
    response = httpx.get(up.url + "/v1/templates/events.xlsx", headers=up.headers(), timeout=60)
    assert response.status_code == 200
    return response.content


def _upload(up: Up, path: Path, token: str | None = None) -> httpx.Response:
    return httpx.post(up.url + "/v1/imports", params={"filename": path.name}, content=path.read_bytes(),
                      headers=up.headers(token), timeout=120)


def _in_ledger(up: Up, subject: str) -> list[str]:
    """The event ids the ledger holds about `subject`."""
    response = httpx.get(up.url + "/v1/audit/events", params={"subject": subject}, headers=up.headers(), timeout=30)
    response.raise_for_status()
    return [e["event_id"] for e in response.json()["events"]]


def test_a_filled_in_template_submitted_twice_counts_once(up, tmp_path):
    """`jiandu template`, Chinese names typed into it, `jiandu submit` of the workbook; the same
    workbook again (its ids were filled in ahead) adds nothing."""
    path = tmp_path / "报送.xlsx"
    assert subprocess.run(jiandu_cmd("template", str(path), "--rows", "20"), env=_env(up), cwd=ROOT,
                          timeout=60).returncode == 0
    fill_in(path, [_clue("k1", f"cli-clue-{i}", m)
                                      for i, m in enumerate(["谈话函询", "谈话函询", "初步核实"])])
    before = up.totals("p")
    for _ in range(2):
        result = subprocess.run(jiandu_cmd("submit", str(path)), capture_output=True, text=True,
                                env=_env(up), cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "accepted: 3  拒绝 rejected: 0" in result.stdout
    up.wait_for("p", "clues.disposed", before["clues.disposed"] + 3, timeout=60)
    time.sleep(1.5)  # the second submission's duplicates would have been counted by now
    after = up.totals("p")
    assert after["clues.disposed.talk_inquiry"] - before["clues.disposed.talk_inquiry"] == 2
    assert after["clues.disposed.preliminary_verification"] - before["clues.disposed.preliminary_verification"] == 1
    assert after["clues.disposed"] - before["clues.disposed"] == 3


def test_an_upload_with_one_bad_row_publishes_nothing_and_names_the_row(up, tmp_path):
    template = _template(up)
    bad = tmp_path / "bad.xlsx"
    _filled(template, bad, [_clue("k1", "up-clue-1", "谈话函询"), _clue("k1", "up-clue-2", "谈话")])
    response = _upload(up, bad)
    assert response.status_code == 422
    assert [(p["row"], p["field"], p["column"]) for p in response.json()["problems"]] == \
        [(3, "payload.method", "处置方式")]
    assert "谈话函询 (talk_inquiry)" in response.json()["problems"][0]["message"]

    before = up.totals("p")["clues.disposed"]
    good = tmp_path / "good.xlsx"
    ids = _filled(template, good, [_clue("k1", "up-clue-3", "谈话函询"), _clue("k2", "up-clue-4", "予以了结")])
    for _ in range(2):  # a second upload of the same file is safe
        response = _upload(up, good)
        assert response.status_code == 202 and response.json()["accepted"] == 2
    up.wait_for("p", "clues.disposed", before + 2, timeout=60)
    time.sleep(1.5)
    assert up.totals("p")["clues.disposed"] == before + 2
    # The good row of the refused file never reached the ledger; the uploaded ones did, once
    # each, under the ids the template filled in.
    assert (_in_ledger(up, "up-clue-1"), _in_ledger(up, "up-clue-3"), _in_ledger(up, "up-clue-4")) == \
        ([], [ids[0]], [ids[1]])


def test_an_upload_outside_the_callers_scope_is_403_by_row(up, tmp_path):
    response = httpx.post(up.url + "/v1/tokens", json={"unit_id": "k1", "role": "submitter"},
                          headers=up.headers(), timeout=30)
    token = response.json()["token"]
    path = tmp_path / "scope.xlsx"
    _filled(_template(up), path, [_clue("k1", "sc-clue-1", "谈话函询"), _clue("k2", "sc-clue-2", "谈话函询")])
    response = _upload(up, path, token)
    assert response.status_code == 403
    assert [(p["row"], p["field"]) for p in response.json()["problems"]] == [(3, "unit_id")]
    assert "k2" in response.json()["problems"][0]["message"]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("events.txt", b"{}", "unsupported file type"),
    ("events.xlsx", b"not a workbook", "not a readable .xlsx"),
    ("events.csv", b"", "empty"),
])
def test_an_upload_that_is_not_a_readable_file_says_why(up, name, content, expected):
    response = httpx.post(up.url + "/v1/imports", params={"filename": name}, content=content,
                          headers=up.headers(), timeout=60)
    assert response.status_code == 422
    assert expected in response.text


def test_jiandu_submit_names_a_bad_row_by_number_and_chinese_column(up, tmp_path):
    """A CSV saved from the template: the good rows go in, the bad one is printed with its row
    number and its column as the clerk sees it, and the exit code says something was refused."""
    path = tmp_path / "报送.csv"
    path.write_text("事件类型,单位,对象,发生时间,处置方式\n"
                    "处置问题线索,k1,csv-clue-1,2025-03-01T09:30:00+08:00,暂存待查\n"
                    "处置问题线索,k1,csv-clue-2,2025-03-01T09:30:00+08:00,搁置\n", encoding="gb18030")
    result = subprocess.run(jiandu_cmd("submit", str(path)), capture_output=True, text=True,
                            env=_env(up), cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert "缺少必需列" in result.stderr and "event_id" in result.stderr  # no ids: the file is refused

    path.write_text("事件编号,事件类型,单位,对象,发生时间,处置方式\n"
                    "8f6c1a52-5f59-4b8e-9a57-1f2b3c4d5e01,处置问题线索,k1,csv-clue-1,2025-03-01T09:30:00+08:00,暂存待查\n"
                    "8f6c1a52-5f59-4b8e-9a57-1f2b3c4d5e02,处置问题线索,k1,csv-clue-2,2025-03-01T09:30:00+08:00,搁置\n",
                    encoding="gb18030")
    before = up.totals("k1")["clues.disposed.shelved"]
    result = subprocess.run(jiandu_cmd("submit", str(path)), capture_output=True, text=True,
                            env=_env(up), cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert "第 3 行 row 3  处置方式 (payload.method): '搁置' 不是可选值" in result.stderr
    assert "accepted: 1  拒绝 rejected: 1" in result.stdout
    up.wait_for("k1", "clues.disposed.shelved", before + 1, timeout=60)
