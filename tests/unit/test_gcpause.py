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


def test_freezing_the_startup_heap_leaves_later_garbage_collectable():
    import weakref

    from domain.gcpause import freeze_startup_heap

    class Node:
        pass

    before = Node()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is before for o in gc.get_objects())  # frozen: in no generation
        later = Node()
        later.self = later  # a cycle made after the freeze
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None  # still collected
    finally:
        gc.unfreeze()
