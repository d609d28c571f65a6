"""ClickHouse access through clickhouse-connect: one class for chDB (`chdb:///path`) and a
ClickHouse server (`http(s)://user:pass@host:8123/db`)."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect

# Applied to every query made on behalf of an API caller. No JIT compilation: ClickHouse
# compiles an expression the third time it meets it, inside the query that meets it, and that
# request waits 50-100 ms; an API query reads too few rows to gain anything from compiled code
# (a 10M ledger, 200 requests over HTTP: p99 54-58 -> 38-40 ms, p50 the same).
NO_JIT = {"compile_expressions": 0, "compile_aggregate_expressions": 0, "compile_sort_description": 0}
API_QUERY_SETTINGS = {"max_execution_time": 20, "max_rows_to_read": 500_000_000, **NO_JIT}
# Applied to every query. Planning, not reading, is most of a live fold of a small batch: the
# `daily` fold of 20 events took 170 ms on a real 1M ledger, 150 of them before reading a row
# (EXPLAIN PLAN). 60 of those went to one pass of the analyzer, which looks for comparisons it
# can infer from long AND chains (`a < b AND b < c` adds `a < c`). Without it: that fold
# 170 -> 107 ms, a fold with corrections 332 -> 167, an `items` fold 123 -> 79. The rows are the
# same: the pass only adds predicates the query already implies.
STORE_SETTINGS = {"optimize_and_compare_chain": 0}

try:  # glibc's: hand the free memory its heaps keep back to the system (not on every libc)
    _malloc_trim: Callable[[int], int] | None = ctypes.CDLL(None).malloc_trim
except (AttributeError, OSError):
    _malloc_trim = None


def release_heap() -> None:
    """Hand what glibc's heaps hold freed (Python's buffers, the clients') back to the system.

    glibc keeps freed memory in its free lists for reuse, and returns to the system only what
    is at the top of a heap: the end-to-end phase over 3M events left 945 MB resident, 152 of it
    free-listed. Trimming takes ~7 ms after a 40k-event batch (ctypes lets go of the GIL)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


# Writes made in this process to each embedded store, by data path (`ClickHouseStore.writes`). A
# chDB data path is open in one process at a time (a second process fails to open it), so these
# are every write its data gets while this process has it.
_WRITES: collections.Counter[str] = collections.Counter()
_WRITES_LOCK = threading.Lock()


class StoreUnavailable(ConnectionError):
    """The analytics store cannot be reached or refused the operation (an OSError: the CLI
    prints it as it is, without a traceback)."""


# Embedded stores this process has open, by data path: the lock file's descriptor and how many
# stores hold it. chDB opens a data path in one process at a time; a second process failed with
# "Error initializing EmbeddedServer", naming neither the path's user nor what to do.
_CLAIMS: dict[str, list[int]] = {}
_CLAIMS_LOCK = threading.Lock()


def claim_data_path(path: str) -> None:
    """Hold `path.lock` (flock, released by the kernel if this process dies) while this
    process has the embedded store at `path` open."""
    import fcntl

    with _CLAIMS_LOCK:
        if path in _CLAIMS:
            _CLAIMS[path][1] += 1
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreUnavailable(
                f"分析库 {path} 正被另一个进程使用 (pid {holder}) (the embedded store is open in another "
                f"process)：一个数据目录同时只能由一个 jiandu 进程打开 (one process per data dir)；"
                f"{_what_to_do_instead(holder)}") from None
        except OSError:  # a file system without flock: chDB's own lock still refuses a second process
            os.close(fd)
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _CLAIMS[path] = [fd, 1]


def _what_to_do_instead(holder: str) -> str:
    """Advice for a process that found the data path taken, by what holds it."""
    try:
        with open(f"/proc/{int(holder)}/cmdline", "rb") as f:
            served = b"chdb-server" in f.read()
    except (OSError, ValueError):
        served = False
    if served:
        return ("它由 jiandu chdb-server 提供：把 JIANDU_CLICKHOUSE_URL 指向该服务 (it is served by jiandu "
                "chdb-server: point JIANDU_CLICKHOUSE_URL at that server)")
    return ("平台运行时请通过它的接口操作 (--api)，或换一个数据目录 (go through the running platform's "
            "API, or use another data dir)")


def release_data_path(path: str) -> None:
    with _CLAIMS_LOCK:
        claim = _CLAIMS.get(path)
        if claim is not None:
            claim[1] -= 1
            if claim[1] == 0:
                os.close(claim[0])  # closing the descriptor releases the flock
                del _CLAIMS[path]


class ClickHouseStore:
    """A thin, thread-safe wrapper: run SQL, insert columns, apply migrations."""

    def __init__(self, url: str):
        self.url = url
        self.embedded = url.startswith("chdb:")
        raw_path = url.removeprefix("chdb:").removeprefix("//").split("?")[0] if self.embedded else ""
        # The data path, as one key for every URL naming it (`writes`; embedded stores only).
        self._path = os.path.realpath(raw_path) if self.embedded else ""
        # Claimed for this process (`claim_data_path`), unless in memory: nothing on disk to share.
        self._claimed = raw_path not in ("", ":memory:")
        if self._claimed:
            claim_data_path(self._path)
        try:
            if self.embedded:
                self._client = clickhouse_connect.get_client(dsn=url, settings=STORE_SETTINGS)
            else:
                self._client = clickhouse_connect.get_client(dsn=url, connect_timeout=10, send_receive_timeout=120,
                                                             settings=STORE_SETTINGS)
        except Exception as exc:  # noqa: BLE001 - surface any driver failure in plain words
            self._release()
            raise StoreUnavailable(f"无法连接分析库 (cannot open ClickHouse at {url}): {exc}") from exc
        # chDB is one engine per process; serialise calls so threads never interleave.
        self._lock = threading.RLock()
        # What `exclusive` pauses before taking the lock (an ingestor with rows written but not
        # yet projected), by weak reference: an owner that is gone pauses nothing.
        self._pausers: list[weakref.WeakMethod] = []
        self._sibling: ClickHouseStore | None = None

    def command(self, sql: str, parameters: dict[str, Any] | None = None,
                settings: dict[str, Any] | None = None) -> Any:
        with self._lock, self._writing():
            return self._client.command(sql, parameters=parameters, settings=settings)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None,
             settings: dict[str, Any] | None = None) -> list[tuple]:
        with self._lock:
            return self._client.query(sql, parameters=parameters, settings=settings).result_rows

    def dicts(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            result = self._client.query(sql, parameters=parameters, settings=settings)
            return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, parameters)
        return rows[0][0] if rows else None

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str],
               settings: dict[str, Any] | None = None) -> None:
        if not rows:
            return
        with self._lock, self._writing():
            self._client.insert(table, rows, column_names=list(columns), settings=settings)

    def insert_columns(self, table: str, columns: dict[str, Sequence[Any]]) -> None:
        """Insert column-oriented data (faster than rows for large batches)."""
        names = list(columns)
        if not names or not len(columns[names[0]]):
            return
        with self._lock, self._writing():
            self._client.insert(table, [columns[n] for n in names], column_names=names,
                                column_oriented=True)

    def writes(self) -> int | None:
        """How many writes (commands and inserts) this process has made to this store so far,
        when that is all the writes it gets (chDB); None for a server, which others write to.
        A reader that remembers the number it read before a query knows, while the number is
        the same, that the query would answer the same."""
        if not self.embedded:
            return None
        with _WRITES_LOCK:
            return _WRITES[self._path]

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Count a write once it is over, done or failed (a failed one may have landed): a
        reader that read the count before the write finished will find it changed."""
        try:
            yield
        finally:
            if self.embedded:
                with _WRITES_LOCK:
                    _WRITES[self._path] += 1

    def release_memory(self) -> None:
        """Hand the memory freed so far back to the system: before and between large statements.

        Embedded, chDB's allocator (jemalloc) keeps freed pages for reuse and returns them only
        after some seconds, so a run of large statements (a replay's steps) piles up what each
        one freed: growing a real 1M ledger by 2M rows left 1.3 GB resident with 14 MB in use,
        311 MB after a purge. A server manages its own memory. And glibc's heaps too (see
        `release_heap`)."""
        if self.embedded:
            self.command("SYSTEM JEMALLOC PURGE")
        release_heap()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold to keep every other user of this client out (replay pauses ingest this way):
        each registered pauser first settles its work and holds it, then the client's lock."""
        with contextlib.ExitStack() as stack:
            for ref in list(self._pausers):
                pause = ref()
                if pause is not None:
                    stack.enter_context(pause())
            stack.enter_context(self._lock)
            yield

    def pause_with(self, pause: Callable[[], contextlib.AbstractContextManager]) -> None:
        """Have `exclusive` enter `pause()` (a bound method) before it takes the lock."""
        self._pausers = [r for r in self._pausers if r() is not None] + [weakref.WeakMethod(pause)]

    def migrate(self) -> list[str]:
        """Apply the numbered migrations not yet applied; return the names applied."""
        self.command("CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_at "
                     "DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY name")
        done = {row[0] for row in self.rows("SELECT name FROM schema_migrations")}
        # On a cluster, deploy/cluster/clickhouse/cluster_schema.sql has created the replicated
        # form of every table (schema_migrations too) first; a migration's own statements would
        # drop or create single-node tables beside them, so there they are only recorded.
        recorded_only = self.replicated("schema_migrations")
        applied = []
        folder = Path(__file__).parent / "migrations"
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if not item.name.endswith(".sql") or item.name in done:
                continue
            for statement in [] if recorded_only else split_sql(item.read_text(encoding="utf-8")):
                self.command(statement)
            self.insert("schema_migrations", [[item.name]], ["name"])
            applied.append(item.name)
        return applied

    def replicated(self, table: str) -> bool:
        engine = self.scalar("SELECT engine FROM system.tables WHERE database = currentDatabase() "
                             "AND name = {t:String}", {"t": table})
        return str(engine or "").startswith("Replicated")

    def sibling(self) -> ClickHouseStore:
        """A second client on the same store, for work that runs beside this client's (its
        calls do not wait for this one's lock). Made once; closed with this one."""
        with self._lock:
            if self._sibling is None:
                self._sibling = ClickHouseStore(self.url)
            return self._sibling

    def close(self) -> None:
        if self._sibling is not None:
            self._sibling.close()
        with self._lock:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self._release()

    def _release(self) -> None:
        if self._claimed:
            self._claimed = False
            release_data_path(self._path)


def split_sql(text: str) -> list[str]:
    """Split a migration file into statements (`;` at a line end), dropping comments."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().strip(";").strip()]
