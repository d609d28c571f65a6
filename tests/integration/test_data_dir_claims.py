"""One process per embedded data path: whoever comes second is told who has it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT, jiandu_cmd


def _chdb_server(data: Path, port: int) -> subprocess.CompletedProcess:
    return subprocess.run(jiandu_cmd("chdb-server", "--data-dir", str(data), "--port", str(port)),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_chdb_server_on_a_data_dir_this_process_has_open_names_it(chdb_store):
    data = Path(chdb_store.url.removeprefix("chdb://")).parent  # open in this process all session
    result = _chdb_server(data, 0)
    assert result.returncode == 2
    assert f"正被另一个进程使用 (pid {os.getpid()})" in result.stderr and "Traceback" not in result.stderr
    assert "(--api)" in result.stderr  # what to do when a platform (not a chdb-server) has it


def test_a_data_dir_a_chdb_server_serves_points_at_the_server(tmp_path):
    from jiandu.broker import free_port

    port = free_port()
    server = subprocess.Popen(jiandu_cmd("chdb-server", "--data-dir", str(tmp_path / "d"), "--port", str(port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert "served over" in server.stderr.readline()  # it says so once the data path is open
        result = subprocess.run(jiandu_cmd("verify", "--data-dir", str(tmp_path / "d")), capture_output=True,
                                text=True, cwd=ROOT, timeout=60)
    finally:
        server.terminate()
        server.wait(30)
    assert result.returncode == 2
    assert f"(pid {server.pid})" in result.stderr and "JIANDU_CLICKHOUSE_URL" in result.stderr


# In a process of its own: chDB runs one engine a process, and this one has the session's.
CLOSE_THEN_VERIFY = """
import json, subprocess, sys
from projections.store import ClickHouseStore
from tests.harness import ROOT, jiandu_cmd
data = sys.argv[1]
def verify():
    done = subprocess.run(jiandu_cmd("verify", "--data-dir", data), capture_output=True, text=True, cwd=ROOT)
    return [done.returncode, done.stdout, done.stderr]
store = ClickHouseStore(f"chdb://{data}/clickhouse")
store.close()
unset = verify()
store = ClickHouseStore(f"chdb://{data}/clickhouse")
store.migrate()
store.close()
print(json.dumps([unset, verify()]))
"""


def test_a_closed_store_lets_the_next_process_have_the_data_dir(tmp_path):
    out = subprocess.run([sys.executable, "-c", CLOSE_THEN_VERIFY, str(tmp_path / "d")], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    (unset_code, _, unset_err), (code, stdout, err) = json.loads(out.stdout.strip().splitlines()[-1])
    assert unset_code == 2 and "没有账本表" in unset_err, unset_err  # opened, then told why not
    assert code == 0 and "0 条记录" in stdout, err  # an empty ledger verifies


def test_chdb_server_on_a_taken_port_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _chdb_server(tmp_path / "d", port)
    assert result.returncode == 2
    assert f"无法监听 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr

