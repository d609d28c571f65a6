"""Hierarchy versions in `ancestry` and subtree scopes in `scopes` are written once, however
many writers race: a duplicated row would count every fact it joins twice."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import uuid
from functools import partial
from pathlib import Path

from domain.hierarchy import Hierarchy
from projections.ancestry import AncestryTable
from projections.scopes import ScopeTable
from projections.store import ClickHouseStore


def _tree(prefix: str, counties: int = 40) -> Hierarchy:
    tree = Hierarchy()
    day = dt.date(2020, 1, 1)
    tree.register(prefix + "p", "省", "province", None, day)
    for c in range(4):
        tree.register(f"{prefix}c{c}", "市", "city", prefix + "p", day)
        for k in range(counties // 4):
            tree.register(f"{prefix}c{c}k{k}", "县", "county", f"{prefix}c{c}", day)
    return tree


def _race(calls) -> list:
    """Run `calls` at once, each in its own thread; their results (no call may fail)."""
    start, results, failures = threading.Barrier(len(calls)), [], []

    def run(call):
        try:
            start.wait()
            results.append(call())
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    return results


def test_racing_writers_of_one_hierarchy_version_write_its_rows_once(chdb_store):
    # The worker and the API each hold a table writer, on clients of their own.
    other = ClickHouseStore(chdb_store.url)
    for attempt in range(6):
        tree = _tree(f"r{uuid.uuid4().hex[:8]}.")
        writers = [AncestryTable(chdb_store), AncestryTable(other), AncestryTable(chdb_store)]
        ids = _race([partial(w.write, tree) for w in writers])
        assert len(set(ids)) == 1
        expected = 2 * len(tree.ancestry())  # one row per (unit, ancestor) and family
        written = chdb_store.scalar("SELECT count() FROM ancestry WHERE tree_id = {t:String}", {"t": ids[0]})
        assert written == expected, f"attempt {attempt}: {written} rows, expected {expected}"


def test_racing_writers_of_one_scope_write_its_rows_once(chdb_store):
    other = ClickHouseStore(chdb_store.url)
    for attempt in range(6):
        tree = _tree(f"s{uuid.uuid4().hex[:8]}.", counties=80)
        spans = tree.subtree_spans(tree.roots()[0])
        writers = [ScopeTable(chdb_store), ScopeTable(other), ScopeTable(chdb_store)]
        queries = _race([partial(w.subquery, spans) for w in writers])
        assert len(set(queries)) == 1
        written = chdb_store.scalar(f"SELECT count() FROM ({queries[0]})")
        assert written == len(spans), f"attempt {attempt}: {written} rows, expected {len(spans)}"


REPAIR = """
import json, sys
from projections.ancestry import AncestryTable
from projections.folds import recorded
from projections.store import ClickHouseStore
from tests.integration.test_ancestry import _tree

store = ClickHouseStore("chdb://" + sys.argv[1])
store.migrate()
# A store as 0009 found it: no deduplication, one version written twice and the folds stamped
# with it, another written once.
store.command("ALTER TABLE ancestry MODIFY SETTING non_replicated_deduplication_window = 0")
store.command("DELETE FROM schema_migrations WHERE name = '0009_write_once.sql'")
doubled, single = _tree("d."), _tree("s.")
tables = AncestryTable(store)
for _ in range(2):
    tables._written.clear()
    store.insert("ancestry", [(tables.tree_id(doubled), *row) for row in tables._rows(doubled)],
                 ["tree_id", "unit_id", "start_day", "end_day", "ancestor", "family", "scope_key"])
tables.write(single)
store.command("INSERT INTO projection_settings (name, value) VALUES ('daily.tree', {d:String}), "
              "('items.tree', {s:String})", {"d": tables.tree_id(doubled), "s": tables.tree_id(single)})
before = store.scalar("SELECT count() FROM ancestry")
applied = store.migrate()
print(json.dumps({"applied": applied, "before": before,
                  "after": store.scalar("SELECT count() FROM ancestry"),
                  "distinct": store.scalar("SELECT count() FROM (SELECT DISTINCT * FROM ancestry)"),
                  "single": 2 * len(single.ancestry()), "doubled": 2 * len(doubled.ancestry()),
                  "stamps": recorded(store, ["daily.tree", "items.tree"]),
                  "single_id": tables.tree_id(single)}))
"""


def test_migration_keeps_one_copy_and_unstamps_folds_written_under_a_doubled_version(tmp_path):
    """In a child process: chDB opens one data path per process."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", REPAIR, str(tmp_path / "store")], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["applied"] == ["0009_write_once.sql"]
    assert found["before"] == 2 * found["doubled"] + found["single"]
    assert found["after"] == found["distinct"] == found["doubled"] + found["single"]
    # daily was folded under the doubled version: unstamped, so it is rebuilt; items was not.
    assert found["stamps"] == {"daily.tree": "", "items.tree": found["single_id"]}
