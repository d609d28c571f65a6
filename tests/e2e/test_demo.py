"""README command 1, as a new user runs it: `jiandu up --demo`, then look at the figures."""

from __future__ import annotations

import time

import httpx

from tests.harness import Up


def test_demo_platform_shows_growing_figures_for_the_province(tmp_path):
    up = Up(tmp_path / "data", demo=True).wait_ready()
    try:
        up.wait_unit("gd", timeout=120)
        deadline = time.monotonic() + 120
        first = {}
        while time.monotonic() < deadline and not first.get("petitions.received"):
            first = up.totals("gd")
            time.sleep(0.5)
        assert first["petitions.received"] > 0
        time.sleep(4)
        later = up.totals("gd")
        grown = [k for k in ("petitions.received", "clues.registered", "four_forms.total")
                 if later[k] > first[k]]
        assert grown, f"figures did not grow: {first} -> {later}"
        assert round(sum(later[f"four_forms.form{n}.share"] for n in range(1, 5)), 1) == 100.0
        children = httpx.get(up.url + "/v1/units/gd/children", headers=up.headers(), timeout=30).json()
        assert len(children) >= 11 + 40  # cities and provincial stationed groups
        page = httpx.get(up.url + "/", timeout=30)
        assert page.status_code == 200 and "监督" in page.text
    finally:
        assert up.stop() == 0
