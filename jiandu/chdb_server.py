"""`jiandu chdb-server`: one chDB data path served over ClickHouse's HTTP interface.

The production split runs `jiandu worker` and `jiandu api` as separate processes over one
ClickHouse (`JIANDU_CLICKHOUSE_URL=http://…`). chDB opens a data path in one process at a time,
and these machines have no ClickHouse server, so without this the split could not run here at
all. This process holds the path and answers the part of ClickHouse's HTTP interface that
clickhouse-connect's HTTP client speaks: the SQL runs on chDB's engine (ClickHouse itself), and
the clients are the same HTTP clients a real server gets.

What it serves:
- `GET /ping` and `GET /`: "Ok.".
- `POST /`: the SQL in the `query` parameter, the body, or both (the body follows the
  parameter); `param_<name>` values for `{name:Type}` placeholders; every other unknown
  parameter is a setting for that query. Parameters may also come as the fields of a
  `multipart/form-data` body (long ones do). Results in the format the SQL names, else
  `default_format`, else TabSeparated.
- Inserts: `INSERT … FORMAT <fmt>` in `query` or at the start of the body, the rows in the
  body after it, plain, chunked, or compressed (lz4, zstd, gzip, deflate), as
  clickhouse-connect sends them.
- Errors: HTTP 500, the ClickHouse message as the body, its code in
  `X-ClickHouse-Exception-Code`.

Not a ClickHouse server: no users or passwords (it binds to loopback unless told otherwise),
no TLS, no sessions (each request runs on a fresh engine handle, so a `SET` lasts one request),
no progress headers. It is for tests and for trying the split on one machine.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import signal
import sys
import tempfile
import threading
import zlib
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# Parameters of the HTTP interface itself, not settings of the query.
TRANSPORT = frozenset({
    "query", "database", "default_format", "session_id", "session_timeout", "session_check", "query_id",
    "compress", "decompress", "wait_end_of_query", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "enable_http_compression", "client_protocol_version", "user",
    "password", "quota_key", "role", "buffer_size",
})
_TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s", re.IGNORECASE)
# An insert whose statement opens the body, its rows after it (clickhouse-connect's inserts):
# the statement ends at its FORMAT name and the rows begin after the line's end.
_INSERT_HEAD = re.compile(rb"^\s*INSERT\s+INTO\s.*?\sFORMAT\s+\w+[ \t]*\r?\n?", re.IGNORECASE | re.DOTALL)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)\.")
MAX_REQUEST_LINE = 1 << 20  # ClickHouse's default http_max_uri_size


def decompress(data: bytes, encoding: str) -> bytes:
    """A request body as sent with `Content-Encoding: encoding`."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "lz4":
        import lz4.frame

        out, rest = [], data
        while rest:  # a stream may be several frames one after another
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out.append(decompressor.decompress(rest))
            rest = decompressor.unused_data
        return b"".join(out)
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(data)
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    raise ValueError(f"不支持的压缩 (unsupported Content-Encoding): {encoding}")


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a `multipart/form-data` body (clickhouse-connect sends the query and its
    parameters this way when they are too long for a URL)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise ValueError("Code: 48. DB::Exception: 不支持外部数据 (external data is not supported). (NOT_IMPLEMENTED)")
        fields[name] = part.get_payload(decode=True).decode()
    return fields


class Engine:
    """The chDB engine of one data path, and how one request runs on it."""

    def __init__(self, path: Path):
        import chdb

        self._chdb = chdb
        from projections.store import claim_data_path, release_data_path

        self.path = str(path)
        path.mkdir(parents=True, exist_ok=True)
        real = os.path.realpath(self.path)
        claim_data_path(real)  # as every embedded store does: one process a data path
        self._release = functools.cache(lambda: release_data_path(real))  # once
        try:
            self._keep = chdb.connect(self.path)  # holds the engine open between requests
        except Exception:
            self._release()
            raise

    def run(self, sql: str, params: dict[str, str], settings: dict[str, str], database: str | None,
            default_format: str, data: bytes | None) -> tuple[bytes, str]:
        """Run one request's SQL (with `data`, an insert's rows); return (body, its format)."""
        conn = self._chdb.connect(self.path)  # its own handle: its SETs end with the request
        try:
            if database:
                conn.query(f"USE `{database}`")
            for name, value in settings.items():
                if not _SETTING_NAME.match(name):
                    raise ValueError(f"Code: 115. DB::Exception: Unknown setting {name!r}. (UNKNOWN_SETTING)")
                conn.query(f"SET {name} = '{_escape(value)}'")
            match = _TRAILING_FORMAT.search(sql)
            fmt = match.group(1) if match else default_format
            if data is not None and match and _INSERT.match(sql):
                return self._insert(conn, sql[:match.start()], fmt, data), fmt
            if match:
                sql = sql[:match.start()]
            result = conn.query(sql, fmt, params=params) if params else conn.query(sql, fmt)
            return (result.bytes() if result is not None else b""), fmt
        finally:
            conn.close()

    @staticmethod
    def _insert(conn, head: str, fmt: str, data: bytes) -> bytes:
        """An `INSERT INTO t (…)` of `data` in `fmt`, through a file (chDB takes no byte stream)."""
        with tempfile.NamedTemporaryFile(prefix="jiandu-insert-", suffix="." + fmt.lower()) as file:
            file.write(data)
            file.flush()
            conn.query(f"{head} FROM INFILE '{_escape(file.name)}' FORMAT {fmt}")
        return b""

    def close(self) -> None:
        self._keep.close()
        self._release()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clickhouse-connect pools its connections
    server_version = "jiandu-chdb-server"
    engine: Engine  # set on the subclass the server makes

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass  # one line per query would drown the log; errors are in the responses

    def handle_one_request(self) -> None:
        """The base class's, with ClickHouse's limit on the request line (its `http_max_uri_size`,
        1 MiB) for the base class's 64 KiB: a fold over ~1,600 units binds its ranges in the
        URL, and was refused with 414."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/ping", "/") and "query" not in dict(parse_qsl(url.query)):
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self._query(url, b"")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        try:
            body = decompress(self._body(), self.headers.get("Content-Encoding", ""))
        except Exception as exc:  # noqa: BLE001 - a bad body is the client's error, in words
            self._error(400, f"Code: 27. DB::Exception: 请求体无法读取 (cannot read the body): {exc}")
            return
        self._query(url, body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _query(self, url, body: bytes) -> None:
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            try:
                query.update(form_fields(content_type, body))  # long parameters come as form fields
            except Exception as exc:  # noqa: BLE001 - a bad form is the client's error, in words
                self._error(400, str(exc))
                return
            body = b""
        sql, data = query.get("query", ""), None
        head = None if sql else _INSERT_HEAD.match(body)
        if sql and body and _INSERT.match(sql) and _TRAILING_FORMAT.search(sql):
            data = body  # the rows of `INSERT … FORMAT x`
        elif head:
            sql, data = head.group().decode().strip(), body[head.end():]
        elif body:
            sql = f"{sql}\n{body.decode()}" if sql else body.decode()
        params = {k.removeprefix("param_"): v for k, v in query.items() if k.startswith("param_")}
        settings = {k: v for k, v in query.items() if k not in TRANSPORT and not k.startswith("param_")}
        try:
            result, fmt = self.engine.run(sql, params, settings, query.get("database"),
                                          query.get("default_format") or "TabSeparated", data)
        except Exception as exc:  # noqa: BLE001 - every engine error goes back to the client
            self._error(500, str(exc))
            return
        self._send(200, result, {"Content-Type": "application/octet-stream", "X-ClickHouse-Format": fmt,
                                 "X-ClickHouse-Timezone": "UTC"})

    def _error(self, status: int, message: str) -> None:
        start = message.find("Code: ")
        message = message[start:] if start > 0 else message
        code = _CODE.search(message)
        self._send(status, (message.strip() + "\n").encode(),
                   {"Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": code.group(1) if code else "1001"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(path: Path, host: str = "127.0.0.1", port: int = 8123, ready: threading.Event | None = None) -> None:
    """Serve `path` until SIGINT / SIGTERM."""
    handler = type("BoundHandler", (Handler,), {})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ValueError(f"无法监听 {host}:{port} (cannot listen there: {exc.strerror or exc})；用 --port 换一个 "
                         f"(choose another with --port)") from None
    try:
        handler.engine = Engine(path)
    except BaseException:
        server.server_close()
        raise
    engine = handler.engine
    server.daemon_threads = True
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="chdb-server", daemon=True)
    thread.start()
    print(f"chDB {path} 以 ClickHouse HTTP 接口服务于 (served over ClickHouse's HTTP interface at) "
          f"http://{host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    if ready is not None:
        ready.set()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        engine.close()

