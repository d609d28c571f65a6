"""Which units each unit rolls up to, per version of the hierarchy: the rows folds join.

The live folds (`daily`, `items`) write a fact's rows once for every unit whose subtree holds
the fact's unit on the fact's day, so an indicator request reads one unit's rows by primary
key. That relation (`Hierarchy.ancestry`) is stored in `ancestry` under a `tree_id`, the hash of
its rows: the same hierarchy always gets the same id, a move gives a new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

from domain.events import UNIT_EVENT_TYPES
from domain.hierarchy import Hierarchy
from projections.hierarchy import HierarchySource
from projections.resolved import date32
from projections.store import ClickHouseStore

COLUMNS = ("tree_id", "unit_id", "start_day", "end_day", "ancestor", "family", "scope_key")


def rollup_sql(rows: str, columns: str) -> str:
    """`rows` (per-unit fold rows: `unit_id`, a local `day` and `columns`) once per unit whose
    subtree holds that unit on that day and per family, as (unit_id: that unit, family,
    scope_key, `columns`); the hierarchy version is the parameter {tree}."""
    return f"""
        SELECT a.ancestor AS unit_id, a.family AS family, a.scope_key AS scope_key, {columns}
        FROM ({rows}) AS r
        INNER JOIN (SELECT unit_id, start_day, end_day, ancestor, family, scope_key FROM ancestry
                    WHERE tree_id = {{tree:String}}) AS a USING unit_id
        WHERE r.day >= a.start_day AND r.day < a.end_day"""


class AncestryTable:
    """Names each hierarchy version's ancestry by its `tree_id` and writes it once (`current`)."""

    def __init__(self, store: ClickHouseStore, hierarchy: HierarchySource | None = None):
        self.store = store
        self.hierarchy = hierarchy or HierarchySource(store)
        self._lock = threading.Lock()
        self._last: tuple[Hierarchy | None, str] = (None, "")
        self._written: set[str] = set()

    def current(self, as_of: dt.datetime | None = None) -> str:
        """The id of the hierarchy as recorded up to `as_of` (now when None), written if new."""
        return self.write(self.hierarchy.at(as_of))

    def write(self, tree: Hierarchy) -> str:
        """`tree`'s id, its rows written unless they already are."""
        tid = self.tree_id(tree)
        with self._lock:
            if tid in self._written:
                return tid
        if not self.store.scalar("SELECT count() FROM ancestry WHERE tree_id = {t:String}", {"t": tid}):
            # The worker, a replay and another process may all meet a new version at once: the
            # id is the insert's deduplication token, so ClickHouse keeps the first insert only
            # (a second copy would count every fact joined through it twice).
            self.store.insert("ancestry", [(tid, *row) for row in self._rows(tree)], COLUMNS,
                              settings={"insert_deduplication_token": f"ancestry:{tid}"})
        with self._lock:
            self._written.add(tid)
        return tid

    def tree_id(self, tree: Hierarchy) -> str:
        """The id `tree`'s rows are (or will be) stored under; writes nothing."""
        with self._lock:
            if self._last[0] is tree:
                return self._last[1]
        text = "\n".join("\t".join(map(str, row)) for row in self._rows(tree))
        tid = hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()
        with self._lock:
            self._last = (tree, tid)
        return tid

    @staticmethod
    def _rows(tree: Hierarchy) -> list[tuple]:
        return sorted((span.unit_id, date32(span.start), date32(span.end), ancestor, family, key)
                      for ancestor, span in tree.ancestry()
                      for family, key in (("child", span.key), ("level", tree.get(span.unit_id).level)))

    def extends(self, old: str, new: str) -> bool:
        """True when folds written with `old` are right for `new` as they stand: every row of
        `old` is in `new`, and the units `new` adds have nothing to fold yet (no fact of
        theirs, no task assigned to them). Registering units does this; moving one does not."""
        cols = ", ".join(COLUMNS[1:])
        dropped = self.store.scalar(
            f"SELECT count() FROM ancestry WHERE tree_id = {{old:String}} AND ({cols}) NOT IN "
            f"(SELECT {cols} FROM ancestry WHERE tree_id = {{new:String}})", {"old": old, "new": new})
        if dropped:
            return False
        added = [u for u, in self.store.rows(
            "SELECT DISTINCT unit_id FROM ancestry WHERE tree_id = {new:String} AND unit_id NOT IN "
            "(SELECT unit_id FROM ancestry WHERE tree_id = {old:String})", {"old": old, "new": new})]
        return not added or not self.store.scalar(
            f"SELECT count() FROM facts WHERE (unit_id IN {{u:Array(String)}} AND type NOT IN "
            f"{list(UNIT_EVENT_TYPES)!r}) OR assignee_unit IN {{u:Array(String)}}", {"u": added})
