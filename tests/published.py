"""Build event streams that must reproduce a published statistics table exactly.

The events are spread over a small subtree (the unit and its stationed groups and a
township), mixed with noise the query must ignore: a sibling county's events, the target's
events of the previous year, and a retracted petition.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

from domain.events import RANKS

METHODS = ("talk_inquiry", "preliminary_verification", "shelved", "concluded")


class Builder:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.events: list[dict] = []

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, event_type: str, unit: str, subject: str, payload: dict, day: str) -> dict:
        e = {"event_id": self.new_id(), "type": event_type, "unit_id": unit, "subject_id": subject,
             "occurred_at": f"{day}T{self.rng.randint(8, 17):02d}:{self.rng.randint(0, 59):02d}:00+08:00",
             "payload": payload}
        self.events.append(e)
        return e

    def day(self, year: int) -> str:
        return f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"


def hierarchy(prefix: str) -> tuple[list[dict], str, list[str], list[str]]:
    """Province → city → target county (+2 stationed groups, 1 township) and a sibling county."""
    root, city = f"{prefix}p", f"{prefix}c"
    target, sibling = f"{prefix}k", f"{prefix}s"
    units = [(root, "省纪委监委", "province", None), (city, "市纪委监委", "city", root),
             (target, "目标县纪委监委", "county", city), (sibling, "邻县纪委监委", "county", city),
             (f"{target}.g1", "派驻第一纪检监察组", "stationed_group", target),
             (f"{target}.g2", "派驻第二纪检监察组", "stationed_group", target),
             (f"{target}.t1", "某镇纪委", "township", target),
             (f"{sibling}.g1", "邻县派驻组", "stationed_group", sibling)]
    events = [{"event_id": str(uuid.uuid4()), "type": "unit_registered", "unit_id": parent or uid,
               "subject_id": uid, "occurred_at": "2015-01-01T00:00:00+08:00",
               "payload": {"name": name, "level": level, "effective_from": "2015-01-01",
                           **({"parent_id": parent} if parent else {})}}
              for uid, name, level, parent in units]
    target_units = [target, f"{target}.g1", f"{target}.g2", f"{target}.t1"]
    return events, target, target_units, [sibling, f"{sibling}.g1"]


def _split(total: int, parts: dict[str, int | None], keys: tuple[str, ...], rng) -> list[str]:
    """A list of `total` labels honouring the given per-label counts, the rest spread freely."""
    fixed = {k: v for k, v in parts.items() if v is not None}
    free = [k for k in keys if k not in fixed] or list(keys)
    labels = [k for k, n in fixed.items() for _ in range(n)]
    labels += [rng.choice(free) for _ in range(total - len(labels))]
    rng.shuffle(labels)
    return labels


def emit_table(b: Builder, table: dict[str, int], units: list[str], year: int, tag: str) -> None:
    """Events in `units` during `year` whose indicators equal `table` exactly."""
    rng, pick, day = b.rng, lambda: b.rng.choice(units), lambda: b.day(year)
    n = table.get("petitions.received", rng.randint(5, 30))
    acc = table.get("petitions.accusation")
    for i, category in enumerate(_split(n, {"accusation": acc}, ("accusation", "criticism", "appeal"), rng)):
        b.add("petition_received", pick(), f"{tag}pt{i}", {"channel": rng.choice(["letter", "visit", "online"]),
                                                          "category": category}, day())
    registered = table.get("clues.registered")
    disposed = table.get("clues.disposed", rng.randint(5, 30))
    methods = _split(disposed, {m: table.get(f"clues.disposed.{m}") for m in METHODS}, METHODS, rng)
    for i, method in enumerate(methods):
        unit, clue = pick(), f"{tag}cl{i}"
        first = f"{year}-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}"
        if rng.random() < 0.2:  # disposed twice: only the later disposition counts
            b.add("clue_disposed", unit, clue, {"method": rng.choice(METHODS)}, first)
        b.add("clue_disposed", unit, clue, {"method": method}, f"{year}-{rng.randint(7, 12):02d}-15")
    for i in range(registered if registered is not None else disposed):
        b.add("clue_registered", pick(), f"{tag}cr{i}", {"source": "petition", "subject_rank": rng.choice(RANKS)}, day())
    filed = table.get("cases.filed", rng.randint(5, 30))
    ranks = _split(filed, {r: table.get(f"cases.filed.{r}") for r in RANKS}, RANKS, rng)
    for i, rank in enumerate(ranks):
        b.add("case_filed", pick(), f"{tag}case{i}", {"subject_rank": rank}, day())
    for i in range(table.get("cases.closed", rng.randint(0, filed))):
        b.add("case_closed", pick(), f"{tag}closed{i}", {}, day())
    _sanctions(b, table, units, year, tag)
    total = table.get("four_forms.total")
    forms = {f: table.get(f"four_forms.form{f}") for f in (1, 2, 3, 4)}
    if total is None:
        total = sum(v for v in forms.values() if v is not None) or rng.randint(5, 30)
    for i, form in enumerate(_split(total, forms, (1, 2, 3, 4), rng)):
        b.add("four_forms_applied", pick(), f"{tag}ff{i}", {"person_id": f"{tag}ffp{i % max(1, total // 2)}",
                                                            "form": form}, day())


def _sanctions(b: Builder, table: dict[str, int], units: list[str], year: int, tag: str) -> None:
    rng = b.rng
    persons = table.get("sanctions.persons")
    party, gov = table.get("sanctions.party"), table.get("sanctions.government")
    if persons is None:
        persons = max(party or 0, gov or 0) or rng.randint(3, 20)
    if party is None and gov is None:
        party, gov = persons, 0
    elif party is None:
        party = persons
    elif gov is None:
        gov = persons - party
    both = party + gov - persons
    assert 0 <= both <= min(party, gov), "inconsistent table: party + government - persons"
    ranks = _split(persons, {r: table.get(f"sanctions.{r}") for r in RANKS}, RANKS, rng)
    kinds: Iterator[tuple[str, ...]] = iter([("party", "government")] * both + [("party",)] * (party - both)
                                            + [("government",)] * (gov - both))
    for i, (rank, person_kinds) in enumerate(zip(ranks, kinds, strict=True)):
        unit = rng.choice(units)
        for kind in person_kinds:
            b.add("sanction_imposed", unit, f"{tag}sn{i}{kind[0]}", {"person_id": f"{tag}person{i}",
                                                                     "kind": kind, "rank": rank}, b.day(year))


def published_stream(table: dict[str, int], year: int, seed: int, prefix: str) -> tuple[list[dict], str]:
    """All events for one table (hierarchy, the table itself, noise); returns (events, unit)."""
    units_events, target, target_units, sibling_units = hierarchy(prefix)
    b = Builder(seed)
    emit_table(b, table, target_units, year, tag=f"{prefix}a")
    emit_table(b, {}, sibling_units, year, tag=f"{prefix}n")     # sibling: not in the target's subtree
    emit_table(b, {}, target_units, year - 1, tag=f"{prefix}o")  # previous period: outside from/to
    ghost = b.add("petition_received", target, f"{prefix}ghost", {"channel": "visit", "category": "appeal"},
                  f"{year}-06-01")
    b.add("event_retracted", target, f"{prefix}ghost", {"retracts": ghost["event_id"], "reason": "重复录入"},
          f"{year}-06-02")
    b.rng.shuffle(b.events)
    # A retraction must follow its target; keep the pair in order after the shuffle.
    order = sorted(b.events, key=lambda e: e["type"] == "event_retracted")
    return units_events + order, target
