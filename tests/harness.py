"""Test harness: a real Tansu broker and real `jiandu up` processes, on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from jiandu.broker import TansuBroker, free_port

ROOT = Path(__file__).resolve().parent.parent


def jiandu_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "jiandu.cli", *args]


class Up:
    """A `jiandu up` child process."""

    def __init__(self, data_dir: Path, bootstrap: str | None = None, demo: bool = False,
                 api_port: int | None = None, log_name: str = "up.log", env: dict | None = None):
        self.data_dir = data_dir
        self.port = api_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra_env = env
        env = {**os.environ, "JIANDU_DATA_DIR": str(data_dir), "JIANDU_API_PORT": str(self.port)}
        env.pop("JIANDU_KAFKA_BOOTSTRAP", None)
        env.update(extra_env or {})
        if bootstrap:
            env["JIANDU_KAFKA_BOOTSTRAP"] = bootstrap
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / log_name
        self.proc = subprocess.Popen(jiandu_cmd("up", *(["--demo"] if demo else [])),
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT)

    def wait_ready(self, timeout: float = 90) -> Up:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jiandu up exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()  # a test that fails here must not leave its process running
        raise TimeoutError(f"jiandu up not ready: {self.log()}")

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def post(self, events: list[dict], token: str | None = None) -> httpx.Response:
        return httpx.post(self.url + "/v1/events", json={"events": events},
                          headers=self.headers(token), timeout=120)

    def indicators(self, unit: str, token: str | None = None, **params: Any) -> httpx.Response:
        return httpx.get(self.url + "/v1/indicators", params={"unit": unit, **params},
                         headers=self.headers(token), timeout=60)

    def totals(self, unit: str, **params: Any) -> dict[str, Any]:
        response = self.indicators(unit, **params)
        response.raise_for_status()
        return response.json()["rows"][0]["indicators"]

    def wait_for(self, unit: str, indicator: str, expected: int, timeout: float = 120) -> float:
        """Poll until `indicator` reaches `expected`; return seconds waited."""
        started = time.monotonic()
        value = None
        while time.monotonic() - started < timeout:
            try:
                value = self.totals(unit)[indicator]
            except (httpx.HTTPError, KeyError):
                value = None
            if value == expected:
                return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"{indicator} = {value}, expected {expected}")

    def wait_unit(self, unit: str, timeout: float = 60) -> None:
        """Poll until the unit is registered (its events folded into the hierarchy)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/v1/units/{unit}", headers=self.headers(), timeout=10).status_code == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"unit {unit} never appeared")

    def register_small_province(self) -> Up:
        """Submit `small_province()` and wait until its last unit is registered."""
        response = self.post(small_province())
        assert response.status_code == 202, response.text
        self.wait_unit("k2")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def run_in_store(data_dir: Path, code: str) -> str:
    """Run Python with `store` opened on a stopped data dir, in its own process; return stdout."""
    prelude = ("from projections.store import ClickHouseStore\n"
               f"store = ClickHouseStore('chdb://{data_dir / 'clickhouse'}')\n")
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return out.stdout


def ledger_stats(data_dir: Path) -> dict[str, int]:
    """Count ledger rows in a stopped data dir (a separate process: chDB is one path per process)."""
    code = (
        "import json, clickhouse_connect, sys\n"
        f"c = clickhouse_connect.get_client(dsn='chdb://{data_dir / 'clickhouse'}')\n"
        "r = c.query('SELECT count(), uniqExact(event_id) FROM ledger').result_rows[0]\n"
        "print(json.dumps({'rows': r[0], 'distinct': r[1]}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def event(event_type: str, unit: str, subject: str, payload: dict,
          when: str = "2024-03-01T10:00:00+08:00") -> dict:
    return {"event_id": str(uuid.uuid4()), "type": event_type, "unit_id": unit,
            "subject_id": subject, "occurred_at": when, "payload": payload}


def small_province() -> list[dict]:
    """A province, two cities, a county under each and a stationed group: 6 units."""
    reg = lambda uid, name, level, parent: event(  # noqa: E731
        "unit_registered", parent or uid, uid,
        {"name": name, "level": level, "effective_from": "2020-01-01",
         **({"parent_id": parent} if parent else {})}, when="2020-01-01T00:00:00+08:00")
    return [reg("p", "省纪委监委", "province", None), reg("c1", "甲市纪委监委", "city", "p"),
            reg("c2", "乙市纪委监委", "city", "p"), reg("k1", "丙县纪委监委", "county", "c1"),
            reg("k2", "丁县纪委监委", "county", "c2"), reg("g1", "驻省教育厅纪检监察组", "stationed_group", "p")]


def start_broker(port: int = 0) -> TansuBroker:
    return TansuBroker(port).start()


def fill_in(path: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Type `rows` under the Chinese headers of a `jiandu template` workbook, from its second
    row on, as a clerk would in Excel; return the rows' event ids (filled in ahead)."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    column = {cell.value: cell.column for cell in sheet[1]}
    for row, values in enumerate(rows, start=2):
        for header, value in values.items():
            sheet.cell(row, column[header], value)
    book.save(path)
    return [sheet.cell(row, 1).value for row in range(2, len(rows) + 2)]
