from __future__ import annotations

import pytest

from tests.harness import start_broker


@pytest.fixture
def broker():
    """A real Tansu broker (memory storage) on a free port, stopped after the test."""
    b = start_broker()
    yield b
    b.stop()
