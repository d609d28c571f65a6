"""schemathesis against /openapi.json: no server errors, no endpoint that ignores auth."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT, Up, event


def test_fuzzed_api_has_no_server_errors_and_no_auth_bypass(tmp_path):
    up = Up(tmp_path / "data").wait_ready()
    try:
        up.register_small_province()
        assert up.post([event("petition_received", "k1", "s", {"channel": "visit", "category": "appeal"})]).status_code == 202
        st = Path(sys.executable).parent / "st"
        result = subprocess.run(
            [str(st), "run", f"{up.url}/openapi.json", "-H", f"Authorization: Bearer {up.token}",
             "--checks", "not_a_server_error,ignored_auth", "--max-examples", "30",
             "--generation-deterministic", "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=ROOT)
        tail = result.stdout[-3000:]
        generated = re.search(r"(\d+) generated", tail)
        print(f"\nschemathesis: {generated.group(0) if generated else '?'}; exit {result.returncode}")
        assert result.returncode == 0, tail
        assert generated and int(generated.group(1)) > 500
        assert "Server error" not in tail and "ignored" not in tail.lower()
    finally:
        up.stop()
