"""The collector pause over batch work: off while any section is open, then as it was."""

import gc
import threading

from domain.gcpause import gc_paused


def test_sections_nest_and_overlap_across_threads():
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other_thread():
        with gc_paused():
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=other_thread)
    with gc_paused():
        assert not gc.isenabled()
        worker.start()
        entered.wait(5)
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner section ended, this one is still open
    assert not gc.isenabled()  # the other thread's section is still open
    release.set()
    worker.join(5)
    assert gc.isenabled()


def test_an_error_inside_still_restores_the_collector():
    try:
        with gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
