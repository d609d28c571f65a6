"""A durable outbox (SQLite in the data dir): every accepted batch stays here until the
ledger holds it, so nothing is lost when the broker is down or forgets (memory storage)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from producers.publisher import OutgoingRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    partition    INTEGER NOT NULL,
    key          BLOB NOT NULL,
    value        BLOB NOT NULL,
    events       INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    published_at REAL,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_published ON batches (published_at);
"""


@dataclass(frozen=True)
class Batch:
    batch_id: str
    record: OutgoingRecord
    events: int
    created_at: float
    published_at: float | None


class Outbox:
    """Batches waiting to reach the ledger. Safe across threads and processes."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # accepted means on disk
            self._local.db = db
        return db

    def put(self, batches: list[tuple[str, OutgoingRecord, int]]) -> None:
        """Store batches durably (all or none) before they are published."""
        now = time.time()
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR IGNORE INTO batches (batch_id, partition, key, value, events, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(b, r.partition, r.key, r.value, n, now) for b, r, n in batches])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def mark_published(self, batch_ids: list[str]) -> None:
        now = time.time()
        self._db().executemany("UPDATE batches SET published_at = ?, attempts = attempts + 1 "
                               "WHERE batch_id = ?", [(now, b) for b in batch_ids])

    def unpublished(self, limit: int = 200) -> list[Batch]:
        return self._select("published_at IS NULL ORDER BY created_at", limit)

    def published_before(self, cutoff: float, limit: int = 2000) -> list[Batch]:
        return self._select(f"published_at IS NOT NULL AND published_at < {float(cutoff)} "
                            "ORDER BY published_at", limit)

    def all_pending(self, limit: int = 2000) -> list[Batch]:
        return self._select("1 ORDER BY created_at", limit)

    def _select(self, where: str, limit: int) -> list[Batch]:
        rows = self._db().execute(
            f"SELECT batch_id, partition, key, value, events, created_at, published_at "
            f"FROM batches WHERE {where} LIMIT {int(limit)}").fetchall()
        return [Batch(b, OutgoingRecord(p, k, v), n, c, pub) for b, p, k, v, n, c, pub in rows]

    def forget_published(self, batch_ids: list[str]) -> None:
        """Mark batches as needing publication again (the broker lost them)."""
        self._db().executemany("UPDATE batches SET published_at = NULL WHERE batch_id = ?",
                               [(b,) for b in batch_ids])

    def remove(self, batch_ids: list[str]) -> None:
        """Drop batches the ledger now holds."""
        self._db().executemany("DELETE FROM batches WHERE batch_id = ?", [(b,) for b in batch_ids])

    def stats(self) -> dict[str, int]:
        row = self._db().execute(
            "SELECT count(*), coalesce(sum(events), 0), coalesce(sum(published_at IS NULL), 0), "
            "coalesce(sum(CASE WHEN published_at IS NULL THEN events END), 0) FROM batches").fetchone()
        return {"batches": row[0], "events": row[1], "unpublished_batches": row[2], "unpublished_events": row[3]}
