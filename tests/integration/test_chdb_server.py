"""`jiandu chdb-server`: ClickHouse's HTTP interface over a chDB data path, as the production
split's clients use it (clickhouse-connect), and as plain HTTP clients send it."""

from __future__ import annotations

import gzip
import os
import subprocess
import time

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from jiandu.broker import free_port
from tests.harness import ROOT, jiandu_cmd


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server in its own process: this one already holds another chDB path."""
    work, port = tmp_path_factory.mktemp("chdb-server"), free_port()
    log = open(work / "server.log", "ab")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen(jiandu_cmd("chdb-server", "--port", str(port)), stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "JIANDU_DATA_DIR": str(work)}, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, (work / "server.log").read_text()
            try:
                if httpx.get(url + "/ping", timeout=2).text == "Ok.\n":
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "chdb-server never answered /ping"
                time.sleep(0.2)
    except BaseException:
        proc.kill()
        raise
    yield url
    proc.terminate()
    assert proc.wait(30) == 0  # SIGTERM stops it cleanly
    assert (work / "clickhouse").is_dir()  # the data dir's store, as `jiandu up` would open it


def test_clickhouse_connect_round_trip(server):
    client = clickhouse_connect.get_client(dsn=server)
    client.command("CREATE TABLE rt (unit String, n UInt64, tags Array(String)) ENGINE = MergeTree ORDER BY unit")
    client.insert("rt", [["a", "b'c"], [1, 2], [["x"], []]], column_names=["unit", "n", "tags"],
                  column_oriented=True)  # compressed and streamed, as the worker's inserts are
    rows = client.query("SELECT unit, n, tags FROM rt WHERE unit IN {u:Array(String)} ORDER BY unit",
                        parameters={"u": ["b'c", "a"]}).result_rows
    assert rows == [("a", 1, ["x"]), ("b'c", 2, [])]
    assert client.command("SELECT sum(n) FROM rt") == 3
    many = ["a", *(f"unit-{i:05d}" for i in range(5_000))]  # too long for a URL: sent as a form
    assert client.query("SELECT count() FROM rt WHERE unit IN {u:Array(String)}",
                        parameters={"u": many}).result_rows == [(1,)]
    # A command binds its parameters in the URL, however long (a fold over ~1,600 units: >64 KiB).
    units = [f"gd.c{i:02d}.k{i:03d}.t{i:04d}.{'x' * 40}" for i in range(3_000)]
    assert client.command("SELECT length({u:Array(String)})", parameters={"u": units}) == 3_000
    with pytest.raises(DatabaseError, match="Code: 60"):
        client.query("SELECT * FROM no_such_table")


def test_settings_last_one_request(server):
    def max_threads(**params) -> str:
        return httpx.post(server, params={"query": "SELECT getSetting('max_threads')", **params}).text.strip()

    assert max_threads(max_threads="1") == "1"
    assert max_threads() != "1"  # the next request on the same engine does not inherit it
    response = httpx.post(server, params={"query": "SELECT 1", "no such setting!": "1"})
    assert response.status_code == 500 and response.headers["X-ClickHouse-Exception-Code"] == "115"


def test_plain_http_inserts_compressed_and_chunked(server):
    httpx.post(server, content=b"CREATE TABLE plain (k String, v Int64) ENGINE = MergeTree ORDER BY k").raise_for_status()
    insert = {"query": "INSERT INTO plain FORMAT JSONEachRow"}
    body = b'{"k": "gz", "v": 1}\n{"k": "gz", "v": 2}\n'
    httpx.post(server, params=insert, content=gzip.compress(body),
               headers={"Content-Encoding": "gzip"}).raise_for_status()
    httpx.post(server, params=insert, content=iter([b'{"k": "chunked", ', b'"v": 5}\n'])).raise_for_status()
    answer = httpx.post(server, content=b"SELECT k, sum(v) FROM plain GROUP BY k ORDER BY k FORMAT CSV").text
    assert answer == '"chunked",5\n"gz",3\n'


def test_bad_requests_say_what_was_wrong(server):
    response = httpx.post(server, params={"query": "INSERT INTO plain FORMAT JSONEachRow"}, content=b"x",
                          headers={"Content-Encoding": "snappy"})
    assert response.status_code == 400 and "snappy" in response.text
    response = httpx.post(server, content=b"SELEC 1")
    assert response.status_code == 500 and response.text.startswith("Code: 62.")
    assert response.headers["X-ClickHouse-Exception-Code"] == "62"
