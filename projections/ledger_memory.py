"""An in-memory LedgerStore: the same contract as ClickHouse, for fast unit tests of folds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from projections.ledger import Head, Target


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.batches: set[str] = set()

    def heads(self) -> dict[str, Head]:
        heads: dict[str, Head] = {}
        for r in self.rows:
            heads[r["unit_id"]] = Head(r["seq"], r["hash"], r["recorded_at"])
        return heads

    def event_ids(self) -> Iterator[bytes]:
        return (uuid.UUID(str(r["event_id"])).bytes for r in self.rows)

    def targets(self, event_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Target]:
        wanted = set(event_ids)
        return {r["event_id"]: Target(r["target_type"], r["unit_id"],
                                      r["type"] in ("event_corrected", "event_retracted"))
                for r in self.rows if r["event_id"] in wanted}

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)

    def project(self, keys: list[tuple[str, int]], corrections: bool = True) -> None:
        """Nothing to fold: the in-memory ledger has no projections."""

    def catch_up(self) -> int:
        return 0

    def reject(self, rows: list[dict[str, Any]]) -> None:
        self.rejected.extend(rows)

    def finish_batches(self, batch_ids: Iterable[str]) -> None:
        self.batches.update(b for b in batch_ids if b)

    def finished_batches(self, batch_ids: Iterable[str]) -> set[str]:
        return self.batches & set(batch_ids)
