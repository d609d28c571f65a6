"""The event ids the ledger holds, kept as the worker's dedupe check needs them: 8 bytes each.

A Python set of 16-byte ids costs ~93 bytes an id (measured: 93 MB per million events), so a
worker over tens of millions of events would hold gigabytes for it alone. Here each id is kept
as its first 8 bytes in one sorted numpy array (~8 bytes an id). A prefix that is absent
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
    """A sorted array of 64-bit id prefixes: `maybe_known` may say yes wrongly, never no."""

    def __init__(self, ids: Iterable[bytes] = ()):
        self._sorted = np.unique(_prefixes(ids))

    def __len__(self) -> int:
        return len(self._sorted)

    def maybe_known(self, ids: list[bytes]) -> list[bool]:
        """For each id: False when it is certainly not known, True when it may be."""
        return self._held(_prefixes(ids)).tolist()

    def add(self, ids: Iterable[bytes]) -> None:
        new = np.unique(_prefixes(ids))
        new = new[~self._held(new)]
        if len(new):  # one copy of the array, no sort of it (a searchsorted per new prefix)
            self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, new), new)

    def _held(self, prefixes: np.ndarray) -> np.ndarray:
        if not len(self._sorted):
            return np.zeros(len(prefixes), dtype=bool)
        at = np.minimum(np.searchsorted(self._sorted, prefixes), len(self._sorted) - 1)
        return self._sorted[at] == prefixes
