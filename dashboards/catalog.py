"""Every dashboard, in the order they are listed (Grafana folder and the page's tabs)."""

from __future__ import annotations

from dashboards import audit, cases, overview, tasks
from dashboards.panels import Dashboard

DASHBOARDS: tuple[Dashboard, ...] = (overview.DASHBOARD, cases.DASHBOARD, tasks.DASHBOARD,
                                     audit.DASHBOARD)


def find(uid: str) -> Dashboard:
    """Return the dashboard with `uid`, or raise KeyError."""
    for d in DASHBOARDS:
        if d.uid == uid:
            return d
    raise KeyError(uid)
