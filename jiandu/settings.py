"""All configuration, from `JIANDU_*` environment variables (DESIGN §3)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPIC = "jiandu.events"
DLQ_TOPIC = "jiandu.events.dlq"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIANDU_", extra="ignore")

    data_dir: Path = Path("./.jiandu")
    kafka_bootstrap: str | None = None
    clickhouse_url: str | None = None
    admin_token: str | None = None
    api_port: int = Field(8000, ge=0, le=65535)
    api_host: str = "127.0.0.1"
    broker_port: int = Field(0, ge=0, le=65535)  # 0: pick a free port
    tansu_bin: str | None = None
    partitions: int = Field(4, ge=1, le=1024)
    timezone: str = "Asia/Shanghai"  # 报表口径: dates in from/to are local dates here
    consumer_group: str = "jiandu-worker"
    worker_id: str | None = None  # static group member id; default: host name + data dir
    rate_limit_per_minute: int = 6000
    max_request_bytes: int = 32 * 1024 * 1024

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("clickhouse_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("chdb:", "http://", "https://")):  # the driver took it for localhost
            raise ValueError("须为 chdb:///路径 或 http(s)://用户:密码@主机:8123/库 (must be chdb:///path or "
                             "http(s)://user:pass@host:8123/db)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("不是已知的时区名 (not a known time zone name, e.g. Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _default_worker_id(self) -> Settings:
        if not self.worker_id:
            import hashlib
            import socket

            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:8]
            self.worker_id = f"{socket.gethostname()}-{digest}"
        return self

    @property
    def store_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def embedded_store(self) -> bool:
        return self.store_url.startswith("chdb:")

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def runtime_path(self) -> Path:
        return self.data_dir / "runtime.json"

    def running(self) -> dict | None:
        """What a live platform on this data dir wrote to runtime.json (`pid`, `kafka_bootstrap`,
        and `api_url` when it serves the API), or None: no file, or its process is gone (a kill -9
        leaves the file behind)."""
        import json
        import os

        try:
            info = json.loads(self.runtime_path.read_text(encoding="utf-8"))
            os.kill(int(info["pid"]), 0)
            return info
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def ensure_admin_token(self) -> str:
        """Return the bootstrap admin token, generating and saving one on first start."""
        import secrets

        if self.admin_token:
            if not self.embedded_store and len(self.admin_token) < 24:
                raise ValueError("JIANDU_ADMIN_TOKEN 太短 (use at least 24 characters outside embedded mode)")
            return self.admin_token
        path = self.admin_token_path
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        if not self.embedded_store:
            raise ValueError("生产模式必须设置 JIANDU_ADMIN_TOKEN (set JIANDU_ADMIN_TOKEN for a server store)")
        path.parent.mkdir(parents=True, exist_ok=True)
        # The prefix keeps the token from starting with "-" (1 in 64 for bare urlsafe base64),
        # which argparse would take for an option after `--token`.
        token = f"jda_{secrets.token_urlsafe(32)}"
        path.write_text(token + "\n", encoding="utf-8")
        path.chmod(0o600)
        return token
