"""Large query scopes as rows in ClickHouse, content-addressed by their spans.

A province's subtree is ~1,700 (unit, date range, key) spans. Written into SQL as literals they
cost ClickHouse ~15 ms to parse and plan per query, and an indicator request runs five queries.
As rows in `scopes`, a query joins a small table instead. A scope's id is a hash of its spans, so
the same subtree is written once, and a hierarchy change simply yields a new id.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from domain.hierarchy import Span
from projections.resolved import date32
from projections.store import ClickHouseStore

SMALL = 64  # up to this many spans, literals are cheaper than a join


def scope_id(spans: Sequence[Span]) -> str:
    text = "\n".join(f"{s.unit_id}\t{s.start}\t{s.end}\t{s.key}" for s in spans)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


class ScopeTable:
    """Writes each distinct scope once and names the rows a query joins against."""

    def __init__(self, store: ClickHouseStore):
        self.store = store
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def subquery(self, spans: Sequence[Span]) -> str:
        """SQL giving (unit_id, start_day, end_day, scope_key) for `spans`, writing them if new."""
        sid = scope_id(spans)
        with self._lock:
            if sid not in self._known:
                if not self.store.scalar("SELECT count() FROM scopes WHERE scope_id = {s:String}", {"s": sid}):
                    # Deduplicated by id: another process may write the same scope at once.
                    self.store.insert("scopes", [[sid, s.unit_id, date32(s.start), date32(s.end), s.key] for s in spans],
                                      ["scope_id", "unit_id", "start_day", "end_day", "scope_key"],
                                      settings={"insert_deduplication_token": f"scopes:{sid}"})
                self._known.add(sid)
        return (f"SELECT unit_id, start_day, end_day, scope_key FROM scopes "
                f"WHERE scope_id = '{sid}'")

