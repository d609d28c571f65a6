"""What the count-type indicators count, as SQL conditions over one resolved fact.

One definition serves both read paths: `countIf(condition)` over `facts` (any `as_of`) and
the signed per-day folds in `daily` (the live figures). Additive counts sum across units and
days; distinct-person counts keep one row per person so a subtree counts each person once.
"""

from __future__ import annotations

from domain.events import RANKS
from domain.labels import TALK_LABELS

COUNTED_TYPES = ("petition_received", "clue_registered", "case_filed", "case_closed",
                 "sanction_imposed", "four_forms_applied", "transferred_to_procuratorate",
                 "talk_conducted", "integrity_file_updated", "rectification_opened",
                 "rectification_closed", "suggestion_issued")
PERSON_TYPES = ("sanction_imposed", "integrity_file_updated")
# A person as both read paths count them: by the 64-bit CityHash of the id (`daily` stores it
# as `person_key`; the `as_of` path hashes `facts`' ids), so the two agree by definition.
PERSON_KEY = "cityHash64(person_id)"


def _additive() -> dict[str, str]:
    c = {
        "petitions.received": "type = 'petition_received'",
        "petitions.accusation": "type = 'petition_received' AND category = 'accusation'",
        "clues.registered": "type = 'clue_registered'",
        "cases.filed": "type = 'case_filed'",
        "cases.closed": "type = 'case_closed'",
        "four_forms.total": "type = 'four_forms_applied'",
        "transfers.procuratorate": "type = 'transferred_to_procuratorate'",
        "suggestions.issued": "type = 'suggestion_issued'",
        "rectification.opened": "type = 'rectification_opened'",
        "rectification.closed": "type = 'rectification_closed'",
        "talks.total": "type = 'talk_conducted'",
    }
    for r in RANKS:
        c[f"cases.filed.{r}"] = f"type = 'case_filed' AND rank = '{r}'"
    for n in range(1, 5):
        c[f"four_forms.form{n}"] = f"type = 'four_forms_applied' AND form = {n}"
    for k in TALK_LABELS:
        c[f"talks.{k}"] = f"type = 'talk_conducted' AND kind = '{k}'"
    return c


def _persons() -> dict[str, tuple[str, str | None, str | None]]:
    """Distinct-person indicator id → (type, kind, rank) a person's fact must have; None: any."""
    c: dict[str, tuple[str, str | None, str | None]] = {
        "sanctions.persons": ("sanction_imposed", None, None),
        "sanctions.party": ("sanction_imposed", "party", None),
        "sanctions.government": ("sanction_imposed", "government", None),
        "integrity_files.persons": ("integrity_file_updated", None, None),
    }
    for r in RANKS:
        c[f"sanctions.{r}"] = ("sanction_imposed", None, r)
    return c


def _condition(key: tuple[str, str | None, str | None], columns: tuple[str, str, str]) -> str:
    """SQL: a row's (type, kind, rank) `columns` match `key` (None: any)."""
    return " AND ".join(f"{col} = '{v}'" for col, v in zip(columns, key, strict=True) if v is not None)


ADDITIVE = _additive()  # indicator id → condition (daily.n maps these ids to counts)
PERSONS = _persons()  # indicator id → (type, kind, rank), None for any
# The same, as SQL conditions over a fact, and over a `daily` person row.
DISTINCT = {name: _condition(key, ("type", "kind", "rank")) for name, key in PERSONS.items()}
PERSON_ROWS = {name: _condition(key, ("person_type", "person_kind", "person_rank")) for name, key in PERSONS.items()}
