"""The unit hierarchy with effective-dated parent links.

Units move (a county is reassigned to another city); every parent link holds from its
`effective_from` date until the next link of the same unit. A unit's first link also
covers the time before it (events recorded before registration stay with the first
parent), and the last link holds after retirement, so history always has a home.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

BEGIN, END = dt.date.min, dt.date.max


@dataclass(frozen=True)
class Link:
    parent_id: str | None
    effective_from: dt.date


@dataclass(frozen=True)
class Span:
    """`unit_id` belongs under the queried ancestor via child `key` on [start, end)."""

    unit_id: str
    start: dt.date
    end: dt.date
    key: str


@dataclass
class Unit:
    unit_id: str
    name: str
    level: str
    links: list[Link] = field(default_factory=list)
    retired_from: dt.date | None = None


class UnknownUnit(KeyError):
    """The unit is not registered."""


class Hierarchy:
    """Effective-dated tree of units, built by applying unit events in recorded order."""

    def __init__(self) -> None:
        self.units: dict[str, Unit] = {}
        self._reset_caches()

    def _reset_caches(self) -> None:
        self._segments_cache: dict[str, list[tuple[dt.date, dt.date, str | None]]] = {}
        self._by_ancestor: dict[str, list[Span]] | None = None
        self._up_cache: dict[str, tuple[tuple[str, Span], ...]] = {}

    # -- folding unit events -------------------------------------------------
    def register(self, unit_id: str, name: str, level: str, parent_id: str | None,
                 effective_from: dt.date) -> None:
        """Apply `unit_registered`."""
        unit = self.units.get(unit_id)
        if unit is None:
            unit = self.units[unit_id] = Unit(unit_id, name, level)
        unit.name, unit.level = name, level
        self._link(unit, parent_id, effective_from)

    def move(self, unit_id: str, parent_id: str, effective_from: dt.date) -> None:
        """Apply `unit_moved`."""
        self._link(self.get(unit_id), parent_id, effective_from)

    def retire(self, unit_id: str, effective_from: dt.date) -> None:
        """Apply `unit_retired`."""
        self.get(unit_id).retired_from = effective_from
        self._reset_caches()

    def _link(self, unit: Unit, parent_id: str | None, effective_from: dt.date) -> None:
        links = [link for link in unit.links if link.effective_from != effective_from]
        links.append(Link(parent_id, effective_from))
        unit.links = sorted(links, key=lambda link: link.effective_from)
        self._reset_caches()

    # -- reading -------------------------------------------------------------
    def get(self, unit_id: str) -> Unit:
        try:
            return self.units[unit_id]
        except KeyError:
            raise UnknownUnit(unit_id) from None

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.units

    def parent_of(self, unit_id: str, on: dt.date) -> str | None:
        """Return the unit's parent in force on `on`."""
        for start, end, parent in self._segments(unit_id):
            if start <= on < end:
                return parent
        return None

    def path_of(self, unit_id: str, on: dt.date) -> list[str]:
        """Return [root, …, unit] as in force on `on`."""
        path, seen = [unit_id], {unit_id}
        parent = self.parent_of(unit_id, on)
        while parent is not None and parent not in seen:
            path.append(parent)
            seen.add(parent)
            parent = self.parent_of(parent, on) if parent in self.units else None
        return path[::-1]

    def is_within(self, unit_id: str, ancestor_id: str, on: dt.date) -> bool:
        """True when `unit_id` is `ancestor_id` or below it on `on`."""
        return unit_id in self.units and ancestor_id in self.path_of(unit_id, on)

    def children(self, unit_id: str, on: dt.date) -> list[str]:
        """Return the units whose parent on `on` is `unit_id`, retired ones excluded."""
        return sorted(
            u.unit_id for u in self.units.values()
            if self.parent_of(u.unit_id, on) == unit_id
            and (u.retired_from is None or u.retired_from > on)
        )

    def roots(self) -> list[str]:
        today = dt.date.today()
        return sorted(u for u in self.units if self.parent_of(u, today) is None)

    def subtree_spans(self, ancestor_id: str) -> list[Span]:
        """Every (unit, date range) under `ancestor_id`, keyed by the child it rolls up through."""
        self.get(ancestor_id)
        if self._by_ancestor is None:
            self._by_ancestor = {}
            for ancestor, span in self.ancestry():
                self._by_ancestor.setdefault(ancestor, []).append(span)
        return list(self._by_ancestor.get(ancestor_id, ()))

    def ancestry(self) -> list[tuple[str, Span]]:
        """Every (ancestor, span) pair of `subtree_spans`, for all ancestors at once: each unit
        under each unit it ever rolls up to (itself included), walked upwards, so the cost is
        units × depth rather than units²."""
        return [pair for unit_id in self.units for pair in self._up(unit_id)]

    def _up(self, unit_id: str, visiting: frozenset[str] = frozenset()) -> tuple[tuple[str, Span], ...]:
        cached = self._up_cache.get(unit_id)
        if cached is not None:
            return cached
        pairs = [(unit_id, Span(unit_id, BEGIN, END, unit_id))]
        for start, end, parent in self._segments(unit_id):
            if parent is None or parent not in self.units or parent in visiting | {unit_id}:
                continue  # a root, an unknown parent, or a cycle in bad data
            for ancestor, up in self._up(parent, visiting | {unit_id}):
                lo, hi = max(start, up.start), min(end, up.end)
                if lo < hi and ancestor != unit_id:
                    pairs.append((ancestor, Span(unit_id, lo, hi, unit_id if ancestor == parent else up.key)))
        result = tuple(pairs)
        if not visiting:
            self._up_cache[unit_id] = result
        return result

    def _segments(self, unit_id: str) -> list[tuple[dt.date, dt.date, str | None]]:
        cached = self._segments_cache.get(unit_id)
        if cached is None:
            links = self.get(unit_id).links
            cached = []
            for i, link in enumerate(links):
                start = BEGIN if i == 0 else link.effective_from
                end = links[i + 1].effective_from if i + 1 < len(links) else END
                cached.append((start, end, link.parent_id))
            self._segments_cache[unit_id] = cached
        return cached
