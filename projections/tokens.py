"""API tokens on ClickHouse: stored as SHA-256 hashes, revocable, with expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time

from domain.access import Principal
from projections.store import ClickHouseStore

CACHE_TTL_S = 2.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    def __init__(self, store: ClickHouseStore):
        self.store = store
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def issue(self, unit_id: str, role: str, created_by: str,
              expires_at: dt.datetime | None = None) -> tuple[str, str]:
        """Create a token; return (token_id, token). Only the hash is stored."""
        token_id = secrets.token_hex(6)
        token = f"jd_{token_id}_{secrets.token_urlsafe(24)}"
        self._write(token_id, token_hash(token), unit_id, role, created_by, expires_at, revoked=0)
        return token_id, token

    def _write(self, token_id, hashed, unit_id, role, created_by, expires_at, revoked) -> None:
        now = dt.datetime.now(dt.UTC)
        self.store.insert("tokens", [[token_id, hashed, unit_id, role, created_by, now, expires_at,
                                      revoked, time.time_ns()]],
                          ["token_id", "token_hash", "unit_id", "role", "created_by", "created_at",
                           "expires_at", "revoked", "version"])
        with self._lock:
            self._cache.clear()

    def get(self, token_id: str) -> dict | None:
        rows = self.store.dicts("SELECT token_id, token_hash, unit_id, role, created_by, expires_at, "
                                "revoked FROM tokens FINAL WHERE token_id = {t:String}", {"t": token_id})
        return rows[0] if rows else None

    def revoke(self, token_id: str) -> bool:
        row = self.get(token_id)
        if row is None:
            return False
        self._write(token_id, row["token_hash"], row["unit_id"], row["role"], row["created_by"],
                    row["expires_at"], revoked=1)
        return True

    def principal(self, token: str) -> Principal | None:
        hashed = token_hash(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(hashed)
            if hit and now - hit[0] < CACHE_TTL_S:
                return hit[1]
        rows = self.store.rows(
            "SELECT token_id, unit_id, role, expires_at, revoked FROM tokens FINAL "
            "WHERE token_hash = {h:String}", {"h": hashed})
        found = None
        if rows:
            token_id, unit_id, role, expires_at, revoked = rows[0]
            live = not revoked and (expires_at is None
                                    or expires_at.replace(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC))
            if live:
                found = Principal(f"token:{token_id}", role, unit_id, token_id)
        with self._lock:
            self._cache[hashed] = (now, found)
        return found
