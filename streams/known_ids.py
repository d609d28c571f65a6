"""The event ids the ledger holds, kept as the worker's dedupe check needs them: 8 bytes each.

A Python set of 16-byte ids costs ~93 bytes an id (measured: 93 MB per million events), so a
worker over tens of millions of events would hold gigabytes for it alone. Here each id is kept
as its first 8 bytes in a few sorted numpy arrays (~8 bytes an id). A prefix that is absent
proves an event new. A present one is almost always a redelivered duplicate, but may belong to
a different event sharing its first 64 bits (random UUIDs: about one such pair among 6 × 10^9
ids; an id a client chose may share them on purpose), so the worker confirms every hit against
the ledger before it drops anything.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _prefixes(ids: Iterable[bytes]) -> np.ndarray:
    return np.fromiter((int.from_bytes(i[:8], "big") for i in ids), dtype=np.uint64)


class KnownIds:
    """Sorted arrays ("runs") of 64-bit id prefixes: `maybe_known` may say yes wrongly, never no.

    Each run is more than twice as long as the next, so a process over N ids holds at most
    log2(N) + 1 runs, and adding k ids copies only the runs it merges with: mostly small ones.
    One sorted array took a copy of itself on every add: on a real 10M ledger 25-35 ms for
    each batch of 20 events (80 MB), and 80-250 ms when the copy's fresh memory came slowly.
    """

    def __init__(self, ids: Iterable[bytes] = ()):
        self._runs: list[np.ndarray] = []
        self._push(np.unique(_prefixes(ids)))

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def runs(self) -> int:
        """How many sorted arrays the prefixes are kept in (a lookup searches each)."""
        return len(self._runs)

    def maybe_known(self, ids: list[bytes]) -> list[bool]:
        """For each id: False when it is certainly not known, True when it may be."""
        return self._held(_prefixes(ids)).tolist()

    def add(self, ids: Iterable[bytes]) -> None:
        new = np.unique(_prefixes(ids))
        self._push(new[~self._held(new)])

    def _push(self, run: np.ndarray) -> None:
        """Add a sorted run of prefixes none of the runs holds, merging it with the last runs
        while they are not more than twice its length (a stable sort of two sorted runs is one
        merge)."""
        if not len(run):
            return
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            run = np.sort(np.concatenate((self._runs.pop(), run)), kind="stable")
        self._runs.append(run)

    def _held(self, prefixes: np.ndarray) -> np.ndarray:
        held = np.zeros(len(prefixes), dtype=bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, prefixes), len(run) - 1)
            held |= run[at] == prefixes
        return held
