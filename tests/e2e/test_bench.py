"""`jiandu bench --json` runs end to end and prints every DESIGN §9 figure (values not judged),
and with `--scale-to` the same latency figures again on a grown ledger."""

from __future__ import annotations

import json
import subprocess

from tests.harness import ROOT, jiandu_cmd

FIGURES = ("events", "e2e_events_per_s", "ceiling_consume_events_per_s", "ceiling_insert_rows_per_s",
           "naive_events_per_s", "freshness_p50_ms", "freshness_p95_ms", "replay_events_per_s",
           "api_p50_ms", "api_p99_ms", "rss_mb")


def test_bench_prints_every_figure_as_the_last_json_line():
    result = subprocess.run(jiandu_cmd("bench", "--events", "3000", "--scale-to", "6000", "--json"),
                            capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print("\n" + json.dumps(figures))
    assert tuple(figures) == FIGURES
    assert figures["events"] == 3000
    assert all(isinstance(v, (int, float)) and v > 0 for v in figures.values())
    assert "①" in result.stderr  # progress is shown while it runs
    assert "slowest requests: " in result.stderr and "unit=" in result.stderr  # what the p99 is made of
    scaled = json.loads(result.stdout.strip().splitlines()[-2])  # the grown ledger's figures
    assert scaled["scaled_events"] == 6000
    assert set(scaled) == {"scaled_events", "scaled_replay_events_per_s", "scaled_api_p50_ms",
                           "scaled_api_p99_ms", "scaled_rss_mb", "scaled_rss_excludes_growing"}
    assert all(isinstance(v, (int, float)) and v > 0 for v in scaled.values())
    assert scaled["scaled_rss_excludes_growing"] is True  # Linux: the peak restarts after growing
