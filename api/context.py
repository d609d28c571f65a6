"""Everything the routes need, built once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from producers.service import Submitter
from projections.hierarchy import HierarchySource
from projections.indicators import IndicatorService
from projections.store import ClickHouseStore
from projections.tokens import TokenStore


@dataclass
class ApiContext:
    store: ClickHouseStore
    hierarchy: HierarchySource
    indicators: IndicatorService
    tokens: TokenStore
    submitter: Submitter | None
    admin_token: str
    readiness: Callable[[], dict[str, bool]] = field(default=lambda: {"store": True})
    progress: Callable[[], dict[str, int]] = field(default=dict)
    max_request_bytes: int = 32 * 1024 * 1024
    rate_limit_per_minute: int = 6000
    limiter: object | None = None  # set by create_app
    writer: ClickHouseStore | None = None  # the worker's client: replay holds it to pause ingest
