"""Bad numbers, instants and settings are refused up front, in words naming what was wrong."""

from __future__ import annotations

import pytest

from jiandu.cli import main


@pytest.mark.parametrize(("argv", "says"), [
    (["bench", "--events", "0"], "argument --events: 0 超出范围 ≥ 1"),
    (["bench", "--events", "-5"], "argument --events: -5 超出范围"),
    (["bench", "--events", "10k"], "argument --events: '10k' 不是整数"),
    (["simulate", "--units", "-3"], "argument --units: -3 超出范围 ≥ 0"),
    (["simulate", "--rate", "nan"], "argument --rate: nan: 每秒事件数须为非负数"),
    (["simulate", "--rate", "-1"], "argument --rate: -1: 每秒事件数须为非负数"),
    (["up", "--api-port", "99999"], "argument --api-port: 99999 超出范围 0–65535"),
    (["chdb-server", "--port", "-1"], "argument --port: -1 超出范围 0–65535"),
    (["replay", "--as-of", "last tuesday"], "argument --as-of: 'last tuesday' 不是 ISO 8601 时间"),
])
def test_a_bad_argument_is_named_before_anything_starts(argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_numbers_may_be_grouped():
    from jiandu.cli import build_parser

    assert build_parser().parse_args(["bench", "--events", "1_000_000"]).events == 1_000_000
    assert build_parser().parse_args(["simulate", "--events", "20,000"]).events == 20_000


@pytest.mark.parametrize(("env", "says"), [
    ({"JIANDU_API_PORT": "abc"}, "JIANDU_API_PORT='abc'"),
    ({"JIANDU_PARTITIONS": "0"}, "JIANDU_PARTITIONS='0'"),
    ({"JIANDU_TIMEZONE": "Mars/Base"}, "JIANDU_TIMEZONE='Mars/Base'"),
    ({"JIANDU_CLICKHOUSE_URL": "clickhouse.internal"}, "JIANDU_CLICKHOUSE_URL='clickhouse.internal'"),
])
def test_a_bad_setting_is_named_by_its_variable(env, says, monkeypatch, tmp_path, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["verify", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "配置有误" in err and says in err
    assert "pydantic" not in err  # no library's help links, just the variable and what is wrong


@pytest.mark.parametrize(("option", "says"), [("--api-port", "接口地址 127.0.0.1:{port} 无法监听"),
                                               ("--broker-port", "消息队列端口 {port} 无法使用")])
def test_up_on_a_taken_port_says_so_before_starting_anything(option, says, tmp_path):
    import socket
    import subprocess

    from tests.harness import ROOT, jiandu_cmd

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(jiandu_cmd("up", "--api-port", "0", option, str(port), "--data-dir",
                                           str(tmp_path / "d")),
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2, result.stderr
    assert says.format(port=port) in result.stderr
    assert "Traceback" not in result.stderr
    assert "已启动" not in result.stdout and "已停止" not in result.stdout  # it never ran


def test_a_clickhouse_server_that_refuses_is_one_plain_line(tmp_path):
    import os
    import socket
    import subprocess

    from tests.harness import ROOT, jiandu_cmd

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "JIANDU_LOG_LEVEL"}
    result = subprocess.run(jiandu_cmd("migrate", "--data-dir", str(tmp_path)), capture_output=True, text=True,
                            cwd=ROOT, timeout=60, env={**env, "JIANDU_CLICKHOUSE_URL": f"http://127.0.0.1:{port}"})
    assert result.returncode == 2
    assert f"无法连接分析库 (cannot open ClickHouse at http://127.0.0.1:{port})" in result.stderr
    assert "Unexpected Http Driver Exception" not in result.stderr and "Traceback" not in result.stderr
