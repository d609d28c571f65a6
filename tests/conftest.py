from __future__ import annotations

import pytest
from hypothesis import settings

from projections.store import ClickHouseStore
from tests.harness import start_broker

# A property test fails on a wrong answer, never on a slow example: on two cores shared with a
# broker and chDB an example's time swings, and timings are `jiandu bench`'s business. The
# profile Hypothesis chose (on CI its derandomized `ci`) stays the parent.
settings.register_profile("jiandu", settings(), deadline=None)
settings.load_profile("jiandu")


@pytest.fixture
def broker():
    """A real Tansu broker (memory storage) on a free port, stopped after the test."""
    b = start_broker()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory):
    """Real in-process chDB. One data path per process, so the whole session shares it."""
    store = ClickHouseStore(f"chdb://{tmp_path_factory.mktemp('chdb') / 'clickhouse'}")
    store.migrate()
    return store
