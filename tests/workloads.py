"""Event streams whose expected figures are computed independently, by plain counting."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from domain.events import RANKS

UNITS = ("c1", "c2", "k1", "k2", "g1")


def counting_workload(n: int, seed: int = 1) -> tuple[list[dict], Counter]:
    """`n` events over the small province, and the indicator values they must produce."""
    rng = random.Random(seed)
    events, expected = [], Counter()
    for i in range(n):
        unit = UNITS[i % len(UNITS)]
        day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+08:00"
        kind = rng.random()
        if kind < 0.4:
            category = rng.choice(["accusation", "criticism", "appeal"])
            payload = {"channel": "letter", "category": category}
            event_type = "petition_received"
            expected["petitions.received"] += 1
            expected["petitions.accusation"] += category == "accusation"
        elif kind < 0.6:
            event_type, payload = "clue_registered", {"source": "petition", "subject_rank": rng.choice(RANKS)}
            expected["clues.registered"] += 1
        elif kind < 0.75:
            rank = rng.choice(RANKS)
            event_type, payload = "case_filed", {"subject_rank": rank}
            expected["cases.filed"] += 1
            expected[f"cases.filed.{rank}"] += 1
        elif kind < 0.9:
            form = rng.choice([1, 1, 1, 2, 2, 3, 4])
            event_type, payload = "four_forms_applied", {"person_id": f"x{i}", "form": form}
            expected["four_forms.total"] += 1
            expected[f"four_forms.form{form}"] += 1
        else:
            talk = rng.choice(["reminder", "admonition", "supervision", "integrity"])
            event_type, payload = "talk_conducted", {"kind": talk, "person_id": f"t{i}"}
            expected["talks.total"] += 1
            expected[f"talks.{talk}"] += 1
        events.append({"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                       "type": event_type, "unit_id": unit, "subject_id": f"s{i}",
                       "occurred_at": day, "payload": payload})
    return events, expected
