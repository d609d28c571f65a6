"""Which workers a replay still waits for (`projections.worker_pause._unpaused`)."""

from projections.worker_pause import ALIVE, ALIVE_WITHIN_S, PAUSED, REQUEST, _unpaused


def test_a_replay_waits_for_every_live_worker_and_only_those():
    latest = {REQUEST: ("r1", 0.1),
              ALIVE + "w1": ("", 1.0), PAUSED + "w1": ("r1", 0.5),  # paused for this replay
              ALIVE + "w2": ("", 1.5), PAUSED + "w2": ("r0", 90.0),  # paused for an older one
              ALIVE + "w3": ("", 0.2),  # never paused
              ALIVE + "w4": ("", ALIVE_WITHIN_S + 1)}  # not heard from: not running
    assert sorted(_unpaused(latest, "r1")) == ["w2", "w3"]
    latest |= {PAUSED + "w2": ("r1", 0.1), PAUSED + "w3": ("r1", 0.1)}
    assert _unpaused(latest, "r1") == []
    assert _unpaused({REQUEST: ("r1", 0.1)}, "r1") == []  # no worker at all
