"""`jiandu up --demo` started again on its data dir carries on where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import ROOT

# In a process of its own: chDB runs one engine a process, and the test process has the session's.
DEMO_CLOCK = """
import json, sys
from jiandu.demo import _resume_at
from projections.store import ClickHouseStore
store = ClickHouseStore(f"chdb://{sys.argv[1]}/clickhouse")
store.migrate()
empty = _resume_at(store).isoformat()
store.command("INSERT INTO ledger (unit_id, seq, type, occurred_at, payload) VALUES "
              "('u', 1, 'petition_received', '2031-05-01 02:00:00', '{}')")
print(json.dumps([empty, _resume_at(store).isoformat()]))
"""


def test_a_restarted_demo_resumes_its_clock_after_the_latest_event(tmp_path):
    out = subprocess.run([sys.executable, "-c", DEMO_CLOCK, str(tmp_path / "d")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    empty, resumed = json.loads(out.stdout.strip().splitlines()[-1])
    assert empty == "2025-01-01T09:00:00+08:00"  # simulate.START: a first run starts there
    assert resumed == "2031-05-01T10:00:00+08:00"  # the latest event, in the demo's +08:00
