"""`ClickHouseStore.migrate`: on one node it runs each migration once; on a cluster (a replicated
`schema_migrations`, made by deploy/cluster/clickhouse/cluster_schema.sql) it only records them,
since its statements would drop or create single-node tables beside the replicated ones.
In child processes: chDB opens one data path per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATE = """
import json, sys
from projections.store import ClickHouseStore
store = ClickHouseStore("chdb://" + sys.argv[1])
if sys.argv[2] == "cluster":  # chDB has no Keeper for a ReplicatedMergeTree: say it is one
    store.replicated = lambda table: table == "schema_migrations"
first, second = store.migrate(), store.migrate()
tables = [t for t, in store.rows("SELECT name FROM system.tables WHERE database = currentDatabase()")]
print(json.dumps({"first": first, "second": second, "tables": sorted(tables),
                  "recorded": sorted(n for n, in store.rows("SELECT name FROM schema_migrations"))}))
"""


def _migrate(path: Path, mode: str) -> dict:
    result = subprocess.run([sys.executable, "-c", MIGRATE, str(path), mode], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_migrations_run_once_on_one_node_and_are_only_recorded_on_a_cluster(tmp_path):
    names = sorted(p.name for p in (ROOT / "projections" / "migrations").glob("*.sql"))
    single = _migrate(tmp_path / "single", "single")
    assert single["first"] == single["recorded"] == names and single["second"] == []
    assert {"ledger", "facts", "daily", "items", "ancestry", "scopes"} <= set(single["tables"])
    cluster = _migrate(tmp_path / "cluster", "cluster")
    assert cluster["first"] == cluster["recorded"] == names and cluster["second"] == []
    assert cluster["tables"] == ["schema_migrations"]  # the cluster schema makes the rest
