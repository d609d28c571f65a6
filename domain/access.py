"""Who may do what where (DESIGN §8). Pure rules over a principal and the hierarchy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from domain.events import UNIT_EVENT_TYPES, EnvelopeBase
from domain.hierarchy import Hierarchy

Role = Literal["admin", "submitter", "viewer", "auditor"]
ROLES: tuple[str, ...] = ("admin", "submitter", "viewer", "auditor")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    unit_id: str | None  # None only for the bootstrap admin
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.unit_id is None


def within(tree: Hierarchy, principal: Principal, unit_id: str, on: dt.date | None = None) -> bool:
    """True when `unit_id` is in the principal's subtree (today's hierarchy)."""
    if principal.is_admin:
        return True
    if principal.unit_id is None or unit_id not in tree or principal.unit_id not in tree:
        return False
    return tree.is_within(unit_id, principal.unit_id, on or dt.date.today())


def can_read(tree: Hierarchy, principal: Principal, unit_id: str) -> bool:
    return within(tree, principal, unit_id)


def can_audit(tree: Hierarchy, principal: Principal, unit_id: str) -> bool:
    return principal.role in ("admin", "auditor") and within(tree, principal, unit_id)


def can_submit(tree: Hierarchy, principal: Principal, unit_id: str) -> bool:
    return principal.role in ("admin", "submitter") and within(tree, principal, unit_id)


def outside_submit_scope(tree: Hierarchy, principal: Principal, events: list[EnvelopeBase]
                         ) -> list[tuple[int, EnvelopeBase, str]]:
    """Return (index, event, unit) for every unit an event touches that the principal may not
    submit for: its recording unit, and for a unit event the unit itself (or, for a new one,
    its parent)."""
    denied = []
    for index, event in enumerate(events):
        units = {event.unit_id}
        if event.type in UNIT_EVENT_TYPES:  # type: ignore[attr-defined]
            parent = getattr(event.payload, "parent_id", None)  # type: ignore[attr-defined]
            units |= {event.subject_id} if event.subject_id in tree else {parent} if parent else set()
        denied += [(index, event, unit) for unit in sorted(units) if not can_submit(tree, principal, unit)]
    return denied


def can_issue(tree: Hierarchy, principal: Principal, unit_id: str, role: str) -> bool:
    """Admins issue anything; others issue their own role or `viewer`, inside their subtree."""
    if principal.is_admin:
        return True
    if principal.role == "admin":  # a unit-bound admin: any role within its subtree
        return within(tree, principal, unit_id)
    return role in (principal.role, "viewer") and within(tree, principal, unit_id)
