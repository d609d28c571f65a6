"""`projections.ledger.beside`, which runs a batch's two live folds at once."""

from __future__ import annotations

import threading
import time

import pytest

from projections.ledger import beside


def test_the_steps_run_at_once():
    met = threading.Barrier(2, timeout=10)  # broken (an error) unless both wait at the same time
    beside(met.wait, met.wait)


def test_an_error_is_raised_after_every_step_has_ended():
    ended = []

    def slow():
        time.sleep(0.2)
        ended.append("slow")

    def fail():
        raise ValueError("store went away")

    with pytest.raises(ValueError, match="went away"):
        beside(slow, fail)  # the failing step in the caller's thread
    assert ended == ["slow"]
    with pytest.raises(ValueError, match="went away"):
        beside(fail, slow)  # in a thread of its own
    assert ended == ["slow", "slow"]
    beside()  # nothing to run
