"""A platform the CLI cannot reach is a plain error naming where it looked, not a traceback."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading

import pytest

from jiandu import submit
from jiandu.cli import main
from tests.harness import event


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dead_pid() -> int:
    pid = 2 ** 22 - 1
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid -= 1


@pytest.mark.parametrize("command", [["verify"], ["replay"], ["report", "--unit", "p", "--xlsx", "r.xlsx"]])
def test_an_api_that_refuses_is_named_in_the_error(command, tmp_path, capsys):
    port = _closed_port()
    code = main([*command, "--api", f"http://127.0.0.1:{port}", "--token", "t", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"无法连接平台接口 http://127.0.0.1:{port}/" in err
    assert "Traceback" not in err


def test_a_grafana_that_refuses_is_named_in_the_error(capsys):
    port = _closed_port()
    assert main(["dashboards", "publish", "--url", f"http://127.0.0.1:{port}", "--token", "t"]) == 2
    err = capsys.readouterr().err
    assert f"无法连接 Grafana http://127.0.0.1:{port}" in err and "Traceback" not in err


def test_report_after_the_platform_died_says_it_is_not_running(tmp_path, capsys):
    # kill -9 leaves runtime.json behind: its pid is gone, so the platform is not running
    (tmp_path / "runtime.json").write_text(json.dumps({
        "pid": _dead_pid(), "kafka_bootstrap": "127.0.0.1:1", "api_url": f"http://127.0.0.1:{_closed_port()}"}))
    code = main(["report", "--unit", "p", "--xlsx", str(tmp_path / "r.xlsx"), "--data-dir", str(tmp_path)])
    assert code == 2
    assert "平台未运行" in capsys.readouterr().err


class _AcceptsOnce(http.server.BaseHTTPRequestHandler):
    """Accepts the first chunk of events, then hangs up without answering (an API going away)."""

    posts: list[int] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.posts.append(len(body["events"]))
        if len(self.posts) > 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"accepted": 0}')

    def log_message(self, *args):
        pass


def test_submit_cut_off_mid_file_says_how_many_were_confirmed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(submit, "API_CHUNK", 3)
    _AcceptsOnce.posts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AcceptsOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event("petition_received", "p", f"s{i}",
                                             {"channel": "letter", "category": "appeal"})) + "\n"
                            for i in range(8)), encoding="utf-8")
    try:
        code = main(["submit", str(path), "--api", f"http://127.0.0.1:{server.server_port}", "--token", "t",
                     "--data-dir", str(tmp_path)])
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert code == 2
    assert _AcceptsOnce.posts == [3, 3]  # the third chunk was never sent
    assert "已确认接收 3 条" in err and "not counted twice" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("body", "says"), [
    (b'{"detail": "\\u5355\\u4f4d p \\u4e0d\\u5b58\\u5728 (unknown unit)"}', "API 返回 404: 单位 p 不存在 (unknown unit)"),
    (b'["not", "an", "object"]', 'API 返回 404: ["not", "an", "object"]'),
    (b"{broken", "API 返回 404: {broken"),
])
def test_an_api_that_refuses_is_quoted_in_its_own_words(body, says, tmp_path, capsys):
    class Refuses(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = main(["verify", "--api", f"http://127.0.0.1:{server.server_port}", "--token", "t",
                     "--data-dir", str(tmp_path)])
    finally:
        server.shutdown()
    assert code == 2
    assert says in capsys.readouterr().err


def test_submit_with_no_broker_spools_every_chunk_and_waits_on_it_once_a_run(tmp_path, capsys, monkeypatch):
    """Offline, a large file goes to the outbox whole: only the first chunk waits for the broker."""
    from producers.outbox import Outbox
    from producers.publisher import KafkaPublisher

    attempts = []
    real_publish = KafkaPublisher.publish
    monkeypatch.setattr(KafkaPublisher, "publish", lambda self, records: (attempts.append(len(records)),
                                                                          real_publish(self, records)))
    monkeypatch.setattr(submit, "API_CHUNK", 3)
    monkeypatch.setenv("JIANDU_KAFKA_BOOTSTRAP", f"127.0.0.1:{_closed_port()}")
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event("petition_received", "p", f"s{i}",
                                             {"channel": "letter", "category": "appeal"})) + "\n"
                            for i in range(8)), encoding="utf-8")
    assert main(["submit", str(path), "--data-dir", str(tmp_path / "d")]) == 0
    assert "spooled: 8" in capsys.readouterr().out
    assert len(attempts) == 1  # chunks 2 and 3 were not sent to a broker that had just failed
    assert Outbox(tmp_path / "d" / "outbox.sqlite").stats()["events"] == 8

    # Offline again: one try, to deliver what was spooled; the file's own chunks do not try again.
    attempts.clear()
    assert main(["submit", str(path), "--data-dir", str(tmp_path / "d")]) == 0
    assert len(attempts) == 1 and "spooled: 8" in capsys.readouterr().out
