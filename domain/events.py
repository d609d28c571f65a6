"""Event contracts (DESIGN §5–§6): the envelope and every v1 event type.

Events are past tense and frozen. A client sends the envelope; the server adds
`recorded_at`, `submitted_by`, `seq`, `prev_hash` and `hash` and never accepts them
from a client.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

MAX_EVENTS_PER_REQUEST = 10_000

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                      pattern=r"^[A-Za-z0-9_.:\-]+$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Rank = Literal["provincial", "bureau", "county", "township", "general", "village", "other"]
Level = Literal["province", "city", "county", "township", "stationed_group"]

RANKS: tuple[str, ...] = Rank.__args__
LEVELS: tuple[str, ...] = Level.__args__
SERVER_FIELDS = ("recorded_at", "submitted_by", "seq", "prev_hash", "hash")


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UnitRegistered(Payload):
    name: Text
    level: Level
    parent_id: Id | None = None
    effective_from: dt.date


class UnitMoved(Payload):
    parent_id: Id
    effective_from: dt.date


class UnitRetired(Payload):
    effective_from: dt.date


class PetitionReceived(Payload):
    channel: Literal["letter", "visit", "phone", "online", "other"]
    category: Literal["accusation", "criticism", "appeal", "out_of_scope", "no_substance"]


class ClueRegistered(Payload):
    source: Literal["petition", "supervision", "inspection", "audit", "transfer", "assigned"]
    subject_rank: Rank


class ClueDisposed(Payload):
    method: Literal["talk_inquiry", "preliminary_verification", "shelved", "concluded"]


class CaseFiled(Payload):
    subject_rank: Rank


class Empty(Payload):
    """Payload of events that carry nothing but the subject and time."""


class SanctionImposed(Payload):
    person_id: Id
    kind: Literal["party", "government"]
    rank: Rank


class FourFormsApplied(Payload):  # 四种形态
    person_id: Id
    form: Literal[1, 2, 3, 4]
    measure: Text | None = None


class TransferredToProcuratorate(Payload):
    person_id: Id


class SuggestionIssued(Payload):
    kind: Literal["discipline", "supervision", "combined"]
    target_unit: Text
    due_date: dt.date


class RectificationOpened(Payload):
    source: Literal["inspection", "audit", "suggestion", "self_check", "other"]
    responsible: Text
    due_date: dt.date


class TaskAssigned(Payload):
    title: Text
    responsible_leader: Text
    assignee_unit: Id
    due_date: dt.date
    standard: Text


class TaskProgressReported(Payload):
    percent: Annotated[float, Field(ge=0, le=100)]
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class TalkConducted(Payload):
    kind: Literal["reminder", "admonition", "supervision", "integrity"]
    person_id: Id


class IntegrityFileUpdated(Payload):  # 廉政档案
    person_id: Id
    section: Text


class EventCorrected(Payload):
    corrects: uuid.UUID
    payload: dict[str, Any]


class EventRetracted(Payload):
    retracts: uuid.UUID
    reason: Text


PAYLOADS: dict[str, type[Payload]] = {
    "unit_registered": UnitRegistered,
    "unit_moved": UnitMoved,
    "unit_retired": UnitRetired,
    "petition_received": PetitionReceived,
    "clue_registered": ClueRegistered,
    "clue_disposed": ClueDisposed,
    "case_filed": CaseFiled,
    "case_closed": Empty,
    "sanction_imposed": SanctionImposed,
    "four_forms_applied": FourFormsApplied,
    "transferred_to_procuratorate": TransferredToProcuratorate,
    "suggestion_issued": SuggestionIssued,
    "suggestion_replied": Empty,
    "suggestion_closed": Empty,
    "rectification_opened": RectificationOpened,
    "rectification_closed": Empty,
    "task_assigned": TaskAssigned,
    "task_progress_reported": TaskProgressReported,
    "task_completed": Empty,
    "talk_conducted": TalkConducted,
    "integrity_file_updated": IntegrityFileUpdated,
    "event_corrected": EventCorrected,
    "event_retracted": EventRetracted,
}
EVENT_TYPES: tuple[str, ...] = tuple(PAYLOADS)
UNIT_EVENT_TYPES = ("unit_registered", "unit_moved", "unit_retired")
CORRECTION_TYPES = ("event_corrected", "event_retracted")


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("时间必须带时区 (timezone offset required, e.g. +08:00)")
    # Millisecond precision: the ledger stores DateTime64(3) and the hash covers it.
    value = value.astimezone(dt.UTC)
    if value.microsecond % 1000:  # a replace is a new object: only when there is one to drop
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


AwareTime = Annotated[dt.datetime, AfterValidator(_aware)]
_EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


class EnvelopeBase(BaseModel):
    """Fields every event carries, as sent by a client."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    schema_version: Annotated[int, Field(ge=1)] = 1
    unit_id: Id
    subject_id: Id
    occurred_at: AwareTime

    @field_validator("occurred_at")
    @classmethod
    def _not_absurd(cls, value: dt.datetime) -> dt.datetime:
        # `value` is in UTC already (AwareTime): compared with UTC bounds made once, it is a
        # plain comparison (two time zones would cost two utcoffset calls, ~1 µs per event).
        if not (_EARLIEST <= value <= _LATEST):
            raise ValueError("occurred_at 超出合理范围 (must be between 1990 and 2200)")
        return value


def _envelope_class(type_name: str, payload: type[Payload]) -> type[EnvelopeBase]:
    name = "".join(part.title() for part in type_name.split("_")) + "Event"
    namespace = {
        "__annotations__": {"type": Literal[type_name], "payload": payload},  # type: ignore[valid-type]
        "__module__": __name__,
        "__doc__": f"Envelope of a `{type_name}` event.",
    }
    return type(name, (EnvelopeBase,), namespace)


EVENT_CLASSES: dict[str, type[EnvelopeBase]] = {
    t: _envelope_class(t, p) for t, p in PAYLOADS.items()
}
Event = Annotated[Union[tuple(EVENT_CLASSES.values())], Field(discriminator="type")]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Event)
EVENTS_ADAPTER: TypeAdapter[list[EnvelopeBase]] = TypeAdapter(list[Event])


def payload_of(event: EnvelopeBase) -> dict[str, Any]:
    """Return the event's payload as plain JSON-ready data."""
    return event.payload.model_dump(mode="json", exclude_none=True)  # type: ignore[attr-defined]
